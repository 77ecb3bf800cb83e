"""A bank's statement file kept as evidence, and judged as a whole.

Each booked line is a `statement_line` report (once: a file read twice adds nothing), which the
reconciler pairs with the ledger or, when nothing explains it, turns into a case; lines not booked
(pending, information only) and zero-amount lines are counted, not kept. A statement that states
balances is kept too (`statement_balance`), and judged when it is first kept: its opening
balance plus its booked lines must make its closing balance, and its closing balance must be
what the ledger holds for our account at that bank at the end of that day. A statement that
fails either opens one `balance_drift` case naming both sides, for an operator.

A credit the ledger already holds (a client's deposit credited on the bank's notice) is
explained by any of the references the bank gave it, as the notice first told it.
"""

from __future__ import annotations

import msgspec

from actors.evidence import Recorder, record_evidence_fresh, record_statement
from engine import discrepancies as dc
from engine import statements as st
from engine.funding import deposit_id_for
from engine.matching import DEPOSIT_CREDIT
from engine.ports import Journal
from engine.records import Committed
from engine.statements import Statement


class StatementRecorded(msgspec.Struct, kw_only=True):
    """What keeping one statement did."""

    format: str
    bank: str
    account: str
    statement_id: str
    # Booked lines kept as evidence, and how many of them were new.
    lines: int
    new: int
    # Lines read but not evidence: not booked (pending, info), or of zero amount.
    not_booked: int
    zero_amount: int
    # Credits the ledger already holds (a client's deposit).
    explained: int
    evidence_ids: list[str]
    balance_evidence_id: str | None = None
    # Why the statement does not add up (empty: it does, or it states no balances), and the
    # case opened for it.
    problems: list[str] = msgspec.field(default_factory=list)
    case_id: str | None = None
    notes: list[str] = msgspec.field(default_factory=list)


async def record_statements(ctx: Recorder, found: list[Statement]) -> list[StatementRecorded]:
    return [await _record(ctx, statement) for statement in found]


async def _record(ctx: Recorder, statement: Statement) -> StatementRecorded:
    evidence = [x for x in statement.booked if x.amount > 0]
    zero = [x for x in statement.booked if x.amount == 0]
    ids, new = await record_statement(ctx, evidence)
    explained = 0
    for line in evidence:
        if line.direction == st.Direction.CREDIT:
            refs = refs_of(line.normalized())
            deposit = await credited_deposit(ctx.journal, line.bank, refs, line.booked_at)
            explained += deposit is not None
    notes = list(statement.notes)
    if zero:
        notes.append(f"{st.entries(len(zero))} of zero amount: read, not recorded")
    recorded = StatementRecorded(
        format=statement.format, bank=statement.bank, account=statement.account,
        statement_id=statement.statement_id, lines=len(evidence), new=new,
        not_booked=len(statement.not_booked), zero_amount=len(zero), explained=explained,
        evidence_ids=ids, notes=notes,
    )  # fmt: skip
    if not statement.balances:
        return recorded
    closing = statement.balance(st.CLOSING_CODE)
    at = closing.at if closing is not None else statement.balances[-1].at
    balance_id, fresh = await record_evidence_fresh(
        ctx, provider=statement.bank, event_type=st.STATEMENT_BALANCE,
        external_ref=st.balance_ref(statement), occurred_at=at, transfer_id=None,
        normalized=st.balance_facts(statement),
        raw=msgspec.json.encode(statement.balances),
    )  # fmt: skip
    recorded.balance_evidence_id = balance_id
    check = st.closing_check(statement)
    ledger = await ctx.journal.balance_at(*check) if check is not None else None
    recorded.problems = st.problems(statement, ledger)
    if recorded.problems and fresh:
        found = st.finding(statement, recorded.problems, ledger, balance_id)
        opened = dc.open_case(ctx.ids.new("dc"), found, ctx.clock.now_us())
        outcome = await ctx.journal.append(opened.discrepancy_id, 0, [opened])
        assert isinstance(outcome, Committed), outcome
        recorded.case_id = opened.discrepancy_id
    return recorded


def refs_of(normalized: dict[str, str]) -> list[str]:
    """Every reference a statement line carries, its main one first (distinct, non-empty)."""
    found = [normalized.get("reference", "")]
    found += [v for k, v in sorted(normalized.items()) if k.startswith("ref_")]
    return list(dict.fromkeys(r for r in found if r))


async def credited_deposit(
    journal: Journal, bank: str, references: list[str], booked_at: int
) -> str | None:
    """The deposit a bank credit is, if the ledger holds it: credited under one of the line's
    references, at the line's booking time or as the bank's notice first told it."""
    for reference in references:
        candidates = [deposit_id_for(bank, reference, booked_at)]
        told = await journal.first_told(bank, DEPOSIT_CREDIT, reference)
        if told is not None and told != booked_at:
            candidates.append(deposit_id_for(bank, reference, told))
        for deposit_id in candidates:
            if await journal.stream(deposit_id):
                return deposit_id
    return None
