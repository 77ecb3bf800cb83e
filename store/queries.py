"""Reads. Each takes an executor, so the same query serves the store's reader connection, `verify`
and tests. Balances are derived from ledger entries here, never read from a stored balance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import msgspec

from engine import events as ev
from engine import ledger, limits, matching
from engine.chain import SignedTx
from engine.discrepancies import Discrepancy
from engine.discrepancies import evolve as discrepancy_evolve
from engine.quotes import Quote
from engine.records import IdempotencyRecord, IdempotencyStatus, Recorded
from engine.states import CANCELLABLE, TERMINAL, Status
from engine.timefmt import parse_rfc3339, rfc3339_us
from engine.timers import DueTimer, TimerKind
from store import journal
from store.executor import Executor, Row, chunks

KEY_COLUMNS = (
    "client_id, idempotency_key, request_hash, transaction_id, status, response_status,"
    " response_body, expires_at"
)


def key_record(row: Sequence[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id=row[0],
        key=row[1],
        request_hash=row[2],
        transaction_id=row[3],
        status=IdempotencyStatus(row[4]),
        response_status=row[5],
        response_body=row[6],
        expires_at=row[7],
    )


def recorded(row: Row) -> Recorded:
    seq, stream_id, version, event_type, payload, recorded_at, request_id, prev, digest = row
    return Recorded(
        seq=seq,
        stream_id=stream_id,
        version=version,
        event_type=event_type,
        event=ev.decode(payload),
        recorded_at=recorded_at,
        request_id=request_id,
        prev_hash=prev,
        hash=digest,
    )


async def load_stream(ex: Executor, stream_id: str, after_version: int = 0) -> list[Recorded]:
    rows = await ex.fetchall(
        f"SELECT {journal.SELECT_COLUMNS} FROM journal WHERE stream_id = ? AND version > ?"
        " ORDER BY version",
        (stream_id, after_version),
    )
    return [recorded(r) for r in rows]


async def journal_rows(ex: Executor, after_seq: int, limit: int) -> list[Row]:
    return await ex.fetchall(
        f"SELECT {journal.SELECT_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )


async def iterate_journal(ex: Executor, chunk: int = 2000) -> AsyncIterator[Row]:
    after = 0
    while True:
        rows = await journal_rows(ex, after, chunk)
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1][0]


async def journal_head(ex: Executor) -> tuple[int, bytes]:
    row = await ex.fetchone("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
    return (row[0], row[1]) if row else (0, journal.GENESIS_HASH)


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    currency: str
    debits: int
    credits: int

    @property
    def credit_balance(self) -> int:
        return self.credits - self.debits


async def balance(ex: Executor, account: str, currency: str) -> Balance:
    """Derived from the ledger lines, not from the cache table."""
    row = await ex.fetchone(
        "SELECT coalesce(sum(debit_amount), 0), coalesce(sum(credit_amount), 0)"
        " FROM ledger_entries WHERE account_id = ? AND currency = ?",
        (account, currency),
    )
    assert row is not None
    return Balance(account=account, currency=currency, debits=row[0], credits=row[1])


class ClientBalance(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    available: int
    held: int


async def client_balances(ex: Executor, client_id: str) -> list[ClientBalance]:
    available_account = ledger.client_available(client_id)
    held_account = ledger.client_held(client_id)
    rows = await ex.fetchall(
        "SELECT currency,"
        " coalesce(sum(CASE WHEN account_id = ? THEN credit_amount - debit_amount END), 0),"
        " coalesce(sum(CASE WHEN account_id = ? THEN credit_amount - debit_amount END), 0)"
        " FROM ledger_entries WHERE account_id IN (?, ?) GROUP BY currency ORDER BY currency",
        (available_account, held_account, available_account, held_account),
    )
    return [ClientBalance(currency=c, available=a, held=h) for c, a, h in rows]


async def before_chain(
    ex: Executor, client_id: str | None, corridor: tuple[str, str] | None, after: str, limit: int
) -> list[str]:
    """Transfers not yet on chain (the cancellable states), of one client or corridor or all, in
    id order after `after` (a page)."""
    before = sorted(s.value for s in CANCELLABLE)
    sql = (
        "SELECT transaction_id FROM transactions"
        f" WHERE status IN ({', '.join('?' * len(before))}) AND transaction_id > ?"
    )
    params: list[object] = [*before, after]
    if client_id is not None:
        sql += " AND client_id = ?"
        params.append(client_id)
    if corridor is not None:
        sql += " AND source_currency = ? AND target_currency = ?"
        params.extend(corridor)
    rows = await ex.fetchall(sql + " ORDER BY transaction_id LIMIT ?", (*params, limit))
    return [r[0] for r in rows]


async def available(ex: Executor, client_id: str, currency: str) -> int:
    """The client's available balance (the cached per-account sums the writer keeps)."""
    row = await ex.fetchone(
        "SELECT credits - debits FROM account_balances WHERE account_id = ? AND currency = ?",
        (ledger.client_available(client_id), currency),
    )
    return int(row[0]) if row else 0


