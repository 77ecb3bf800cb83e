"""The service's tables (API keys, webhook endpoints and deliveries) and the API's list queries.

Writes go through the writer's exclusive slot, so they are serialized with the group commits and
each is one transaction; reads use the store's read connection. Lists are keyset pages: a page
is "rows after this key", which stays stable while new rows arrive.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine import discrepancies as dc
from engine import events as ev
from engine import limits, matching
from engine.access import ApiKey, Role
from engine.audit import AuditRecord, AuditRow
from engine.balances import BALANCE_READING
from engine.discrepancies import Discrepancy
from engine.reconciliation import Kind, Severity, Source
from engine.records import Recorded
from engine.service import (
    Balance,
    BalanceRow,
    CaseQuery,
    Dashboard,
    FeedEvent,
    LedgerLine,
    LedgerQuery,
    ReconciliationSummary,
    SourceCounts,
    TransferQuery,
)
from engine.states import TERMINAL, Status
from engine.timefmt import parse_rfc3339, rfc3339_us
from engine.transfer import TransferState, evolve
from engine.webhooks import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStatus,
    subscribed,
)
from store import queries, states
from store.executor import Executor, Row
from store.store import Store


def _us(text: str | None) -> int | None:
    return parse_rfc3339(text) if text is not None else None


def _us_required(text: str) -> int:
    return queries.parse_rfc3339_us(text)


def _where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause of the conditions whose value is not None, and their parameters (a tuple
    value fills as many placeholders as it has items)."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in conditions:
        if value is None:
            continue
        clauses.append(clause)
        params += list(value) if isinstance(value, tuple) else [value]
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _us_text(us: int | None) -> str | None:
    return rfc3339_us(us) if us is not None else None


# --- API keys -------------------------------------------------------------------------------------

_KEY_COLUMNS = "key_id, client_id, role, user_name, env, secret_sha256, created_at, revoked_at"


def _key(row: Row) -> ApiKey:
    key_id, client_id, role, user, env, digest, created, revoked = row
    return ApiKey(
        key_id=key_id,
        client_id=client_id,
        role=Role(role),
        user=user,
        env=env,
        secret_sha256=digest,
        created_at=_us_required(created),
        revoked_at=_us(revoked),
    )


async def insert_key(store: Store, key: ApiKey) -> None:
    async def work(ex: Executor) -> None:
        await ex.execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                key.key_id,
                key.client_id,
                key.role.value,
                key.user,
                key.env,
                key.secret_sha256,
                rfc3339_us(key.created_at),
            ),
        )

    await store.writer.exclusive(work)


async def revoke_key(store: Store, key_id: str, now_us: int) -> bool:
    async def work(ex: Executor) -> bool:
        row = await ex.fetchone("SELECT revoked_at FROM api_keys WHERE key_id = ?", (key_id,))
        if row is None:
            return False
        if row[0] is None:
            await ex.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (rfc3339_us(now_us), key_id)
            )
        return True

    return bool(await store.writer.exclusive(work))


async def api_keys(
    ex: Executor, client_id: str | None, before: str | None, limit: int
) -> list[ApiKey]:
    """Keys newest first (ids are time-sortable), one client's or, for None, every key."""
    clause, params = _where(("client_id = ?", client_id), ("key_id < ?", before))
    rows = await ex.fetchall(
        f"SELECT {_KEY_COLUMNS} FROM api_keys{clause} ORDER BY key_id DESC LIMIT ?",
        (*params, limit),
    )
    return [_key(row) for row in rows]


