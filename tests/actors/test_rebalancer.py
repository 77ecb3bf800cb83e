"""The rebalancer (actors.rebalancer) against the simulated chain, custody and off-ramps, in
virtual time:

- one operator proposes moving stablecoin from the treasury wallet to a provider's prefunding,
  the proposer cannot approve it, a second operator does; the payment goes from the treasury
  wallet to the provider's deposit address from the address book, with a nonce of its own beside
  a transfer's payment in flight at the same time; once confirmed it is booked (the wallet down,
  the provider up, by exactly the amount), the balance checks find both holders where the ledger
  says, and the reconciler opens no case for the outgoing log no transfer explains;
- a move approved by a process that stopped before signing it is paid by the next process, once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from actors.context import Context, Tuning
from actors.system import System
from engine import ledger
from engine import rebalance as rb
from engine.pricing import ProviderTerms
from engine.results import Result
from engine.states import Status
from tests.actors.test_runtime import World, fund, in_world, settle

AMOUNT = 250_000_000  # 250 USDC


def context(world: World) -> Context:
    """The world's context, with the off-ramps' deposit addresses in the address book, and the
    reconciler quick to call an unexplained log a case."""
    book = {
        name: ProviderTerms(deposit_addresses={"ethereum": address})
        for name, address in world.rails.offramp.addresses.items()
    }
    tuning = Tuning(provider_terms=book, external_only_grace_s=60, balance_check_s=30)
    return dataclasses.replace(world.context(), tuning=tuning)


def wallet(world: World) -> str:
    return ledger.treasury("ethereum", world.rails.treasury)


async def held(world: World) -> dict[str, int]:
    return {account: b for account, _, b in await world.store.held_balances()}


async def until_state(system: System, rebalance_id: str, state: rb.State) -> rb.Rebalance:
    with anyio.fail_after(600):
        while True:
            move = await system.supervisors.rebalancer.load(rebalance_id)
            if move is not None and move.state is state:
                return move
            await anyio.sleep(1)


def test_a_move_proposed_and_approved_by_two_operators_is_paid_and_booked(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        system = System(context(world))
        rebalancer = system.supervisors.rebalancer
        deposit = world.rails.offramp.addresses["bitso-sim"]
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            before = await held(world)
            on_chain = world.rails.chain.balance("USDC", deposit)
            move = await rebalancer.propose(
                from_account=wallet(world), to_account="provider:bitso-sim", currency="USDC",
                amount=AMOUNT, reason="bitso-sim below its floor", by="alice",
            )  # fmt: skip
            assert isinstance(move, rb.Rebalance) and move.to_address == deposit
            rid = move.rebalance_id
            assert await rebalancer.decide(rid, "alice", True, "") is Result.maker_cannot_approve
            create = world.create(amount="40.00")
            assert (await system.create_transfer(create))[0] is Result.ok
            decided = await rebalancer.decide(rid, "bob", True, "")
            assert isinstance(decided, rb.Rebalance) and decided.state is rb.State.APPROVED
            assert await rebalancer.decide(rid, "carol", True, "") is Result.rebalance_not_pending

            done = await until_state(system, rid, rb.State.CONFIRMED)
            await settle(world, create.transfer_id, Status.RECONCILED)
            transfer = await world.store.transfer(create.transfer_id)
            assert transfer is not None
            assert {done.txs[0].nonce, transfer.txs[0].nonce} == {0, 1}, "a nonce each"
            after = await held(world)
            assert after["provider:bitso-sim"] - before["provider:bitso-sim"] == AMOUNT
            paid = transfer.quote.rail_amount if transfer.quote else 0
            assert before[wallet(world)] - after[wallet(world)] == AMOUNT + paid
            assert world.rails.chain.balance("USDC", deposit) - on_chain == AMOUNT
            signed = done.txs[0]
            assert signed in await world.store.signed_transactions(
                signed.chain, signed.from_address
            )

            await anyio.sleep(300)  # balance checks and the reconciler's grace run their course
            checks = system.supervisors.reconciler.balances
            for account in (wallet(world), "provider:bitso-sim"):
                reading, _ = checks.recorded[(account, "USDC")]
                assert reading.drift == 0 and reading.explained, reading
            assert await world.store.discrepancies(open_only=True) == []
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_move_approved_before_a_stop_is_paid_once_by_the_next_process(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        stopped = System(context(world))  # never started: it stops before signing
        move = await stopped.supervisors.rebalancer.propose(
            from_account=wallet(world), to_account="provider:conduit-sim", currency="USDC",
            amount=AMOUNT, reason="conduit-sim below its floor", by="alice",
        )  # fmt: skip
        assert isinstance(move, rb.Rebalance)
        approved = await stopped.supervisors.rebalancer.decide(move.rebalance_id, "bob", True, "")
        assert isinstance(approved, rb.Rebalance) and not approved.txs

        system = System(context(world))
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            done = await until_state(system, move.rebalance_id, rb.State.CONFIRMED)
            tasks.cancel_scope.cancel()
        assert len(done.txs) == 1
        deposit = world.rails.offramp.addresses["conduit-sim"]
        paid = [
            t
            for t in world.rails.chain.mined_transfers()
            if t.sender == world.rails.treasury and t.to_address.lower() == deposit
        ]
        assert len(paid) == 1

    in_world(tmp_path, body)


@pytest.mark.parametrize("to_treasury", [True, False])
def test_a_withdrawal_is_sent_by_the_provider_and_booked(tmp_path: Path, to_treasury: bool) -> None:
    async def body(world: World) -> None:
        system = System(context(world))
        rebalancer = system.supervisors.rebalancer
        target = wallet(world) if to_treasury else "provider:bitso-sim"
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            before = await held(world)
            move = await rebalancer.propose(
                from_account="provider:rampa-sim", to_account=target, currency="USDC",
                amount=AMOUNT, reason="rampa-sim above its ceiling", by="alice",
            )  # fmt: skip
            assert isinstance(move, rb.Rebalance) and move.kind is rb.Kind.WITHDRAWAL
            to_address = (
                world.rails.treasury
                if to_treasury
                else (world.rails.offramp.addresses["bitso-sim"])
            )
            assert move.to_address == to_address.lower()
            decided = await rebalancer.decide(move.rebalance_id, "bob", True, "")
            assert isinstance(decided, rb.Rebalance)
            done = await until_state(system, move.rebalance_id, rb.State.CONFIRMED)
            assert done.withdrawal_tx is not None and done.txs == ()
            after = await held(world)
            assert before["provider:rampa-sim"] - after["provider:rampa-sim"] == AMOUNT
            assert after[target] - before[target] == AMOUNT
            holding = world.rails.offramp.holding("rampa-sim", "USDC")
            assert holding == after["provider:rampa-sim"]
            # The treasury's incoming log is the move's (not an external_only case), and every
            # balance agrees with its holder.
            await anyio.sleep(300)
            assert await world.store.discrepancies(open_only=True) == []
            checks = system.supervisors.reconciler.balances
            for account in (target, "provider:rampa-sim"):
                reading, _ = checks.recorded[(account, "USDC")]
                assert reading.drift == 0 and reading.explained, reading
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
