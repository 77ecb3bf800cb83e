"""Projections: the tables the journal's events imply, computed one way for live appends and for
rebuilds.

A `Projection` accumulates what a stretch of the journal (one group-commit batch, or a chunk of a
rebuild) does to every projection table, in memory, and `flush` writes it with one statement per
table. The live writer and `verify`'s rebuild both call `add` for each journal record in sequence
order and `flush` at the end, so "rebuilding every projection from the journal yields the same
rows" is a property of one code path, checked row by row.
"""

from __future__ import annotations

import functools

import msgspec

from engine import events as ev
from engine import ids
from engine.quotes import Quote
from engine.records import Recorded
from engine.states import SPENDING, Status
from engine.timefmt import rfc3339_us
from engine.timers import timers_for
from engine.transfer import TransferState, approval_state

_json = msgspec.json.Encoder()

Statements = list[tuple[str, list[tuple[object, ...]]]]

# Set when the transfer is created, never changed.
CREATED_COLUMNS = (
    "transaction_id",
    "client_id",
    "idempotency_key",
    "request_hash",
    "route",
    "source_amount",
    "source_currency",
    "target_currency",
    "destination",
    "reference",
    "approvals_required",
    "metadata",
    "created_at",
    "policy_rule",
    "policy_version",
    "policy_usd",
    "beneficiary",
)
# Rewritten by every event (an UPDATE touches only these, and only the indexes over them).
CHANGING_COLUMNS = (
    "status",
    "target_amount",
    "quote_id",
    "fx_rate",
    "fee",
    "approval_state",
    "on_chain_tx_hash",
    "bank_reference",
    "provider_trade_id",
    "failure_code",
    "failure_message",
    "version",
    "updated_at",
    "status_since",
    "quoted_at",
    "locked_at",
    "sent_at",
    "confirmed_at",
    "settled_at",
    "reconciled_at",
)
_INSERT_TRANSACTION = (
    f"INSERT INTO transactions ({', '.join(CREATED_COLUMNS + CHANGING_COLUMNS)})"
    f" VALUES ({', '.join('?' * (len(CREATED_COLUMNS) + len(CHANGING_COLUMNS)))})"
)


@functools.lru_cache(maxsize=256)
def _update_transaction(columns: tuple[int, ...]) -> str:
    """UPDATE of just these CHANGING_COLUMNS (by index): SQLite then rewrites only the indexes
    over columns that changed."""
    assignments = ", ".join(f"{CHANGING_COLUMNS[i]} = ?" for i in columns)
    return f"UPDATE transactions SET {assignments} WHERE transaction_id = ?"


_UPSERT_QUOTE = (
    "INSERT INTO quotes (quote_id, client_id, provider, source_currency, target_currency,"
    " source_amount, fee, rate, target_amount, rail_currency, rail_amount, payout_address,"
    " issued_at, expires_at, transaction_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (quote_id) DO UPDATE SET"
    " client_id = coalesce(excluded.client_id, quotes.client_id),"
    " transaction_id = coalesce(excluded.transaction_id, quotes.transaction_id)"
)
_INSERT_LEDGER = (
    "INSERT INTO ledger_entries (journal_seq, leg, transaction_id, account_id, currency,"
    " debit_amount, credit_amount, entry_type, effective_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_BALANCE = (
    "INSERT INTO account_balances (account_id, currency, debits, credits) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (account_id, currency) DO UPDATE SET"
    " debits = debits + excluded.debits, credits = credits + excluded.credits"
)
# The rolling limits' usage by minute (migration 0008): a hold taken adds one and its USD to the
# minute it was taken in, for the client ('') and for its beneficiary; a hold released takes them
# away again.
_UPSERT_USAGE = (
    "INSERT INTO limit_usage (client_id, beneficiary, minute, holds, usd) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (client_id, beneficiary, minute) DO UPDATE SET"
    " holds = holds + excluded.holds, usd = usd + excluded.usd"
)
# Every transaction signed for broadcast, by wallet and nonce (migration 0009).
_INSERT_SIGNED = (
    "INSERT INTO signed_transactions (seq, chain, from_address, nonce, tx_hash)"
    " VALUES (?, ?, ?, ?, ?)"
)
_DELETE_TIMERS = "DELETE FROM timers WHERE transaction_id = ?"
_INSERT_TIMER = "INSERT INTO timers (transaction_id, kind, due_at) VALUES (?, ?, ?)"
_INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, journal_seq, client_id, transaction_id, event_type,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_EVIDENCE = (
    "INSERT INTO external_events (event_id, journal_seq, transaction_id, provider, event_type,"
    " external_ref, occurred_at, received_at, normalized_data, raw_payload, raw_sha256)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DISCREPANCY = (
    "INSERT INTO discrepancies (discrepancy_id, journal_seq, case_key, transaction_id,"
    " discrepancy_type, severity, confidence, source, evidence_ids, expected_value, actual_value,"
    " sla_deadline, status, created_at, updated_at, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'OPEN', ?, ?, 1)"
)
# Every later event of a case, as one statement (so a batch's events apply in journal order):
# ?1 id, ?2 status, ?3 owner, ?4 note (JSON object to append), ?5 proposal op ('set', 'clear' or
# NULL), ?6 proposal (JSON), ?7 resolution, ?8 resolution notes, ?9 resolved by, ?10 approved by,
# ?11 correction (JSON), ?12 resolved at, ?13 updated at.
_UPDATE_DISCREPANCY = (
    "UPDATE discrepancies SET status = coalesce(?2, status), owner = coalesce(?3, owner),"
    " notes = CASE WHEN ?4 IS NULL THEN notes ELSE json_insert(notes, '$[#]', json(?4)) END,"
    " proposal = CASE ?5 WHEN 'set' THEN ?6 WHEN 'clear' THEN NULL ELSE proposal END,"
    " resolution = coalesce(?7, resolution), resolution_notes = coalesce(?8, resolution_notes),"
    " resolved_by = coalesce(?9, resolved_by), approved_by = coalesce(?10, approved_by),"
    " correction = coalesce(?11, correction), resolved_at = coalesce(?12, resolved_at),"
    " updated_at = ?13, version = version + 1 WHERE discrepancy_id = ?1"
)
_INSERT_MATCH = (
    "INSERT INTO evidence_matches (evidence_id, transaction_id, journal_seq) VALUES (?, ?, ?)"
)