async def idempotency_record(ex: Executor, client_id: str, key: str) -> IdempotencyRecord | None:
    row = await ex.fetchone(
        f"SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE client_id = ? AND idempotency_key = ?",
        (client_id, key),
    )
    return key_record(row) if row else None


async def unanswered_keys(
    ex: Executor, after: tuple[str, str], limit: int
) -> list[IdempotencyRecord]:
    """IN_PROGRESS keys after `after` in primary-key order: a keyset page, so a caller that
    leaves some of them unanswered still reaches every one."""
    rows = await ex.fetchall(
        f"SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE status = ?"
        " AND (client_id, idempotency_key) > (?, ?)"
        " ORDER BY client_id, idempotency_key LIMIT ?",
        (IdempotencyStatus.IN_PROGRESS.value, *after, limit),
    )
    return [key_record(row) for row in rows]


def parse_rfc3339_us(text: str) -> int:
    parsed = parse_rfc3339(text)
    assert parsed is not None, f"the store holds a malformed instant: {text!r}"
    return parsed


async def beneficiary_first_seen(ex: Executor, client_id: str, beneficiary: str) -> int | None:
    """When `client_id` first sent a transfer to `beneficiary` (None: never)."""
    row = await ex.fetchone(
        "SELECT min(created_at) FROM transactions WHERE client_id = ? AND beneficiary = ?",
        (client_id, beneficiary),
    )
    return parse_rfc3339_us(row[0]) if row and row[0] is not None else None


async def due_timers(ex: Executor, now_us: int, limit: int) -> list[DueTimer]:
    rows = await ex.fetchall(
        "SELECT transaction_id, kind, due_at FROM timers WHERE due_at <= ?"
        " ORDER BY due_at, transaction_id, kind LIMIT ?",
        (rfc3339_us(now_us), limit),
    )
    return [
        DueTimer(transfer_id=t, kind=TimerKind(k), due_at=parse_rfc3339_us(d)) for t, k, d in rows
    ]


async def next_timer_due(ex: Executor, after_us: int) -> int | None:
    """When the earliest timer due after `after_us` falls due (None: there is none)."""
    row = await ex.fetchone(
        "SELECT min(due_at) FROM timers WHERE due_at > ?", (rfc3339_us(after_us),)
    )
    return parse_rfc3339_us(row[0]) if row and row[0] is not None else None


async def active_transfers(ex: Executor, after: str, limit: int) -> list[str]:
    """Ids of non-terminal transfers after `after`, in id order (a page for recovery). Asked
    as `status IN (the live states)`, which the status index answers with the live rows alone:
    `NOT IN (the terminal ones)` walked every transfer ever stored."""
    live = sorted(s.value for s in Status if s not in TERMINAL)
    rows = await ex.fetchall(
        f"SELECT transaction_id FROM transactions WHERE status IN ({', '.join('?' * len(live))})"
        " AND transaction_id > ? ORDER BY transaction_id LIMIT ?",
        (*live, after, limit),
    )
    return [r[0] for r in rows]


async def evidence_of(
    ex: Executor, transfer_ids: Iterable[str]
) -> dict[str, list[ev.EvidenceRecorded]]:
    """The evidence recorded for each of these transfers, in journal order (none: absent), in
    one read per chunk of ids."""
    results = await ex.fetch_each(
        [
            (
                "SELECT e.transaction_id, j.payload FROM external_events e"
                " JOIN journal j ON j.seq = e.journal_seq"
                f" WHERE e.transaction_id IN ({', '.join('?' * len(chunk))})"
                " ORDER BY e.transaction_id, e.journal_seq",
                chunk,
            )
            for chunk in chunks(sorted(set(transfer_ids)), limits.sql_params_per_statement_max)
        ]
    )
    found: dict[str, list[ev.EvidenceRecorded]] = {}
    for transfer_id, payload in (row for rows in results for row in rows):
        event = ev.decode(payload)
        if isinstance(event, ev.EvidenceRecorded):
            found.setdefault(transfer_id, []).append(event)
    return found