async def api_key(ex: Executor, key_id: str) -> ApiKey | None:
    row = await ex.fetchone(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
    return _key(row) if row is not None else None


# --- transfers ------------------------------------------------------------------------------------


async def transfers(ex: Executor, query: TransferQuery) -> list[TransferState]:
    """Newest first, after the cursor; each folded from its journal stream."""
    before = query.before
    clause, params = _where(
        ("client_id = ?", query.client_id),
        ("status = ?", query.status),
        ("approval_state = ?", query.approval_state),
        ("created_at > ?", _us_text(query.created_after)),
        ("created_at < ?", _us_text(query.created_before)),
        (
            "(created_at, transaction_id) < (?, ?)",
            (rfc3339_us(before[0]), before[1]) if before is not None else None,
        ),
    )
    rows = await ex.fetchall(
        f"SELECT transaction_id FROM transactions{clause}"
        " ORDER BY created_at DESC, transaction_id DESC LIMIT ?",
        (*params, query.limit),
    )
    ids = [r[0] for r in rows]
    folded = await states.fold(ex, ids)
    return [folded[i] for i in ids]


async def stuck_transfers(
    ex: Executor, now_us: int, status: str | None, limit: int
) -> list[TransferState]:
    """Non-terminal transfers in their status past its time-in-state threshold, oldest first."""
    clauses = []
    params: list[Any] = []
    for name, threshold_us in sorted(limits.stuck_after_us.items()):
        if status is not None and name != status:
            continue
        clauses.append("(status = ? AND status_since < ?)")
        params += [name, rfc3339_us(now_us - threshold_us)]
    if not clauses:
        return []
    rows = await ex.fetchall(
        f"SELECT transaction_id FROM transactions WHERE {' OR '.join(clauses)}"
        " ORDER BY status_since, transaction_id LIMIT ?",
        (*params, limit),
    )
    ids = [r[0] for r in rows]
    folded = await states.fold(ex, ids)
    return [folded[i] for i in ids if folded[i].status not in TERMINAL]


async def transfer_at(ex: Executor, transfer_id: str, journal_seq: int) -> TransferState | None:
    """The transfer as it was just after journal row `journal_seq`."""
    rows = await ex.fetchall(
        "SELECT payload FROM journal WHERE stream_id = ? AND seq <= ? ORDER BY version",
        (transfer_id, journal_seq),
    )
    state: TransferState | None = None
    for (payload,) in rows:
        event = ev.decode(payload)
        assert ev.is_transfer_event(event)
        state = evolve(state, event)
    return state


async def history(ex: Executor, transfer_id: str) -> list[Recorded]:
    return await queries.load_stream(ex, transfer_id)


_AUDIT_COLUMNS = "seq, record, prev_hash, hash"
_audit_record = msgspec.json.Decoder(AuditRecord)


def _audit_row(row: Row) -> AuditRow:
    seq, record, prev_hash, digest = row
    return AuditRow(seq=seq, record=_audit_record.decode(record), prev_hash=prev_hash, hash=digest)


async def audit_page(
    ex: Executor,
    *,
    actor: str | None,
    resource: str | None,
    action: str | None,
    from_at: int | None,
    to_at: int | None,
    before_seq: int | None,
    limit: int,
) -> list[AuditRow]:
    """Audit rows newest first, filtered by actor, resource id, action and time (from inclusive,
    to exclusive)."""
    clause, params = _where(
        ("actor_id = ?", actor),
        ("resource_id = ?", resource),
        ("action_type = ?", action),
        ("at >= ?", _us_text(from_at)),
        ("at < ?", _us_text(to_at)),
        ("seq < ?", before_seq),
    )
    rows = await ex.fetchall(
        f"SELECT {_AUDIT_COLUMNS} FROM audit_log{clause} ORDER BY seq DESC LIMIT ?",
        (*params, limit),
    )
    return [_audit_row(row) for row in rows]


async def audit_rows(ex: Executor, after_seq: int, limit: int) -> list[AuditRow]:
    """Audit rows in seq order after `after_seq` (a page, for verifying the chain)."""
    rows = await ex.fetchall(
        f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    return [_audit_row(row) for row in rows]


async def audit_head(ex: Executor) -> tuple[int, bytes] | None:
    row = await ex.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    return (row[0], row[1]) if row is not None else None


async def evidence_facts(ex: Executor, evidence_id: str) -> tuple[int, dict[str, str]] | None:
    """When a stored piece of evidence says its fact happened, and its normalized fields."""
    row = await ex.fetchone(
        "SELECT occurred_at, normalized_data FROM external_events WHERE event_id = ?",
        (evidence_id,),
    )
    if row is None:
        return None
    return _us_required(row[0]), msgspec.json.decode(row[1], type=dict[str, str])


# --- reconciliation -------------------------------------------------------------------------------


async def discrepancy_page(ex: Executor, query: CaseQuery) -> list[Discrepancy]:
    where, params = [], []
    for column, value in (
        ("status", query.status),
        ("discrepancy_type", query.kind),
        ("severity", query.severity),
        ("transaction_id", query.transfer_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.before is not None:
        where.append("(created_at, discrepancy_id) < (?, ?)")
        params.extend((rfc3339_us(query.before[0]), query.before[1]))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await ex.fetchall(
        f"SELECT discrepancy_id FROM discrepancies{clause}"
        " ORDER BY created_at DESC, discrepancy_id DESC LIMIT ?",
        (*params, query.limit),
    )
    return [case for (did,) in rows if (case := await discrepancy(ex, did)) is not None]


async def discrepancy(ex: Executor, discrepancy_id: str) -> Discrepancy | None:
    return dc.from_records(await queries.load_stream(ex, discrepancy_id))


_MATCHED_KINDS = ", ".join(f"'{k}'" for k in sorted(matching.MATCHED_KINDS))


async def reconciliation_summary(ex: Executor, now: int) -> ReconciliationSummary:
    """Matched and unmatched reports per source and age, transfers awaiting reconciliation by
    age, and the cases by status, type, age and severity."""
    evidence, awaiting, cases, readings = await ex.fetch_each(
        [
            (
                "SELECT e.event_type, json_extract(e.normalized_data, '$.currency'),"
                " json_extract(e.normalized_data, '$.amount'), e.occurred_at,"
                " EXISTS (SELECT 1 FROM evidence_matches m WHERE m.evidence_id = e.event_id)"
                f" FROM external_events e WHERE e.event_type IN ({_MATCHED_KINDS})",
                (),
            ),
            (
                "SELECT coalesce(confirmed_at, status_since) FROM transactions"
                " WHERE status IN ('CONFIRMED', 'FIAT_SETTLED')",
                (),
            ),
            (
                "SELECT status, discrepancy_type, severity, created_at, sla_deadline"
                " FROM discrepancies",
                (),
            ),
            (
                "SELECT e.provider, e.normalized_data, e.occurred_at FROM external_events e"
                " WHERE e.journal_seq IN (SELECT max(journal_seq) FROM external_events"
                " WHERE event_type = ?1 GROUP BY json_extract(normalized_data, '$.account'),"
                " json_extract(normalized_data, '$.currency'))"
                " ORDER BY json_extract(e.normalized_data, '$.account')",
                (BALANCE_READING,),
            ),
        ]
    )
    sources: dict[str, SourceCounts] = {s.value: SourceCounts(source=s.value) for s in Source}
    for kind, currency, amount, occurred, matched in evidence:
        counts = sources[matching.SOURCE_OF[kind].value]
        minor = int(amount) if isinstance(amount, str) and amount.isdigit() else 0
        if matched:
            counts.matched += 1
            counts.matched_amounts[currency] = counts.matched_amounts.get(currency, 0) + minor
        else:
            counts.unmatched += 1
            counts.unmatched_amounts[currency] = counts.unmatched_amounts.get(currency, 0) + minor
            age = dc.bucket(now - _us_required(occurred)).value
            counts.unmatched_by_age[age] = counts.unmatched_by_age.get(age, 0) + 1
    buckets = {b.value: 0 for b in dc.Bucket}
    awaiting_by_age = dict(buckets)
    for (since,) in awaiting:
        awaiting_by_age[dc.bucket(now - _us_required(since)).value] += 1
    by_status = {s.value: 0 for s in dc.Status}
    by_type = {k.value: 0 for k in Kind}
    open_by_age = dict(buckets)
    open_by_severity = {s.value: 0 for s in Severity}
    breached = 0
    for status, kind, severity, created, deadline in cases:
        by_status[status] += 1
        by_type[kind] += 1
        if status in (dc.Status.OPEN, dc.Status.INVESTIGATING):
            open_by_age[dc.bucket(now - _us_required(created)).value] += 1
            open_by_severity[severity] += 1
            breached += now >= _us_required(deadline)
    balances = []
    for holder, normalized, read_at in readings:
        n = msgspec.json.decode(normalized, type=dict[str, str])
        balances.append(
            BalanceRow(
                source=n["source"],
                holder=holder,
                account=n["account"],
                currency=n["currency"],
                ledger=int(n["ledger"]),
                external=int(n["amount"]),
                drift=int(n["drift"]),
                in_flight_low=int(n["in_flight_low"]),
                in_flight_high=int(n["in_flight_high"]),
                read_at=_us_required(read_at),
            )
        )
    return ReconciliationSummary(
        sources=list(sources.values()),
        balances=balances,
        awaiting_by_age=awaiting_by_age,
        cases_by_status=by_status,
        cases_by_type=by_type,
        open_cases_by_age=open_by_age,
        open_cases_by_severity=open_by_severity,
        sla_breached=breached,
    )


# --- money ----------------------------------------------------------------------------------------


async def trial_balance(ex: Executor) -> list[tuple[str, str, int, int]]:
    """(account, currency, debits, credits) for every account, in one read snapshot."""
    rows = await ex.fetchall(
        "SELECT account_id, currency, debits, credits FROM account_balances"
        " ORDER BY currency, account_id"
    )
    return [(a, c, d, k) for a, c, d, k in rows]


async def status_counts(ex: Executor, client_id: str | None = None) -> dict[str, int]:
    """Transfers by status, of one client or of all."""
    clause, params = _where(("client_id = ?", client_id))
    rows = await ex.fetchall(
        f"SELECT status, count(*) FROM transactions{clause} GROUP BY status", params
    )
    return {status: count for status, count in rows}


async def dashboard(ex: Executor, client_id: str | None, now_us: int) -> Dashboard:
    """Counts by status, the last 24 hours' creations by hour and status, and how long each
    open transfer has been in its status (the oldest `limits.dashboard_open_max`)."""
    by_status = await status_counts(ex, client_id)
    hour_us = 3600 * 1_000_000
    since = (now_us // hour_us - 23) * hour_us
    clause, more = _where(("client_id = ?", client_id), ("created_at >= ?", rfc3339_us(since)))
    rows = await ex.fetchall(
        f"SELECT substr(created_at, 1, 13), status, count(*) FROM transactions{clause}"
        " GROUP BY 1, 2 ORDER BY 1",
        more,
    )
    by_hour = [(parse_rfc3339(f"{hour}:00:00Z") or 0, status, n) for hour, status, n in rows]
    open_statuses = [s.value for s in Status if s not in TERMINAL]
    marks = ", ".join("?" * len(open_statuses))
    owner = " AND client_id = ?" if client_id is not None else ""
    rows = await ex.fetchall(
        f"SELECT status, status_since FROM transactions WHERE status IN ({marks}){owner}"
        " ORDER BY status_since LIMIT ?",
        (*open_statuses, *([client_id] if client_id is not None else []),
         limits.dashboard_open_max),
    )  # fmt: skip
    open_since = [(status, queries.parse_rfc3339_us(at)) for status, at in rows]
    return Dashboard(by_status=by_status, created_by_hour=by_hour, open_since=open_since)


async def balances(ex: Executor, client_id: str) -> list[Balance]:
    found = await queries.client_balances(ex, client_id)
    return [Balance(currency=b.currency, available=b.available, held=b.held) for b in found]


async def ledger(ex: Executor, query: LedgerQuery) -> list[LedgerLine]:
    client = query.client_id
    clause, params = _where(
        # A client sees the lines on its own accounts.
        (
            "account_id IN (?, ?)",
            (f"client:{client}:available", f"client:{client}:held") if client else None,
        ),
        ("transaction_id = ?", query.transfer_id),
        ("account_id = ?", query.account),
        ("(journal_seq, leg) > (?, ?)", tuple(query.after) if query.after else None),
    )
    rows = await ex.fetchall(
        "SELECT journal_seq, leg, transaction_id, account_id, currency, debit_amount,"
        f" credit_amount, entry_type, effective_at FROM ledger_entries{clause}"
        " ORDER BY journal_seq, leg LIMIT ?",
        (*params, query.limit),
    )
    return [
        LedgerLine(
            journal_seq=seq,
            leg=leg,
            transfer_id=tid,
            account=account,
            currency=currency,
            debit=debit,
            credit=credit,
            entry_type=entry_type,
            effective_at=_us_required(effective_at),
        )
        for seq, leg, tid, account, currency, debit, credit, entry_type, effective_at in rows
    ]


# --- the event feed -------------------------------------------------------------------------------


async def feed(
    ex: Executor, client_id: str | None, after_event_id: str | None, limit: int
) -> list[FeedEvent] | None:
    """Client-visible events in commit order after `after_event_id` (None: an unknown cursor)."""
    after = (0, "")
    if after_event_id is not None:
        row = await ex.fetchone(
            "SELECT journal_seq, client_id FROM outbox WHERE event_id = ?", (after_event_id,)
        )
        if row is None or (client_id is not None and row[1] != client_id):
            return None
        after = (row[0], after_event_id)
    scope = "o.client_id = ? AND " if client_id is not None else ""
    params: tuple[Any, ...] = (client_id,) if client_id is not None else ()
    rows = await ex.fetchall(
        "SELECT o.event_id, o.event_type, o.client_id, o.created_at, o.journal_seq,"
        " o.transaction_id, j.request_id FROM outbox o JOIN journal j ON j.seq = o.journal_seq"
        f" WHERE {scope}(o.journal_seq, o.event_id) > (?, ?)"
        " ORDER BY o.journal_seq, o.event_id LIMIT ?",
        (*params, *after, limit),
    )
    found = []
    for event_id, event_type, owner, created_at, seq, tid, rid in rows:
        transfer = await transfer_at(ex, tid, seq) if tid is not None else None
        found.append(
            FeedEvent(
                event_id=event_id,
                event_type=event_type,
                client_id=owner,
                created_at=_us_required(created_at),
                journal_seq=seq,
                transfer=transfer,
                request_id=rid,
            )
        )
    return found


# --- webhook endpoints ----------------------------------------------------------------------------

_ENDPOINT_COLUMNS = "endpoint_id, client_id, url, events, status, created_at, disabled_reason"


def _endpoint(row: Row) -> Endpoint:
    endpoint_id, client_id, url, events, status, created_at, reason = row
    return Endpoint(
        endpoint_id=endpoint_id,
        client_id=client_id,
        url=url,
        events=tuple(msgspec.json.decode(events, type=list[str])),
        status=EndpointStatus(status),
        created_at=_us_required(created_at),
        disabled_reason=reason,
    )


async def insert_endpoint(store: Store, endpoint: Endpoint, secret: str) -> None:
    async def work(ex: Executor) -> None:
        head = await ex.fetchone("SELECT coalesce(max(seq), 0) FROM journal")
        assert head is not None
        at = rfc3339_us(endpoint.created_at)
        await ex.execute(
            "INSERT INTO webhook_endpoints (endpoint_id, client_id, url, events, secret, status,"
            " disabled_reason, after_seq, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
            (
                endpoint.endpoint_id,
                endpoint.client_id,
                endpoint.url,
                msgspec.json.encode(list(endpoint.events)).decode(),
                secret,
                endpoint.status.value,
                head[0],
                at,
                at,
            ),
        )

    await store.writer.exclusive(work)


async def endpoints(ex: Executor, client_id: str | None) -> list[Endpoint]:
    scope = " AND client_id = ?" if client_id is not None else ""
    params: tuple[Any, ...] = (client_id,) if client_id is not None else ()
    rows = await ex.fetchall(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE status != 'deleted'{scope}"
        " ORDER BY endpoint_id LIMIT ?",
        (*params, limits.webhook_endpoints_per_client_max * 50),
    )
    return [_endpoint(r) for r in rows]


async def endpoint(ex: Executor, endpoint_id: str) -> Endpoint | None:
    row = await ex.fetchone(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints"
        " WHERE endpoint_id = ? AND status != 'deleted'",
        (endpoint_id,),
    )
    return _endpoint(row) if row is not None else None


async def close_endpoint(
    store: Store, endpoint_id: str, status: EndpointStatus, reason: str, now_us: int
) -> None:
    """Delete or disable an endpoint: nothing more is sent to it, and what it was still owed is
    marked failed (its attempts stay in the log)."""
    assert status is not EndpointStatus.ENABLED
    at = rfc3339_us(now_us)

    async def work(ex: Executor) -> None:
        await ex.execute(
            "UPDATE webhook_endpoints SET status = ?, disabled_reason = ?, updated_at = ?"
            " WHERE endpoint_id = ?",
            (status.value, reason, at, endpoint_id),
        )
        await ex.execute(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
            " updated_at = ? WHERE endpoint_id = ? AND status = 'pending'",
            (at, endpoint_id),
        )

    await store.writer.exclusive(work)


# --- webhook delivery -----------------------------------------------------------------------------


async def fan_out(store: Store, now_us: int) -> int:
    """Owe every new outbox event to each enabled endpoint of its client that subscribes to it;
    returns how many deliveries were added. Runs in the writer's slot, so every outbox row up to
    the journal head is committed and none is missed."""
    # No enabled endpoint, nothing owed: keep the writer's slot for the journal. The cursor stays
    # where it is, and an endpoint is owed only events after its creation, so none is missed.
    if (
        await store.reader.fetchone(
            "SELECT 1 FROM webhook_endpoints WHERE status = 'enabled' LIMIT 1"
        )
        is None
    ):
        return 0
    at = rfc3339_us(now_us)

    async def work(ex: Executor) -> int:
        cursor = await ex.fetchone("SELECT journal_seq FROM webhook_fanout WHERE id = 1")
        head = await ex.fetchone("SELECT coalesce(max(seq), 0) FROM journal")
        assert cursor is not None and head is not None
        if head[0] <= cursor[0]:
            return 0
        rows = await ex.fetchall(
            "SELECT e.endpoint_id, e.events, o.event_id, o.event_type FROM outbox o"
            " JOIN webhook_endpoints e ON e.client_id = o.client_id AND e.status = 'enabled'"
            " AND o.journal_seq > e.after_seq"
            " WHERE o.journal_seq > ? AND o.journal_seq <= ?",
            (cursor[0], head[0]),
        )
        owed = [
            (endpoint_id, event_id, at, at, at)
            for endpoint_id, events, event_id, event_type in rows
            if subscribed(tuple(msgspec.json.decode(events, type=list[str])), event_type)
        ]
        await ex.executemany(
            "INSERT OR IGNORE INTO webhook_deliveries (endpoint_id, event_id, status, attempts,"
            " next_attempt_at, created_at, updated_at) VALUES (?, ?, 'pending', 0, ?, ?, ?)",
            owed,
        )
        await ex.execute("UPDATE webhook_fanout SET journal_seq = ? WHERE id = 1", (head[0],))
        return len(owed)

    return int(await store.writer.exclusive(work))


async def due_deliveries(ex: Executor, now_us: int, limit: int) -> list[Delivery]:
    rows = await ex.fetchall(
        "SELECT d.endpoint_id, d.event_id, o.event_type, o.transaction_id, o.journal_seq,"
        " o.created_at, d.attempts, e.url, e.secret, j.request_id FROM webhook_deliveries d"
        " JOIN outbox o ON o.event_id = d.event_id"
        " JOIN journal j ON j.seq = o.journal_seq"
        " JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND e.status = 'enabled'"
        " ORDER BY d.next_attempt_at, o.journal_seq LIMIT ?",
        (rfc3339_us(now_us), limit),
    )
    return [
        Delivery(
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=event_type,
            transfer_id=tid,
            journal_seq=seq,
            created_at=_us_required(created_at),
            attempts=attempts,
            url=url,
            secret=secret,
            request_id=rid,
        )
        for (endpoint_id, event_id, event_type, tid, seq, created_at, attempts, url, secret,
             rid) in rows
    ]  # fmt: skip


async def backlog(ex: Executor) -> int:
    row = await ex.fetchone("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
    assert row is not None
    return int(row[0])


async def record_attempt(
    store: Store, attempt: Attempt, next_attempt_at: int | None, disable: str | None
) -> None:
    """Log one attempt and move its delivery on: delivered, retried at `next_attempt_at`, or
    failed; `disable` (a reason) also disables the endpoint."""
    at = rfc3339_us(attempt.attempted_at)

    async def work(ex: Executor) -> None:
        await ex.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
            " updated_at = ? WHERE endpoint_id = ? AND event_id = ?",
            (
                attempt.status.value,
                attempt.attempt,
                rfc3339_us(next_attempt_at) if next_attempt_at is not None else None,
                at,
                attempt.endpoint_id,
                attempt.event_id,
            ),
        )
        await ex.execute(
            "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, attempted_at,"
            " http_status, error, duration_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attempt.endpoint_id,
                attempt.event_id,
                attempt.attempt,
                at,
                attempt.http_status,
                attempt.error,
                attempt.duration_ms,
                attempt.status.value,
            ),
        )
        if disable is not None:
            await ex.execute(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?,"
                " updated_at = ? WHERE endpoint_id = ? AND status = 'enabled'",
                (disable, at, attempt.endpoint_id),
            )
            await ex.execute(
                "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
                " updated_at = ? WHERE endpoint_id = ? AND status = 'pending'",
                (at, attempt.endpoint_id),
            )

    await store.writer.exclusive(work)


_ATTEMPT_COLUMNS = (
    "a.endpoint_id, a.event_id, o.event_type, a.attempt, a.attempted_at, a.http_status, a.error,"
    " a.duration_ms, a.status"
)


def _attempt(row: Row) -> Attempt:
    endpoint_id, event_id, event_type, n, attempted_at, http_status, error, duration, status = row
    return Attempt(
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=event_type,
        attempt=n,
        attempted_at=_us_required(attempted_at),
        http_status=http_status,
        error=error,
        duration_ms=duration,
        status=DeliveryStatus(status),
    )


async def attempts(
    ex: Executor, endpoint_id: str, before: tuple[int, str, int] | None, limit: int
) -> list[Attempt]:
    """The endpoint's delivery log, newest first, before the cursor (attempted_at, event, n)."""
    cursor = ""
    params: list[Any] = [endpoint_id]
    if before is not None:
        cursor = " AND (a.attempted_at, a.event_id, a.attempt) < (?, ?, ?)"
        params += [rfc3339_us(before[0]), before[1], before[2]]
    rows = await ex.fetchall(
        f"SELECT {_ATTEMPT_COLUMNS} FROM webhook_attempts a"
        f" JOIN outbox o ON o.event_id = a.event_id WHERE a.endpoint_id = ?{cursor}"
        " ORDER BY a.attempted_at DESC, a.event_id DESC, a.attempt DESC LIMIT ?",
        (*params, limit),
    )
    return [_attempt(row) for row in rows]


async def transfer_attempts(ex: Executor, transfer_id: str, limit: int) -> list[Attempt]:
    """Every delivery attempt of the transfer's webhook events to any endpoint, oldest first."""
    rows = await ex.fetchall(
        f"SELECT {_ATTEMPT_COLUMNS} FROM outbox o JOIN webhook_attempts a"
        " ON a.event_id = o.event_id WHERE o.transaction_id = ?"
        " ORDER BY a.attempted_at, a.event_id, a.attempt LIMIT ?",
        (transfer_id, limit),
    )
    return [_attempt(row) for row in rows]