def _ts(us: int | None) -> str | None:
    return None if us is None else rfc3339_us(us)


def created_values(state: TransferState) -> tuple[object, ...]:
    decision = state.policy
    return (
        state.transfer_id,
        state.client_id,
        state.idempotency_key,
        state.request_hash,
        state.route.value,
        state.amount,
        state.source_currency,
        state.target_currency,
        _json.encode(state.destination).decode(),
        state.reference,
        state.approvals_required,
        _json.encode(state.metadata).decode(),
        _ts(state.created_at),
        decision.rule_id if decision else None,
        decision.version if decision else None,
        decision.usd_amount if decision else None,
        decision.beneficiary if decision else None,
    )


def changing_values(state: TransferState) -> tuple[object, ...]:
    quote = state.quote
    if state.mined is not None:
        tx_hash: str | None = state.mined.tx_hash
    else:
        tx_hash = state.txs[-1].tx_hash if state.txs else None
    return (
        state.status.value,
        quote.target_amount if quote else None,
        quote.quote_id if quote else state.requested_quote_id,
        quote.rate if quote else None,
        quote.fee if quote else None,
        approval_state(state),
        tx_hash,
        state.bank_reference,
        state.provider_trade_id,
        state.failure_code,
        state.failure_message,
        state.version,
        _ts(state.updated_at),
        _ts(state.status_since),
        _ts(state.quoted_at),
        _ts(state.locked_at),
        _ts(state.sent_at),
        _ts(state.confirmed_at),
        _ts(state.settled_at),
        _ts(state.reconciled_at),
    )


def usage_minute(locked_at_us: int) -> str:
    """The minute a hold counts in, as limit_usage keys it: locked_at's first 16 characters."""
    return rfc3339_us(locked_at_us)[:16]


def spending(state: TransferState | None) -> bool:
    """Whether the transfer counts toward its client's rolling limits: its funds were locked
    and not released."""
    return state is not None and state.locked_at is not None and state.status in SPENDING


def webhook_types(before: TransferState | None, after: TransferState) -> tuple[str, ...]:
    """The client-visible event types a transition announces (API.md: transfer.<status>, plus
    transfer.approval_required)."""
    types: list[str] = []
    if before is None or before.status is not after.status:
        types.append(f"transfer.{after.status.value.lower()}")
    if before is None and after.status is Status.CREATED and approval_state(after) == "pending":
        types.append("transfer.approval_required")
    return tuple(types)


