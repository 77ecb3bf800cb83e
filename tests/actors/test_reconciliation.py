"""The reconciliation pipeline in the running system, in the simulated world (virtual time):
a provider that keeps a fee opens a fee_mismatch case and the transfer waits in FIAT_SETTLED
until an operator closes the case, then reconciles on the accepted report; a bank credit that
shows hours late is missing evidence (a case) until it comes, then the case closes by itself and
the transfer reconciles; a statement line nothing explains becomes an external_only case after
its grace, while a line the ledger explains never does; a provider's trade report that contradicts
what its webhook said about a transfer already reconciled is a HIGH duplicate case; a wallet
transfer is reconciled only once its payment's block is final (the node's `final`), however many
confirmations it has before that."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import msgspec

from actors.system import System
from engine import commands as c
from engine import discrepancies as dc
from engine import matching
from engine.destinations import BankDestination
from engine.events import OnChainConfirmed, Reconciled
from engine.hashing import request_hash
from engine.reconciliation import Kind
from engine.results import Result
from engine.statements import StatementLine
from engine.states import Status
from sim.faults import FaultLog, FaultPlan
from sim.providers import BANK
from sim.world import deposit_command
from tests.actors.test_controls import fund_usd
from tests.actors.test_runtime import CLIENT, World, in_world, settle


def payout(world: World) -> c.CreateTransfer:
    return c.CreateTransfer(
        transfer_id=world.ids.new("tr"),
        client_id=CLIENT,
        initiator="alice",
        idempotency_key="payroll-1",
        request_hash=request_hash("POST /v1/transfers", {"payroll": 1}),
        source_currency="USD",
        target_currency="MXN",
        amount="500.00",
        destination=BankDestination(country="MX", clabe="002010077777777771", name="Ana"),
        reference="payroll 1",
    )


def with_fault(world: World, kind: str) -> None:
    world.rails.offramp.faults = FaultLog(FaultPlan(rates={kind: 1.0}), random.Random(3))


async def cases(world: World) -> list[dc.Discrepancy]:
    return await world.store.discrepancies(open_only=False)


async def transfer_reaching(
    system: System, world: World, create: c.CreateTransfer, status: Status
) -> str:
    """Fund the client, create the transfer, and wait until it reaches `status`: its id."""
    await fund_usd(system, world, 1_000_00)
    result, tid = await system.create_transfer(create)
    assert result is Result.ok and tid is not None
    await settle(world, tid, status)
    return tid


async def wait_for(predicate: Callable[[], Awaitable[bool]], within_s: float = 4 * 3600) -> None:
    with anyio.fail_after(within_s):
        while not await predicate():  # noqa: ASYNC110 (the store is the one to ask)
            await anyio.sleep(30)


def test_a_wallet_transfer_is_reconciled_only_once_its_block_is_final(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        chain = world.rails.chain
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            tid = await transfer_reaching(system, world, world.create(), Status.CONFIRMED)
            seen: list[tuple[int, Status]] = []
            with anyio.fail_after(600):
                while True:
                    state = await world.store.transfer(tid)
                    assert state is not None and state.mined is not None
                    final = (await chain.view("ethereum")).final
                    seen.append((state.mined.block_number - final, state.status))
                    if state.status is Status.RECONCILED:
                        break
                    await anyio.sleep(0.5)
            # Still CONFIRMED while its block was above the final one; RECONCILED only after.
            assert all(status is Status.CONFIRMED for above, status in seen if above > 0)
            assert any(above > 0 for above, _ in seen)
            assert seen[-1][0] <= 0
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_chain_that_needs_more_confirmations_gets_them(tmp_path: Path) -> None:
    """`[evm] confirmations`: the watcher confirms a payment only that deep (never under the
    engine's floor of 12)."""

    async def body(world: World) -> None:
        context = world.context()
        context.tuning.confirmations_required = 20
        system = System(context)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            tid = await transfer_reaching(system, world, world.create(), Status.CONFIRMED)
            [confirmed] = [
                r.event
                for r in await world.store.stream(tid)
                if isinstance(r.event, OnChainConfirmed)
            ]
            assert confirmed.confirmations >= 20
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_provider_fee_is_a_case_and_the_transfer_waits_for_an_operator(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        with_fault(world, "provider_fee")
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            tid = await transfer_reaching(system, world, payout(world), Status.FIAT_SETTLED)

            async def opened() -> bool:
                return any(k.kind is Kind.FEE_MISMATCH for k in await cases(world))

            await wait_for(opened)
            [case] = await cases(world)  # the bank is checked against what was paid: no more
            assert (case.kind, case.severity, case.transfer_id) == (
                Kind.FEE_MISMATCH,
                "MEDIUM",
                tid,
            )
            assert int(case.actual["fee"]) > 0 and case.expected["fee"] == "0"
            await anyio.sleep(600)
            state = await world.store.transfer(tid)
            assert state is not None and state.status is Status.FIAT_SETTLED  # never on its own
            now = world.clock.now_us()
            closed = await system.act_on_case(
                case.discrepancy_id,
                lambda k: dc.resolve(k, dc.Resolution.RESOLVED, "fee per contract", (), "ops", now),
            )
            assert isinstance(closed, dc.Discrepancy) and closed.status is dc.Status.RESOLVED
            await settle(world, tid, Status.RECONCILED)
            reconciled = [
                r.event for r in await world.store.stream(tid) if isinstance(r.event, Reconciled)
            ]
            assert case.evidence_ids[0] in reconciled[0].evidence
            assert case.discrepancy_id in reconciled[0].evidence
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_late_bank_credit_is_missing_evidence_until_it_comes(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        with_fault(world, "statement_late")
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund_usd(system, world, 1_000_00)
            result, tid = await system.create_transfer(payout(world))
            assert result is Result.ok and tid is not None
            await settle(world, tid, Status.CONFIRMED)

            async def missing() -> bool:
                return any(k.kind is Kind.MISSING_EVIDENCE for k in await cases(world))

            await wait_for(missing)
            state = await world.store.transfer(tid)
            assert state is not None and state.status is Status.CONFIRMED
            await settle(world, tid, Status.RECONCILED, within_s=4 * 3600)
            await anyio.sleep(120)
            [case] = await cases(world)
            assert (case.kind, case.source, case.status) == (
                Kind.MISSING_EVIDENCE, "bank", dc.Status.RESOLVED,
            )  # fmt: skip
            assert case.resolved_by == dc.SYSTEM_ACTOR and "arrived" in case.resolution_notes
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_statement_line_nothing_explains_becomes_external_only(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            now = world.clock.now_us()
            stranger = StatementLine(
                bank=BANK, line_id="WIRE1", booked_at=now, amount=4_321_00, currency="USD",
                direction="credit", reference="WIRE1", memo="unknown payer",
            )  # fmt: skip
            _, reference, booked = world.rails.bank.book_deposit(CLIENT, 900_00)
            known = msgspec.structs.replace(
                stranger, line_id=reference, reference=reference, booked_at=booked, amount=900_00
            )
            ids, new = await system.record_statement([stranger, known])
            assert new == 2 and (await system.record_statement([stranger]))[1] == 0
            credited = await system.credit_from_statement(
                deposit_command(booked, reference, CLIENT, 900_00), ids[1]
            )
            assert credited is Result.ok
            await anyio.sleep(1800)  # inside the grace: nothing yet
            assert [k.kind for k in await cases(world)] == [Kind.MISSING_EVIDENCE]
            await anyio.sleep(3600)
            found = {k.kind: k for k in await cases(world)}
            external = found[Kind.EXTERNAL_ONLY]
            assert (external.severity, external.evidence_ids, external.status) == (
                "HIGH", (ids[0],), dc.Status.OPEN,
            )  # fmt: skip
            # The deposit's notice never came: counted as a case, closed by the credit.
            lost = found[Kind.MISSING_EVIDENCE]
            assert (lost.status, lost.severity, lost.evidence_ids) == (
                dc.Status.RESOLVED, "LOW", (ids[1],),
            )  # fmt: skip
            assert matching.SOURCE_OF[matching.STATEMENT_LINE].value == external.source
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_trade_report_that_contradicts_the_webhook_is_a_high_duplicate(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        with_fault(world, "provider_report_differs")
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            # Reconciled on the webhook's report first.
            tid = await transfer_reaching(system, world, payout(world), Status.RECONCILED)
            rows = world.rails.offramp.trade_report()
            ids, new, differing = await system.record_provider_report(rows)
            assert (len(rows), new, differing) == (1, 1, 1)
            assert await system.record_provider_report(rows) == (ids, 0, 0)

            async def contradicted() -> bool:
                return any(k.kind is Kind.DUPLICATE_EXTERNAL_EVENT for k in await cases(world))

            await wait_for(contradicted, within_s=600)
            [case] = await cases(world)
            assert (case.severity, case.transfer_id, case.source, case.status) == (
                "HIGH", tid, "provider", dc.Status.OPEN,
            )  # fmt: skip
            assert ids[0] in case.evidence_ids and int(case.actual["fee"]) > 0
            state = await world.store.transfer(tid)
            assert state is not None and state.status is Status.RECONCILED  # history stands
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
