"""Balance-level checks in the running system, in the simulated world (virtual time): value that
reached the treasury wallet from a stranger, and a wire on our bank statement nobody booked, are
drifts between the ledger and the holder; inside the persistence window they are only recorded,
after it each is one balance_drift case naming both sides; when the operators write the stray
value off to suspense (maker-checker), the next check finds the balances agreeing and closes the
case itself. Every change of drift is on record as a reading."""

from __future__ import annotations

from pathlib import Path

import anyio

from actors.system import System
from engine import discrepancies as dc
from engine import ledger
from engine.balances import BALANCE_READING
from engine.reconciliation import Kind
from engine.results import Result
from sim.world import deposit_command
from tests.actors.test_indexer import outside_payment
from tests.actors.test_reconciliation import cases, wait_for
from tests.actors.test_runtime import CLIENT, World, in_world

STRAY = 250_000000


def drift_cases(found: list[dc.Discrepancy]) -> dict[str, dc.Discrepancy]:
    return {k.source: k for k in found if k.kind is Kind.BALANCE_DRIFT}


async def write_off(system: System, case: dc.Discrepancy, account: str, amount: int) -> None:
    entries = (
        dc.correction_entry(account, "USDC", amount, 0),
        dc.correction_entry(ledger.SUSPENSE, "USDC", 0, amount),
    )
    now = system.ctx.clock.now_us()
    proposed = await system.act_on_case(
        case.discrepancy_id,
        lambda k: dc.resolve(k, dc.Resolution.WRITTEN_OFF, "stray", entries, "ops-ana", now),
    )
    assert isinstance(proposed, dc.Discrepancy) and proposed.proposal is not None
    approved = await system.act_on_case(
        case.discrepancy_id, lambda k: dc.decide_proposal(k, True, "", "ops-bo", now)
    )
    assert isinstance(approved, dc.Discrepancy) and approved.status is dc.Status.WRITTEN_OFF


def test_a_drift_that_stays_is_a_case_and_closes_when_the_books_agree(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        treasury = world.rails.treasury
        account = ledger.treasury("ethereum", treasury)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            outside_payment(world, "stranger", treasury, STRAY)
            await anyio.sleep(20 * 60)
            assert drift_cases(await cases(world)) == {}  # recorded, not yet a case

            async def drifted() -> bool:
                return "chain" in drift_cases(await cases(world))

            await wait_for(drifted, within_s=3600)
            drift = drift_cases(await cases(world))["chain"]
            assert (drift.severity, drift.status, drift.transfer_id) == (
                "HIGH",
                dc.Status.OPEN,
                None,
            )
            booked = int(drift.expected["amount"])
            assert drift.expected["account"] == account
            assert int(drift.actual["amount"]) == booked + STRAY
            assert drift.actual["drift"] == str(STRAY)

            async def unclaimed() -> bool:
                return any(k.kind is Kind.EXTERNAL_ONLY for k in await cases(world))

            await wait_for(unclaimed, within_s=3600)
            [stray] = [k for k in await cases(world) if k.kind is Kind.EXTERNAL_ONLY]
            await write_off(system, stray, account, STRAY)

            async def agreed() -> bool:
                return drift_cases(await cases(world))["chain"].closed

            await wait_for(agreed, within_s=3600)
            closed = drift_cases(await cases(world))["chain"]
            assert closed.resolved_by == dc.SYSTEM_ACTOR
            assert "agree again" in closed.resolution_notes
            readings = [
                e.normalized["drift"]
                for _, e, _ in await world.store.evidence_since(0, 10_000)
                if e.event_type == BALANCE_READING and e.normalized["account"] == account
            ]
            assert readings == [str(STRAY), "0"]  # the first check after start saw it
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_wire_nobody_booked_is_a_drift_at_the_bank(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        bank = world.rails.bank
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            # A deposit booked and credited: the bank account is on the books.
            _, reference, booked = bank.book_deposit(CLIENT, 900_00)
            credit = deposit_command(booked, reference, CLIENT, 900_00)
            assert await system.credit_deposit(credit) is Result.ok
            bank.statement.append((world.clock.now_us(), "WIRE9", "", 1_234_56))

            async def drifted() -> bool:
                return "bank" in drift_cases(await cases(world))

            await wait_for(drifted, within_s=2 * 3600)
            drift = drift_cases(await cases(world))["bank"]
            assert drift.severity == "HIGH" and drift.actual["drift"] == "123456"
            assert drift.expected["amount"] == "90000"
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
