"""A payout filled off its quote, end to end in virtual time (the simulated off-ramp fills it,
reports what it debited, the settlement books it, reconciliation judges it):

- 0.3% off, inside the 50 bp tolerance: the beneficiary gets the quoted amount, the fill's extra
  cost is booked to FX P&L, the provider's balance in the ledger is what the provider holds, and
  the transfer reconciles with no case;
- 2% off, beyond it: the difference waits in suspense, the provider's balance still agrees, and
  reconciliation opens an fx_mismatch case for the transfer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from actors.system import System
from engine import ledger
from engine.reconciliation import Kind
from engine.states import Status
from sim.faults import FaultLog, FaultPlan
from tests.actors.test_controls import fund_usd
from tests.actors.test_failover import bank_create
from tests.actors.test_runtime import World, in_world, settle


class Off(random.Random):
    """The off-ramp's randomness, with every fill `bps` off the quote."""

    def __init__(self, bps: int) -> None:
        super().__init__(7)
        self.bps = bps

    def choice(self, seq: Sequence[Any]) -> Any:  # type: ignore[override]
        return self.bps if self.bps in seq else super().choice(seq)


async def booked(world: World, account: str) -> int:
    return await world.store.balance_at(account, "USDC", world.clock.now_us())


@pytest.mark.parametrize("off_bps", [-30, -200])
def test_a_fill_off_the_quote_is_fx_pnl_within_tolerance_and_a_case_beyond(
    tmp_path: Path, off_bps: int
) -> None:
    async def body(world: World) -> None:
        offramp = world.rails.offramp
        offramp.faults = FaultLog(FaultPlan(rates={"fx_slippage": 1.0}), random.Random(1))
        offramp.rng = Off(off_bps)
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund_usd(system, world, 5_000_00)
            _, holder = await system.create_transfer(bank_create(world))
            assert holder is not None
            await settle(world, holder, Status.FIAT_SETTLED)
            state = await world.store.transfer(holder)
            assert state is not None and state.quote is not None
            rail, provider = state.quote.rail_amount, state.quote.provider
            (payout,) = [p for (_, tid), p in offramp.payouts.items() if tid == holder]
            assert payout.paid == state.quote.target_amount, "the quoted amount was paid"
            assert payout.debited is not None
            extra = payout.debited - rail
            assert state.slippage == extra > 0
            # What a fill `off_bps` worse costs: rail * (1 / (1 - off) - 1), to the unit.
            assert abs(extra - rail * -off_bps / (10_000 + off_bps)) < 2
            within = off_bps == -30
            assert await booked(world, ledger.FX_PNL) == (extra if within else 0)
            assert await booked(world, ledger.SUSPENSE) == (0 if within else extra)
            account = ledger.provider(provider)
            assert await booked(world, account) == offramp.holding(provider, "USDC")
            if within:
                await settle(world, holder, Status.RECONCILED)
                assert await world.store.discrepancies(open_only=True) == []
            else:
                with anyio.fail_after(3600):
                    while not (cases := await world.store.discrepancies(open_only=True)):  # noqa: ASYNC110
                        await anyio.sleep(10)
                assert [(c.kind, c.transfer_id) for c in cases] == [(Kind.FX_MISMATCH, holder)]
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
