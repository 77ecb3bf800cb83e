"""Pre-funded and just-in-time bank payouts in the running system (virtual time, the simulated
market and off-ramps), USD-MXN configured as a pre-funded corridor:

- the provider holds enough of our stablecoin: the payout is asked for as soon as the deposit is
  broadcast and paid from the prefunding before the deposit confirms; the deposit refills it,
  and at the end the provider's balance in the ledger is what it holds;
- the provider holds too little: the payout waits for the deposit to confirm (just in time), as
  it does in a corridor that is not pre-funded;
- either way the payout is marked settled only once the deposit's block is final (before that a
  reorg can still send the transfer back from CONFIRMED, and FIAT_SETTLED could not follow it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from actors.messages import Envelope, Message
from actors.system import System
from engine import commands as c
from engine import events as ev
from engine import ledger, limits
from tests.actors.test_failover import bank_transfer_reconciled
from tests.actors.test_runtime import World, in_world


@pytest.mark.parametrize("prefunding_usdc", [1_000_000, 1])
def test_a_prefunded_corridor_pays_at_broadcast_when_the_provider_holds_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefunding_usdc: int
) -> None:
    monkeypatch.setattr("sim.world.prefunding_usdc", prefunding_usdc * 10**6)
    covered = prefunding_usdc > 1

    async def body(world: World) -> None:
        ctx = world.context()
        tuning = dataclasses.replace(ctx.tuning, prefunded_corridors=frozenset({"USD-MXN"}))
        system = System(dataclasses.replace(ctx, tuning=tuning))
        settled_at_final: list[int] = []
        tell = system.registry.tell

        def spy(transfer_id: str, message: Message) -> bool:
            if isinstance(message, Envelope) and isinstance(message.command, c.MarkFiatSettled):
                settled_at_final.append(world.rails.chain.head - limits.finality_blocks + 1)
            return tell(transfer_id, message)

        system.registry.tell = spy  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            state = await bank_transfer_reconciled(system, world)
            assert state.quote is not None and state.quote.prefunded
            events = [type(r.event) for r in await world.store.load_stream(state.transfer_id)]
            asked = events.index(ev.OffRampInitiated)
            confirmed = events.index(ev.OnChainConfirmed)
            assert (asked < confirmed) is covered, events
            assert state.mined is not None and settled_at_final
            assert min(settled_at_final) >= state.mined.block_number, "settled before final"
            provider = state.quote.provider
            now = world.clock.now_us()
            booked = await world.store.balance_at(ledger.provider(provider), "USDC", now)
            assert booked == world.rails.offramp.holding(provider, "USDC")
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
