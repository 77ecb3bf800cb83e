"""Maker-checker in the running system (virtual time): a transfer over the approval threshold waits
in CREATED; its named quote expires while it waits; on approval a fresh quote is taken and the
transfer goes on, recording which quote it really used."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec

from actors.system import System
from engine import commands as c
from engine.quotes import Quote
from engine.results import Result
from engine.states import Status
from engine.transfer import approval_state
from tests.actors.test_controls import fund_usd
from tests.actors.test_runtime import CLIENT, World, in_world, settle


def test_a_quote_that_expired_awaiting_approval_is_retaken_on_approval(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund_usd(system, world, 50_000_00)
            named = await system.issue_quote(CLIENT, "USD", "USDC", 12_000_00, bank=False)
            assert isinstance(named, Quote)
            create = msgspec.structs.replace(world.create("12000.00"), quote_id=named.quote_id)
            _, holder = await system.create_transfer(create)
            assert holder is not None
            state = await world.store.transfer(holder)
            assert state is not None and approval_state(state) == "pending"
            await anyio.sleep(120)  # the named quote's 30 s pass
            assert world.clock.now_us() > named.expires_at
            approved = await system.registry.ask(holder, c.ApproveTransfer(by="carol"))
            assert approved is Result.ok
            await settle(world, holder, Status.RECONCILED)
            state = await world.store.transfer(holder)
            assert state is not None and state.quote is not None
            assert state.quote.quote_id != named.quote_id
            assert state.quote.expires_at > named.expires_at
            assert state.requested_quote_id == named.quote_id  # what the client named, kept
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
