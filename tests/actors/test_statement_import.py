"""A bank statement kept as evidence in the running system (virtual time): a credit the bank
books on a business day (a date, no time) is explained by the deposit its notice credited, under
any of the references the bank gave it; a debit nothing explains is a CRITICAL external_only
case; pending lines are never evidence; a statement whose closing balance is what the ledger
holds opens no case, one that disagrees (or does not add up) opens exactly one, also when the
file is read again."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec

from actors.evidence import record_evidence
from actors.statement_import import record_statements
from actors.system import System
from engine import discrepancies as dc
from engine import ledger, matching
from engine import statements as st
from engine.reconciliation import Kind
from engine.results import Result
from engine.statements import Balance, Direction, EntryStatus, Statement, StatementLine
from engine.timefmt import rfc3339
from sim.providers import BANK
from sim.world import deposit_command
from tests.actors.test_runtime import CLIENT, World, in_world

DAY_US = 86_400_000_000


def bank_statement(
    world: World, day_start: int, reference: str, closing: int, opening: int = 0
) -> Statement:
    """One day's camt-like statement of our account at the simulated bank: the client's
    deposit (the bank's own reference in AcctSvcrRef, the payer's in EndToEndId), a wire out
    nobody ordered, a pending credit."""
    day = rfc3339(day_start)[:10]

    def line(**fields: object) -> StatementLine:
        base: dict[str, object] = {
            "bank": BANK, "booked_at": day_start, "currency": "USD", "account": "US-SIM-1",
            "statement_id": f"S-{day}", "booking_date": day,
        }  # fmt: skip
        return StatementLine(**(base | fields))  # type: ignore[arg-type]

    deposit = line(
        line_id=f"BK-{reference}", amount=900_00, direction=Direction.CREDIT,
        reference="PAYER-E2E-7", references={"end_to_end_id": "PAYER-E2E-7",
                                             "acct_svcr_ref": reference},
    )  # fmt: skip
    wire_out = line(
        line_id=f"BK-OUT-{day}", amount=250_00, direction=Direction.DEBIT, reference="X-1"
    )
    pending = line(
        line_id=f"BK-PDNG-{day}", amount=5_00, direction=Direction.CREDIT, reference="P-1",
        status=EntryStatus.PENDING,
    )  # fmt: skip
    return Statement(
        format="camt.053.001.08", bank=BANK, account="US-SIM-1", currency="USD",
        statement_id=f"S-{day}",
        balances=(
            Balance(code="OPBD", amount=opening, currency="USD", date=day, at=day_start),
            Balance(code="CLBD", amount=closing, currency="USD", date=day,
                    at=day_start + DAY_US - 1),
        ),
        lines=(deposit, wire_out, pending),
    )  # fmt: skip


def test_a_statement_is_explained_judged_and_kept_once(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        ctx = system.ctx
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            # The bank's notice of a client's wire, at 10:00 on the day.
            await anyio.sleep(10 * 3600 - world.clock.now_us() % DAY_US / 1e6)
            _, reference, booked = world.rails.bank.book_deposit(CLIENT, 900_00)
            assert booked % DAY_US >= 9 * 3600 * 1_000_000  # not the start of its day
            await record_evidence(
                ctx, provider=BANK, event_type=matching.DEPOSIT_CREDIT, external_ref=reference,
                occurred_at=booked, transfer_id=None,
                normalized={"client_id": CLIENT, "amount": "900.00", "currency": "USD"},
                raw=b"notice",
            )  # fmt: skip
            command = deposit_command(booked, reference, CLIENT, 900_00)
            assert await system.credit_deposit(command) is Result.ok
            day_start = booked - booked % DAY_US
            ledger_view = await world.store.balance_at(
                ledger.bank(BANK), "USD", day_start + DAY_US - 1
            )
            assert ledger_view == 900_00
            # The statement says the day closed at 650.00: 900.00 in, 250.00 out. The ledger
            # knows of no 250.00 out: the closing balance disagrees with it.
            statement = bank_statement(world, day_start, reference, closing=650_00)
            [kept] = await record_statements(ctx, [statement])
            assert (kept.lines, kept.new, kept.not_booked, kept.explained) == (2, 2, 1, 1)
            assert kept.problems == [
                "the ledger's bank:bank-sim holds 900.00 USD at the end of"
                f" {rfc3339(day_start)[:10]}, the bank's closing balance is 650.00"
            ]
            assert kept.case_id is not None
            [again] = await record_statements(ctx, [statement])
            assert (again.new, again.case_id, again.problems) == (0, None, kept.problems)
            # Read again with a closing balance that also does not add up: the statement
            # is a new fact (another closing balance), judged on its own.
            short = bank_statement(world, day_start - DAY_US, "NONE", closing=1_00, opening=0)
            [odd] = await record_statements(ctx, [short])
            assert any("but CLBD says 1.00" in p for p in odd.problems) and odd.case_id

            await anyio.sleep(2 * 3600)  # past the external-only grace, several full rounds
            found = await system.ctx.journal.discrepancies(open_only=False)
            by_kind: dict[str, list[dc.Discrepancy]] = {}
            for case in found:
                by_kind.setdefault(case.kind, []).append(case)
            drift = sorted(k.discrepancy_id for k in by_kind[Kind.BALANCE_DRIFT])
            assert drift == sorted([kept.case_id, odd.case_id])
            assert all(k.status is dc.Status.OPEN for k in by_kind[Kind.BALANCE_DRIFT])
            external = by_kind[Kind.EXTERNAL_ONLY]
            # The credit is the deposit (explained); the debits nobody ordered are CRITICAL;
            # the other day's credit (reference NONE, no deposit) is external too.
            described = sorted((k.severity, k.actual.get("direction", "in")) for k in external)
            assert described == [("CRITICAL", "out"), ("CRITICAL", "out"), ("HIGH", "in")]
            explained = kept.evidence_ids[0]
            assert all(explained not in k.evidence_ids for k in found)
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_statement_that_agrees_with_the_ledger_opens_no_case(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        _, reference, booked = world.rails.bank.book_deposit(CLIENT, 900_00)
        command = deposit_command(booked, reference, CLIENT, 900_00)
        assert await system.credit_deposit(command) is Result.ok
        day_start = booked - booked % DAY_US
        agreeing = bank_statement(world, day_start, reference, closing=650_00)
        # Without the wire out the ledger does not know of, it would agree: take it out.
        closing = agreeing.balances[1]
        agreeing = msgspec.structs.replace(
            agreeing,
            lines=(agreeing.lines[0], agreeing.lines[2]),
            balances=(agreeing.balances[0], msgspec.structs.replace(closing, amount=900_00)),
        )
        assert st.arithmetic(agreeing) is not None
        [kept] = await record_statements(system.ctx, [agreeing])
        assert (kept.problems, kept.case_id, kept.explained) == ([], None, 1)
        assert kept.balance_evidence_id is not None

    in_world(tmp_path, body)
