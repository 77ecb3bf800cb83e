"""Payout failover in the running system (virtual time, the simulated market and off-ramps):
- the provider a bank payout was quoted with refuses it for good before accepting it: the payout
  moves to the best other provider that quoted, which pays out of its prefunding; exactly one
  provider pays, the refusing one keeps the deposit as prefunding, the books say so and the
  transfer reaches RECONCILED with the reroute in its history;
- with no other provider able to take it (the others disabled), nothing moves: the transfer
  waits in CONFIRMED (no payout anywhere), its payout timer asking again every minute, until a
  provider can take it or an operator acts; it is never failed while the money is at a
  provider;
- a refusal that may be passing (transient) never reroutes: the same provider is asked again;
  its payouts failing past their retries count toward the provider's circuit breaker, which
  opens (journaled, naming the payout), while refusals for good are answers and leave it closed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import msgspec
import pytest

from actors.system import System
from engine import commands as c
from engine import events as ev
from engine.breaker import CircuitState
from engine.destinations import BankDestination
from engine.pricing import ProviderTerms, rank
from engine.rails import (
    OffRamp,
    PayoutRequest,
    PayoutState,
    PayoutStatus,
    RailError,
    WithdrawalRequest,
    WithdrawalStatus,
)
from engine.results import Result
from engine.states import Status
from engine.transfer import TransferState
from sim.world import prefunding_usdc
from tests.actors.test_controls import fund_usd
from tests.actors.test_runtime import World, in_world, settle

CLABE = "032180000118359719"


class Refusing:
    """The off-ramp port, with every provider refusing a deposit-funded payout (the first ask
    for a transfer): for good, or (`transient`) as a passing error, `times` times."""

    def __init__(self, inner: OffRamp, *, transient: bool = False, times: int = 10**9) -> None:
        self.inner, self.transient, self.times = inner, transient, times
        self.refused: list[str] = []

    async def start_payout(self, request: PayoutRequest) -> str:
        if not request.prefunded and len(self.refused) < self.times:
            self.refused.append(request.provider)
            raise RailError(
                Result.provider_unavailable, "compliance hold", transient=self.transient
            )
        return await self.inner.start_payout(request)

    async def payout_status(self, provider: str, provider_trade_id: str) -> PayoutStatus:
        return await self.inner.payout_status(provider, provider_trade_id)

    async def prefunded(self, provider: str, currency: str) -> int:
        return await self.inner.prefunded(provider, currency)

    async def withdraw(self, request: WithdrawalRequest) -> str:
        return await self.inner.withdraw(request)

    async def withdrawal_status(self, provider: str, withdrawal_id: str) -> WithdrawalStatus:
        return await self.inner.withdrawal_status(provider, withdrawal_id)


def bank_create(world: World) -> c.CreateTransfer:
    return msgspec.structs.replace(
        world.create("2500.00"),
        target_currency="MXN",
        destination=BankDestination(country="MX", clabe=CLABE, name="Proveedora del Norte"),
    )


async def bank_transfer_reconciled(system: System, world: World) -> TransferState:
    """A funded client's USD -> MXN bank transfer, created and followed to RECONCILED."""
    await fund_usd(system, world, 5_000_00)
    _, holder = await system.create_transfer(bank_create(world))
    assert holder is not None
    await settle(world, holder, Status.RECONCILED)
    state = await world.store.transfer(holder)
    assert state is not None and state.quote is not None
    return state


def system_with(world: World, refusing: Refusing) -> System:
    ctx = world.context()
    return System(dataclasses.replace(ctx, rails=dataclasses.replace(ctx.rails, offramp=refusing)))


def test_a_refused_payout_moves_to_the_next_best_provider_and_is_paid_once(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        refusing = Refusing(world.rails.offramp)
        system = system_with(world, refusing)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            state = await bank_transfer_reconciled(system, world)
            assert state.quote is not None
            holder, first = state.transfer_id, state.quote.provider
            ranked = [a.provider for a in sorted(state.quote.alternatives, key=rank)]
            expected = next(p for p in ranked if p != first)
            assert refusing.refused == [first]
            assert (state.refused_by, state.rerouted_to) == ((first,), expected)
            events = [r.event for r in await world.store.load_stream(holder)]
            (moved,) = [e for e in events if isinstance(e, ev.OffRampRerouted)]
            assert (moved.previous, moved.provider) == (first, expected)
            assert "refused the payout before accepting it: compliance hold" in moved.reason
            (initiated,) = [e for e in events if isinstance(e, ev.OffRampInitiated)]
            assert initiated.provider == expected
            payouts = [
                (name, p.state)
                for (name, tid), p in world.rails.offramp.payouts.items()
                if tid == holder
            ]
            assert payouts == [(expected, PayoutState.PAID)], "one provider paid, once"
            rail = state.quote.rail_amount
            now = world.clock.now_us()
            kept = await world.store.balance_at(f"provider:{first}", "USDC", now)
            spent = await world.store.balance_at(f"provider:{expected}", "USDC", now)
            assert (kept, spent) == (prefunding_usdc + rail, prefunding_usdc - rail)
            assert world.rails.offramp.holding(first, "USDC") == kept
            assert world.rails.offramp.holding(expected, "USDC") == spent
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


@pytest.mark.parametrize("transient", [False, True])
def test_without_a_provider_to_move_to_or_on_a_passing_error_the_payout_waits(
    tmp_path: Path, transient: bool
) -> None:
    async def body(world: World) -> None:
        refusing = Refusing(world.rails.offramp, transient=transient)
        system = system_with(world, refusing)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund_usd(system, world, 5_000_00)
            if not transient:  # the other off-ramps disabled by the operator
                for other in ("conduit-sim", "rampa-sim"):
                    system.ctx.tuning.provider_terms[other] = ProviderTerms(enabled=False)
            _, holder = await system.create_transfer(bank_create(world))
            assert holder is not None
            await settle(world, holder, Status.CONFIRMED)
            await anyio.sleep(600)
            state = await world.store.transfer(holder)
            assert state is not None and state.quote is not None
            assert state.status is Status.CONFIRMED
            assert state.rerouted_to is None and state.provider_trade_id is None
            assert not [k for k in world.rails.offramp.payouts if k[1] == holder]
            assert set(refusing.refused) == {state.quote.provider}
            # A passing error is asked again at once (with backoff); after a refusal for good
            # the payout timer asks again every minute from 2 minutes after the confirmation,
            # in case a provider to move to appeared (and the stuck timer alerts after 24 h).
            assert len(refusing.refused) >= (2 if transient else 5)
            timers = await world.store.reader.fetchall(
                "SELECT kind FROM timers WHERE transaction_id = ?", (holder,)
            )
            assert ("payout",) in timers
            circuit = system.supervisors.pricing.circuits[state.quote.provider]
            changes = [
                r.event
                for r in await world.store.stream(ev.PROVIDERS_STREAM)
                if isinstance(r.event, ev.ProviderCircuitChanged)
                and r.event.provider == state.quote.provider
            ]
            if transient:
                assert circuit.state is CircuitState.OPEN
                assert changes[0].state == "open" and "payout: compliance hold" in changes[0].reason
            else:
                assert circuit.state is CircuitState.CLOSED and changes == []
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
