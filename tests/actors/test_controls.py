"""Freezes and halts against the running system in the simulated world (virtual time): a freeze
reaching a transfer in each pre-chain state (awaiting approval, being created while its quote is
taken, custody signing in FUNDS_LOCKED) cancels it with the freeze as its reason, releases its
hold and sends nothing on chain; new instructions are refused with the control's code; a
transfer already on chain finishes and reconciles; controls survive a restart (they are
journaled)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from actors.screening import ListScreener
from actors.system import System
from engine import controls, sanctions
from engine.chain import SignedTx
from engine.events import OnChainSubmitted, TransferCreated
from engine.rails import SignRequest
from engine.results import Result
from engine.states import Status
from sim.world import deposit_command
from tests.actors.test_runtime import CLIENT, World, fund, in_world, settle


async def fund_usd(system: System, world: World, cents: int) -> None:
    _, reference, booked = world.rails.bank.book_deposit(CLIENT, cents)
    assert (
        await system.credit_deposit(deposit_command(booked, reference, CLIENT, cents)) is Result.ok
    )


class SlowCustody:
    def __init__(self, inner: object, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    def address(self, chain: str) -> str:
        return self.inner.address(chain)  # type: ignore[attr-defined, no-any-return]

    async def sign(self, request: SignRequest) -> SignedTx:
        await anyio.sleep(self.delay_s)
        return await self.inner.sign(request)  # type: ignore[attr-defined, no-any-return]


async def wait_status(world: World, transfer_id: str, status: Status) -> None:
    with anyio.fail_after(600):
        while (state := await world.store.transfer(transfer_id)) is None or (  # noqa: ASYNC110
            state.status is not status
        ):
            await anyio.sleep(0.5)


STAGES = ["awaiting approval", "quoting", "signing"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_freeze_cancels_a_transfer_in_each_pre_chain_state(tmp_path: Path, stage: str) -> None:
    async def body(world: World) -> None:
        if stage == "quoting":
            world.quote_delay_s = 5.0
        if stage == "signing":
            world.rails.custody = SlowCustody(world.rails.custody, 5.0)  # type: ignore[assignment]
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund_usd(system, world, 20_000_00)
            amount = "12000.00" if stage == "awaiting approval" else "100.00"
            create = world.create(amount)
            created: list[tuple[Result, str | None]] = []

            async def send() -> None:
                created.append(await system.create_transfer(create))

            # A create decides its quote before its commit: while the quote is taken, the
            # transfer is not yet in the store, and the freeze is recorded meanwhile.
            tasks.start_soon(send)
            await anyio.sleep(1)
            if stage != "quoting":
                assert created == [(Result.ok, create.transfer_id)]
            if stage == "signing":
                await wait_status(world, create.transfer_id, Status.FUNDS_LOCKED)
                await anyio.sleep(1)  # custody is signing now
            before = await world.store.transfer(create.transfer_id)
            if stage == "quoting":
                assert before is None and not created
            else:
                assert before is not None
                assert before.status in (Status.CREATED, Status.FUNDS_LOCKED)
            change, _ = await system.control(
                controls.Scope.CLIENT, CLIENT, True, "ops", "court order 17"
            )
            assert change.on and change.by == "ops"
            holder = create.transfer_id
            await wait_status(world, holder, Status.CANCELLED)
            assert created == [(Result.ok, holder)]
            await anyio.sleep(30)
            state = await world.store.transfer(holder)
            assert state is not None and state.status is Status.CANCELLED and not state.txs
            (usd,) = await world.store.client_balances(CLIENT)
            assert (usd.available, usd.held) == (20_000_00, 0)
            treasury = world.rails.custody.address("ethereum")
            assert await world.rails.chain.nonce("ethereum", treasury) == 0  # nothing sent
            # New instructions are refused, with the freeze's code, and kept for audit.
            result, refused = await system.create_transfer(world.create("10.00", key="k-2"))
            assert result is Result.ok and refused is not None
            failed = await world.store.transfer(refused)
            assert failed is not None and failed.failure_code == "client_frozen"
            quote = await system.issue_quote(CLIENT, "USD", "USDC", 1000, bank=False)
            assert quote is Result.client_frozen
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_on_chain_transfers_finish_and_controls_are_journaled(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            result, holder = await system.create_transfer(world.create("100.00"))
            assert result is Result.ok and holder is not None
            await wait_status(world, holder, Status.SENT_ON_CHAIN)
            _, cancelled = await system.control(
                controls.Scope.SYSTEM, controls.SYSTEM_TARGET, True, "ops", "incident 4"
            )
            assert cancelled == 0
            await settle(world, holder, Status.RECONCILED)
            # A second system on the same journal starts halted.
            again = System(world.context())
            await again.controls.open()
            assert world_halted(again)
            change, _ = await system.control(
                controls.Scope.SYSTEM, controls.SYSTEM_TARGET, False, "ops", "resolved"
            )
            assert not change.on
            result, holder = await system.create_transfer(world.create("10.00", key="k-3"))
            await settle(world, holder or "", Status.RECONCILED)
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def world_halted(system: System) -> bool:
    return system.ctx.controls.current.system_halted


def test_a_party_listed_after_creation_is_caught_before_broadcast(tmp_path: Path) -> None:
    """Screened at creation and again before the payment is signed: a clear screening is stored
    with the submission; a list updated in between fails the transfer with sanctions_hit, nothing
    signed, hold released, an alert raised."""

    async def body(world: World) -> None:
        world.quote_delay_s = 5.0
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            _, kept = await system.create_transfer(world.create("10.00", key="k-clean"))
            assert kept is not None
            await settle(world, kept, Status.RECONCILED)
            events = [r.event for r in await world.store.load_stream(kept)]
            (submitted,) = [e for e in events if isinstance(e, OnChainSubmitted)]
            assert submitted.screening is not None and not submitted.screening.hits
            assert submitted.screening.stage is sanctions.Stage.BROADCAST
            created = events[0]
            assert isinstance(created, TransferCreated) and created.screening is not None
            assert created.screening.stage is sanctions.Stage.CREATION
            treasury = world.rails.custody.address("ethereum")
            nonce_before = await world.rails.chain.nonce("ethereum", treasury)

            command = world.create("10.00", key="k-caught")
            caught = command.transfer_id
            # Screened at creation, before its quote is taken; the list changes while it is.
            tasks.start_soon(system.create_transfer, command)
            await anyio.sleep(1)
            address = command.destination.address  # type: ignore[union-attr]
            listing = sanctions.sdn_row(
                "90100", "NEW LISTING", "", "CYBER2", f"Digital Currency Address - ETH {address}"
            )
            sdn, alt = sanctions.SAMPLE_FILES
            listed = sanctions.parse_files(
                [sanctions.ListFile(name="SDN.CSV", text=sdn.text + listing), alt]
            )
            assert isinstance(listed, sanctions.SanctionsList)
            system.ctx.sanctions.screener = ListScreener(listed)
            await wait_status(world, caught, Status.FAILED)
            state = await world.store.transfer(caught)
            assert state is not None and state.failure_code == "sanctions_hit"
            assert "before broadcast" in (state.failure_message or "") and not state.txs
            (usd,) = await world.store.client_balances(CLIENT)
            assert usd.held == 0
            await anyio.sleep(30)
            assert await world.rails.chain.nonce("ethereum", treasury) == nonce_before
            alerts = await world.store.reader.fetchall(
                "SELECT payload FROM journal WHERE event_type = 'AlertRaised'"
            )
            assert any("sanctions_hit" in row[0] and caught in row[0] for row in alerts)
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
