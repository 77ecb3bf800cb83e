"""What a batch's checks need to know, read inside the batch's write transaction.

The writer reads, on its own connection after BEGIN IMMEDIATE, exactly the values the batch's
requests will be judged against: the journal head, each stream's version, the transfers' states,
the idempotency records, evidence already stored and the balances of the client accounts. Read
under the write lock, they cannot change before the commit, whoever else writes to the data dir.
The whole transaction (these reads, the judging, the writes) runs in one call on the
connection's thread (store.executor.transaction); judging updates the view request by request, so
each request sees every one accepted before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine import audit, ledger, limits
from engine import events as ev
from engine.policy import Scope
from engine.records import IdempotencyRecord, WriteRequest
from engine.states import SPENDING
from engine.timefmt import rfc3339_us
from engine.transfer import TransferState
from store import journal, queries, states
from store.executor import Params, Row, Sync, chunks
from store.projection import usage_minute
from store.states import StateCache

_HEAD = "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
_SPENDING = ", ".join(f"'{s.value}'" for s in sorted(SPENDING))
# A window's usage: the holds of the minutes after its first, from the per-minute projection
# (migration 0008), plus the holds of its first minute from `transactions`, counted exactly from
# the window's start to that minute's end (":60" sorts after every second of it).
_USAGE_MINUTES = (
    "SELECT coalesce(sum(holds), 0), coalesce(sum(usd), 0) FROM limit_usage"
    " WHERE client_id = ? AND beneficiary = ? AND minute > ?"
)
_USAGE_FIRST_MINUTE_CLIENT = (
    "SELECT count(*), coalesce(sum(policy_usd), 0) FROM transactions WHERE client_id = ?"
    f" AND locked_at >= ? AND locked_at < ? AND status IN ({_SPENDING})"
)
_USAGE_FIRST_MINUTE_BENEFICIARY = (
    "SELECT count(*), coalesce(sum(policy_usd), 0) FROM transactions WHERE client_id = ?"
    f" AND beneficiary = ? AND locked_at >= ? AND locked_at < ? AND status IN ({_SPENDING})"
)

# A rolling limit's usage: (client, beneficiary or None for the whole client, window start).
UsageKey = tuple[str, str | None, int]


def _in_rows(
    items: Sequence[tuple[Any, ...]], table: str, key: Sequence[str], columns: str
) -> list[tuple[str, Params]]:
    """`columns` (of `t`, the table) of the rows of `table` whose `key` columns equal one of
    `items`, one query per chunk of them.

    Written as a join of the wanted keys with the table, not as `(a, b) IN (VALUES ...)`: for
    more than one row SQLite (3.40) plans that IN as a scan of the whole table, so its cost grew
    with every transfer ever stored; the join searches the key's unique index once per item."""
    queries_: list[tuple[str, Params]] = []
    on = " AND ".join(f"t.{name} = k.column{n}" for n, name in enumerate(key, start=1))
    for chunk in chunks(items, limits.sql_params_per_statement_max // len(key)):
        placeholders = ", ".join(["(" + ", ".join("?" * len(key)) + ")"] * len(chunk))
        sql = f"SELECT {columns} FROM (VALUES {placeholders}) AS k JOIN {table} AS t ON {on}"
        queries_.append((sql, [v for item in chunk for v in item]))
    return queries_


_KEY_COLUMNS = ", ".join(f"t.{c.strip()}" for c in queries.KEY_COLUMNS.split(","))


class View:
    def __init__(self) -> None:
        self.head: tuple[int, bytes] = (0, journal.GENESIS_HASH)
        self.versions: dict[str, int] = {}
        self.states: dict[str, TransferState] = {}
        # (account, currency) -> credits minus debits, for client accounts.
        self.balances: dict[tuple[str, str], int] = {}
        # (client_id, key) -> the record, or None when there is none.
        self.keys: dict[tuple[str, str], IdempotencyRecord | None] = {}
        # (client_id, key) -> (transaction_id, request_hash) of the transfer it created, or None.
        self.keyed: dict[tuple[str, str], tuple[str, str] | None] = {}
        # (provider, external_ref, event_type) -> the stored evidence_id, or None.
        self.evidence: dict[tuple[str, str, str], str | None] = {}
        # Rolling limits: the [count, USD volume] of holds taken in each window the batch's holds
        # must fit.
        self.usage: dict[UsageKey, list[int]] = {}
        # The commit's instant: windows end here.
        self.now = 0
        # The audit log's last (seq, hash), read when the batch has audit records.
        self.audit_head: tuple[int, bytes] = (0, audit.GENESIS_HASH)

    @classmethod
    def read(cls, db: Sync, requests: Sequence[WriteRequest], cache: StateCache, now: int) -> View:
        """The view for `requests`, read inside the batch's write transaction."""
        appends = [a for r in requests for a in r.appends]
        streams = sorted({a.stream_id for a in appends})
        keys = sorted(
            {(r.claim.client_id, r.claim.key) for r in requests if r.claim}
            | {(r.complete.client_id, r.complete.key) for r in requests if r.complete}
        )
        claimed = sorted({(r.claim.client_id, r.claim.key) for r in requests if r.claim})
        evidence = sorted(
            {
                (e.provider, e.external_ref, e.event_type)
                for a in appends
                for e in a.events
                if isinstance(e, ev.EvidenceRecorded)
            }
        )
        accounts = sorted(
            {
                (entry.account, entry.currency)
                for a in appends
                for e in a.events
                for entry in ev.entries_of(e)
                if ledger.account_kind(entry.account) in ledger.NON_NEGATIVE
            }
        )
        # Transfers the appenders expect to exist and the cache cannot vouch for: folded in the
        # same round trip (the versions read alongside confirm or refute the expectation).
        unfolded = [
            a.stream_id
            for a in appends
            if ev.is_transfer_event(a.events[0])
            and a.expected_version > 0
            and cache.cached(a.stream_id, a.expected_version) is None
        ]
        reads: dict[str, list[tuple[str, Params]]] = {
            "head": [(_HEAD, ())],
            "versions": [
                (
                    "SELECT stream_id, max(version) FROM journal"
                    f" WHERE stream_id IN ({', '.join('?' * len(chunk))}) GROUP BY stream_id",
                    chunk,
                )
                for chunk in chunks(streams, limits.sql_params_per_statement_max)
            ],
            "keys": _in_rows(
                keys, "idempotency_keys", ("client_id", "idempotency_key"), _KEY_COLUMNS
            ),
            # A key whose record expired and was cleaned up still names its transfer.
            "keyed": _in_rows(
                claimed,
                "transactions",
                ("client_id", "idempotency_key"),
                "t.client_id, t.idempotency_key, t.transaction_id, t.request_hash",
            ),
            "evidence": _in_rows(
                evidence,
                "external_events",
                ("provider", "external_ref", "event_type"),
                "t.provider, t.external_ref, t.event_type, t.event_id",
            ),
            "balances": _in_rows(
                accounts,
                "account_balances",
                ("account_id", "currency"),
                "t.account_id, t.currency, t.credits - t.debits",
            ),
            "folds": states.fold_queries(unfolded),
        }
        flat = [q for group in reads.values() for q in group]
        results = iter(db.fetch_each(flat))
        found: dict[str, list[Row]] = {
            name: [row for _ in group for row in next(results)] for name, group in reads.items()
        }

        view = cls()
        view.now = now
        view.head = found["head"][0] if found["head"] else (0, journal.GENESIS_HASH)
        view.versions = {stream: 0 for stream in streams}
        view.versions.update({s: v for s, v in found["versions"]})
        view.keys = {k: None for k in keys}
        view.keys.update({(r[0], r[1]): queries.key_record(r) for r in found["keys"]})
        view.keyed = {k: None for k in claimed}
        view.keyed.update({(c, k): (t, h) for c, k, t, h in found["keyed"]})
        view.evidence = {k: None for k in evidence}
        view.evidence.update({(p, r, t): i for p, r, t, i in found["evidence"]})
        view.balances = {(a, c): b for a, c, b in found["balances"]}
        transfers = {
            a.stream_id: view.versions[a.stream_id]
            for a in appends
            if ev.is_transfer_event(a.events[0]) and view.versions[a.stream_id] > 0
        }
        view.states = cache.load_now(db, transfers, states.fold_rows(found["folds"]))
        view.read_usage(db, appends, now)
        if any(r.audit for r in requests):
            row = db.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            if row is not None:
                view.audit_head = (row[0], row[1])
        return view

    def read_usage(self, db: Sync, appends: Sequence[Any], now: int) -> None:
        """The usage of every rolling limit a hold in the batch must fit: read under the write
        lock, like the balances, so the limit is serialized with the holds it counts."""
        wanted: set[UsageKey] = set()
        for append in appends:
            state = self.states.get(append.stream_id)
            # A transfer created in this append (a create locks its funds in its own commit).
            client = state.client_id if state is not None else None
            for event in append.events:
                if isinstance(event, ev.TransferCreated):
                    client = event.client_id
                if isinstance(event, ev.FundsLocked) and event.limits and client is not None:
                    for check in event.limits:
                        beneficiary = (
                            event.beneficiary if check.scope is Scope.BENEFICIARY else None
                        )
                        wanted.add((client, beneficiary, now - check.window_us))
        if not wanted:
            return
        self.usage.update(usage(db, sorted(wanted, key=lambda k: (k[0], k[1] or "", k[2]))))


def usage(db: Sync, keys: Sequence[UsageKey]) -> dict[UsageKey, list[int]]:
    """[count, USD] of the holds still spending taken since each key's window start, by the
    client (beneficiary None) or by the client for the beneficiary: one read of the per-minute
    projection and one of the window's first minute each, all in one call."""
    reads: list[tuple[str, Params]] = []
    for client, beneficiary, start in keys:
        since = rfc3339_us(start)
        minute = usage_minute(start)
        reads.append((_USAGE_MINUTES, (client, beneficiary or "", minute)))
        if beneficiary is None:
            reads.append((_USAGE_FIRST_MINUTE_CLIENT, (client, since, f"{minute}:60")))
        else:
            first = (client, beneficiary, since, f"{minute}:60")
            reads.append((_USAGE_FIRST_MINUTE_BENEFICIARY, first))
    results = db.fetch_each(reads)
    found: dict[UsageKey, list[int]] = {}
    for n, key in enumerate(keys):
        (later,), (first,) = results[2 * n], results[2 * n + 1]
        found[key] = [later[0] + first[0], later[1] + first[1]]
    return found