async def evidence_since(
    ex: Executor, after_seq: int, limit: int
) -> list[tuple[int, ev.EvidenceRecorded, bool]]:
    """Evidence recorded after journal seq `after_seq`, in journal order (the reconciliation
    pipeline's feed): (seq, event, whether a reconciled transfer names it)."""
    rows = await ex.fetchall(
        "SELECT e.journal_seq, j.payload, EXISTS (SELECT 1 FROM evidence_matches m"
        " WHERE m.evidence_id = e.event_id) FROM external_events e JOIN journal j"
        " ON j.seq = e.journal_seq WHERE e.journal_seq > ? ORDER BY e.journal_seq LIMIT ?",
        (after_seq, limit),
    )
    found: list[tuple[int, ev.EvidenceRecorded, bool]] = []
    for seq, payload, matched in rows:
        event = ev.decode(payload)
        assert isinstance(event, ev.EvidenceRecorded)
        found.append((seq, event, bool(matched)))
    return found


async def awaiting_reconciliation(ex: Executor, after: str, limit: int) -> list[str]:
    """Transfers confirmed on chain and not yet reconciled, in id order after `after`."""
    rows = await ex.fetchall(
        "SELECT transaction_id FROM transactions WHERE status IN ('CONFIRMED', 'FIAT_SETTLED')"
        " AND transaction_id > ? ORDER BY transaction_id LIMIT ?",
        (after, limit),
    )
    return [r[0] for r in rows]


async def held_balances(ex: Executor) -> list[tuple[str, str, int]]:
    rows = await ex.fetchall(
        "SELECT account_id, currency, debits - credits FROM account_balances"
        " WHERE account_id LIKE 'treasury:%' OR account_id LIKE 'provider:%'"
        " OR account_id LIKE 'bank:%' ORDER BY account_id, currency"
    )
    return [(str(a), str(c), int(b)) for a, c, b in rows]


async def balance_at(ex: Executor, account: str, currency: str, until_us: int) -> int:
    """The account's debits - credits over entries effective at or before `until_us`."""
    row = await ex.fetchone(
        "SELECT COALESCE(SUM(debit_amount), 0) - COALESCE(SUM(credit_amount), 0)"
        " FROM ledger_entries WHERE account_id = ? AND currency = ? AND effective_at <= ?",
        (account, currency, rfc3339_us(until_us)),
    )
    return int(row[0]) if row else 0


async def first_told(ex: Executor, provider: str, event_type: str, external_ref: str) -> int | None:
    row = await ex.fetchone(
        "SELECT occurred_at FROM external_events"
        " WHERE provider = ? AND external_ref = ? AND event_type = ?",
        (provider, external_ref, event_type),
    )
    return None if row is None else parse_rfc3339(str(row[0]))


async def in_flight(ex: Executor, limit: int) -> list[str]:
    """Transfers with a payment on chain not yet final, in id order."""
    rows = await ex.fetchall(
        "SELECT transaction_id FROM transactions WHERE status IN ('SENT_ON_CHAIN', 'CONFIRMED')"
        " ORDER BY transaction_id LIMIT ?",
        (limit,),
    )
    return [tid for (tid,) in rows]


def paid_by_sql(n: int) -> str:
    """The payments and returns of `n` chain transactions: (tx hash, transfer id, 1 for a
    payment and 0 for a return). The event type is written out, not bound: only then can the
    planner use the partial index on returns (migration 0010) instead of reading every report."""
    marks = ", ".join(f"?{i}" for i in range(1, n + 1))
    return (
        "SELECT on_chain_tx_hash, transaction_id, 1 FROM transactions"
        f" WHERE on_chain_tx_hash IN ({marks}) UNION ALL"
        " SELECT json_extract(normalized_data, '$.return_tx_hash'), transaction_id, 0"
        f" FROM external_events WHERE event_type = '{matching.PAYOUT_RETURNED}'"
        " AND transaction_id IS NOT NULL"
        f" AND json_extract(normalized_data, '$.return_tx_hash') IN ({marks})"
        " ORDER BY 3, 2 DESC"
    )


async def transfers_paid_by(ex: Executor, tx_hashes: Iterable[str]) -> dict[str, str]:
    """The transfer each chain transaction belongs to: its payment, or else the provider's
    return of it (named by the provider's report of the returned payout), in one read per chunk
    of hashes. A transaction that belongs to none is absent."""
    wanted = sorted(set(tx_hashes))
    if not wanted:
        return {}
    results = await ex.fetch_each(
        [
            (paid_by_sql(len(chunk)), chunk)
            for chunk in chunks(wanted, limits.sql_params_per_statement_max)
        ]
    )
    found: dict[str, str] = {}
    # Returns first, then payments, each from the highest id down: a payment wins, and of two
    # the lowest id.
    for tx_hash, transfer_id, _ in (row for rows in results for row in rows):
        found[str(tx_hash)] = str(transfer_id)
    return found


async def transfer_for_trade(ex: Executor, provider_trade_id: str) -> str | None:
    row = await ex.fetchone(
        "SELECT transaction_id FROM transactions WHERE provider_trade_id = ?",
        (provider_trade_id,),
    )
    return None if row is None else str(row[0])