def outbox_event_id(rec: Recorded, at_us: int, index: int) -> str:
    """Deterministic (so rebuilds match) and time-sortable: the event's time and entropy taken
    from the journal row's hash."""
    assert 0 <= index < 3
    return ids.format_id("ev", at_us // 1000, rec.hash[10 * index : 10 * index + 10])


class Projection:
    def __init__(self, loaded: dict[str, TransferState] | None = None) -> None:
        # Transfer states as of the start of this stretch, keyed by transfer id.
        self._before: dict[str, TransferState] = dict(loaded or {})
        self.transfers: dict[str, TransferState] = {}
        self.quote_rows: list[tuple[object, ...]] = []
        self.ledger_rows: list[tuple[object, ...]] = []
        self.balance_deltas: dict[tuple[str, str], list[int]] = {}
        # (client, beneficiary or '', minute) -> [holds, USD] taken (released: negative).
        self.usage_deltas: dict[tuple[str, str, str], list[int]] = {}
        self.outbox_rows: list[tuple[object, ...]] = []
        self.evidence_rows: list[tuple[object, ...]] = []
        self.case_inserts: list[tuple[object, ...]] = []
        self.case_updates: list[tuple[object, ...]] = []
        self.match_rows: list[tuple[object, ...]] = []
        self.signed_rows: list[tuple[object, ...]] = []

    def transfer(self, transfer_id: str) -> TransferState | None:
        found = self.transfers.get(transfer_id)
        return found if found is not None else self._before.get(transfer_id)

    def add(
        self,
        rec: Recorded,
        *,
        after: TransferState | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Project one journal record. For a transfer event, `after` is the transfer's state with
        the event applied (the writer has it already; a rebuild evolves it)."""
        event = rec.event
        transfer_id: str | None = None
        if ev.is_transfer_event(event):
            assert after is not None and after.transfer_id == rec.stream_id
            assert after.version == rec.version, (after.version, rec.version)
            before = self.transfer(rec.stream_id)
            self.transfers[rec.stream_id] = after
            transfer_id = rec.stream_id
            self._count_hold(before, after)
            for index, kind in enumerate(webhook_types(before, after)):
                self.outbox_rows.append(
                    (
                        outbox_event_id(rec, event.at, index),
                        rec.seq,
                        after.client_id,
                        transfer_id,
                        kind,
                        rfc3339_us(event.at),
                    )
                )
        match event:
            case ev.QuoteCaptured(quote=quote):
                assert after is not None
                self.quote_rows.append(_quote_row(quote, after.client_id, after.transfer_id))
            case ev.QuoteIssued(quote=quote, client_id=client_id):
                self.quote_rows.append(_quote_row(quote, client_id, None))
            case (
                ev.OnChainSubmitted(tx=tx)
                | ev.OnChainReplaced(tx=tx)
                | ev.RebalanceSubmitted(tx=tx)
                | ev.RebalanceReplaced(tx=tx)
            ):
                row = (rec.seq, tx.chain, tx.from_address.lower(), tx.nonce, tx.tx_hash)
                self.signed_rows.append(row)
            case ev.EvidenceRecorded():
                assert raw is not None, "evidence without its raw payload"
                self.evidence_rows.append(_evidence_row(rec, event, raw))
            case ev.Reconciled(evidence=evidence):
                for evidence_id in dict.fromkeys(evidence):
                    if evidence_id.startswith("ex_"):
                        self.match_rows.append((evidence_id, rec.stream_id, rec.seq))
            case ev.DiscrepancyOpened():
                self.case_inserts.append(_case_row(rec, event))
            case (
                ev.DiscrepancyAssigned()
                | ev.DiscrepancyNoted()
                | ev.DiscrepancyResolutionProposed()
                | ev.DiscrepancyProposalRejected()
                | ev.DiscrepancyResolved()
            ):
                self.case_updates.append(_case_update(event))
            case _:
                pass
        if isinstance(event, ev.DiscrepancyResolved):
            transfer_id = event.transfer_id  # a correction names the case's transfer
        for leg, entry in enumerate(ev.entries_of(event)):
            self.ledger_rows.append(
                (
                    rec.seq,
                    leg,
                    transfer_id,
                    entry.account,
                    entry.currency,
                    entry.debit,
                    entry.credit,
                    entry.type.value,
                    rfc3339_us(event.at),
                    rec.recorded_at,
                )
            )
            delta = self.balance_deltas.setdefault((entry.account, entry.currency), [0, 0])
            delta[0] += entry.debit
            delta[1] += entry.credit

    def _count_hold(self, before: TransferState | None, after: TransferState) -> None:
        if spending(before) == spending(after):
            return
        sign = 1 if spending(after) else -1  # the hold taken, or released
        assert after.locked_at is not None
        decision = after.policy
        usd = decision.usd_amount if decision is not None else 0
        minute = usage_minute(after.locked_at)
        keys = [""]
        if decision is not None and decision.beneficiary is not None:
            keys.append(decision.beneficiary)
        for beneficiary in keys:
            delta = self.usage_deltas.setdefault((after.client_id, beneficiary, minute), [0, 0])
            delta[0] += sign
            delta[1] += sign * usd

    def statements(self) -> Statements:
        """Everything accumulated, as (sql, rows) in an order the foreign keys accept, one
        statement per table; to run in the transaction that holds the journal rows."""
        found: Statements = []

        def add(sql: str, rows: list[tuple[object, ...]]) -> None:
            if rows:
                found.append((sql, rows))

        states = list(self.transfers.values())
        created = [s for s in states if s.transfer_id not in self._before]
        changed = [s for s in states if s.transfer_id in self._before]
        add(_INSERT_TRANSACTION, [created_values(s) + changing_values(s) for s in created])
        updates: dict[tuple[int, ...], list[tuple[object, ...]]] = {}
        for state in changed:
            old, new = changing_values(self._before[state.transfer_id]), changing_values(state)
            columns = tuple(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b)
            assert columns, "every event changes the version"
            row = (*(new[i] for i in columns), state.transfer_id)
            updates.setdefault(columns, []).append(row)
        for columns, rows in updates.items():
            add(_update_transaction(columns), rows)
        add(_DELETE_TIMERS, [(s.transfer_id,) for s in changed])
        add(
            _INSERT_TIMER,
            [
                (s.transfer_id, t.kind.value, rfc3339_us(t.due_at))
                for s in states
                for t in timers_for(s)
            ],
        )
        add(_UPSERT_QUOTE, self.quote_rows)
        add(_INSERT_LEDGER, self.ledger_rows)
        add(_UPSERT_BALANCE, [(a, c, d, cr) for (a, c), (d, cr) in self.balance_deltas.items()])
        add(_UPSERT_USAGE, [(*key, h, usd) for key, (h, usd) in self.usage_deltas.items()])
        add(_INSERT_OUTBOX, self.outbox_rows)
        add(_INSERT_EVIDENCE, self.evidence_rows)
        add(_INSERT_MATCH, self.match_rows)
        add(_INSERT_SIGNED, self.signed_rows)
        add(_INSERT_DISCREPANCY, self.case_inserts)
        add(_UPDATE_DISCREPANCY, self.case_updates)
        return found


def _quote_row(
    quote: Quote, client_id: str | None, transaction_id: str | None
) -> tuple[object, ...]:
    return (
        quote.quote_id,
        client_id,
        quote.provider,
        quote.source_currency,
        quote.target_currency,
        quote.source_amount,
        quote.fee,
        quote.rate,
        quote.target_amount,
        quote.rail_currency,
        quote.rail_amount,
        quote.payout_address,
        rfc3339_us(quote.issued_at),
        rfc3339_us(quote.expires_at),
        transaction_id,
    )


def _evidence_row(rec: Recorded, event: ev.EvidenceRecorded, raw: bytes) -> tuple[object, ...]:
    return (
        event.evidence_id,
        rec.seq,
        event.transfer_id,
        event.provider,
        event.event_type,
        event.external_ref,
        rfc3339_us(event.occurred_at),
        rfc3339_us(event.at),
        _json.encode(event.normalized).decode(),
        raw,
        event.raw_sha256,
    )


def _case_row(rec: Recorded, event: ev.DiscrepancyOpened) -> tuple[object, ...]:
    return (
        event.discrepancy_id,
        rec.seq,
        event.case_key,
        event.transfer_id,
        event.kind,
        event.severity,
        event.confidence,
        event.source,
        _json.encode(event.evidence_ids).decode(),
        _json.encode(event.expected).decode(),
        _json.encode(event.actual).decode(),
        rfc3339_us(event.sla_deadline),
        rfc3339_us(event.at),
        rfc3339_us(event.at),
    )


def _case_note(at: int, by: str, text: str) -> str:
    return _json.encode({"at": rfc3339_us(at), "by": by, "text": text}).decode()


def _case_update(
    event: ev.DiscrepancyAssigned
    | ev.DiscrepancyNoted
    | ev.DiscrepancyResolutionProposed
    | ev.DiscrepancyProposalRejected
    | ev.DiscrepancyResolved,
) -> tuple[object, ...]:
    """The parameters of _UPDATE_DISCREPANCY for one event (None leaves a column as it is)."""
    row: list[object] = [event.discrepancy_id, *([None] * 11), rfc3339_us(event.at)]
    match event:
        case ev.DiscrepancyAssigned(owner=owner):
            row[1], row[2] = "INVESTIGATING", owner
        case ev.DiscrepancyNoted(note=text, by=by):
            row[3] = _case_note(event.at, by, text)
        case ev.DiscrepancyResolutionProposed():
            row[4] = "set"
            row[5] = _json.encode(
                {
                    "resolution": event.resolution,
                    "notes": event.notes,
                    "by": event.by,
                    "at": rfc3339_us(event.at),
                    "correction": event.correction,
                }
            ).decode()
        case ev.DiscrepancyProposalRejected(reason=reason, by=by):
            row[3] = _case_note(event.at, by, f"proposal rejected: {reason}")
            row[4] = "clear"
        case ev.DiscrepancyResolved():
            row[1] = event.resolution.upper()
            row[4] = "clear"
            row[6], row[7], row[8] = event.resolution, event.notes, event.by
            row[9] = event.approved_by
            row[10] = _json.encode(event.entries).decode()
            row[11] = rfc3339_us(event.at)
    return tuple(row)