async def last_indexed_block(ex: Executor, provider: str) -> int | None:
    row = await ex.fetchone(
        "SELECT max(CAST(json_extract(normalized_data, '$.block_number') AS INTEGER))"
        " FROM external_events WHERE provider = ? AND event_type = ?",
        (provider, matching.CHAIN_TRANSFER),
    )
    return None if row is None or row[0] is None else int(row[0])


async def discrepancies(ex: Executor, open_only: bool) -> list[Discrepancy]:
    """Cases folded from their journal streams (open ones only, or all), oldest first."""
    where = " WHERE d.status IN ('OPEN', 'INVESTIGATING')" if open_only else ""
    rows = await ex.fetchall(
        "SELECT j.stream_id, j.payload FROM discrepancies d JOIN journal j"
        f" ON j.stream_id = d.discrepancy_id{where} ORDER BY d.journal_seq, j.version"
    )
    cases: dict[str, Discrepancy] = {}
    for stream_id, payload in rows:
        event = ev.decode(payload)
        assert isinstance(event, ev.DISCREPANCY_EVENTS)
        cases[stream_id] = discrepancy_evolve(cases.get(stream_id), event)
    return list(cases.values())


async def quote(ex: Executor, quote_id: str) -> tuple[str | None, Quote] | None:
    """An issued quote and the client it was issued to, from the journal event that issued it."""
    row = await ex.fetchone(
        "SELECT payload FROM journal WHERE stream_id = ? AND version = 1", (quote_id,)
    )
    if row is None:
        return None
    issued = ev.decode(row[0])
    if not isinstance(issued, ev.QuoteIssued):
        return None
    return issued.client_id, issued.quote


async def any_quote(ex: Executor, quote_id: str) -> tuple[str | None, Quote] | None:
    """A quote as it was made, with the client it was made for: one issued to a client
    (`POST /v1/quotes`), or one a transfer took for itself (its QuoteCaptured event)."""
    issued = await quote(ex, quote_id)
    if issued is not None:
        return issued
    row = await ex.fetchone(
        "SELECT client_id, transaction_id FROM quotes WHERE quote_id = ?", (quote_id,)
    )
    if row is None or row[1] is None:
        return None
    rows = await ex.fetchall(
        "SELECT payload FROM journal WHERE stream_id = ? AND event_type = 'QuoteCaptured'"
        " ORDER BY version",
        (row[1],),
    )
    for (payload,) in rows:
        captured = ev.decode(payload)
        if isinstance(captured, ev.QuoteCaptured) and captured.quote.quote_id == quote_id:
            return row[0], captured.quote
    return None


async def signed_transactions(
    ex: Executor, chain: str, address: str, from_nonce: int = 0
) -> list[SignedTx]:
    """The transactions journaled for broadcast (transfers' payments and rebalancing moves)
    from wallet (chain, address) with a nonce of `from_nonce` or more, in journal order: what
    the wallet's nonce book needs at start (every nonce below the chain's is used anyway)."""
    rows = await ex.fetchall(
        "SELECT j.payload FROM signed_transactions AS s JOIN journal AS j ON j.seq = s.seq"
        " WHERE s.chain = ? AND s.from_address = ? AND s.nonce >= ? ORDER BY s.seq",
        (chain, address.lower(), from_nonce),
    )
    found: list[SignedTx] = []
    for (payload,) in rows:
        event = ev.decode(payload)
        assert isinstance(
            event,
            ev.OnChainSubmitted | ev.OnChainReplaced | ev.RebalanceSubmitted | ev.RebalanceReplaced,
        )
        found.append(event.tx)
    return found


async def rebalance_paid_by(ex: Executor, tx_hash: str) -> str | None:
    """The rebalancing move a transaction carries: one we signed, or a provider's withdrawal."""
    row = await ex.fetchone(
        "SELECT stream_id FROM journal WHERE event_type GLOB 'Rebalance*'"
        " AND ((event_type IN (?1, ?2) AND json_extract(payload, '$.tx.tx_hash') = ?4)"
        " OR (event_type = ?3 AND json_extract(payload, '$.tx_hash') = ?4)) LIMIT 1",
        ("RebalanceSubmitted", "RebalanceReplaced", "RebalanceSent", tx_hash),
    )
    return None if row is None else str(row[0])


async def rebalance_ids(ex: Executor, limit: int) -> list[str]:
    rows = await ex.fetchall(
        "SELECT stream_id FROM journal WHERE event_type GLOB 'Rebalance*'"
        " AND event_type = 'RebalanceProposed' ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    return [str(r[0]) for r in rows]
