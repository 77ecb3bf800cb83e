"""Maker-checker in the running system (virtual time): a transfer over the approval threshold waits
in CREATED; its named quote expires while it waits; on approval a fresh quote is taken and the
transfer goes on, recording which quote it really used, unless the client's re-quote policy
refuses the fresh price (beyond its tolerance) or requires a new quote."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from actors.system import System
from engine import commands as c
from engine.pricing import ProviderTerms, Requote, RequotePolicy
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


async def _named_then_approved(world: World, system: System) -> str:
    """A 12,000.00 USD -> USDC transfer naming a quote (paxos-sim's, the cheaper at this
    amount), approved after the quote expired, with paxos-sim disabled meanwhile: the fresh
    price is circle-sim's, 5.00 USD of fee more (about 4.2 bp less for the beneficiary)."""
    await fund_usd(system, world, 50_000_00)
    named = await system.issue_quote(CLIENT, "USD", "USDC", 12_000_00, bank=False)
    assert isinstance(named, Quote) and named.provider == "paxos-sim"
    create = msgspec.structs.replace(world.create("12000.00"), quote_id=named.quote_id)
    _, holder = await system.create_transfer(create)
    assert holder is not None
    await anyio.sleep(120)
    system.ctx.tuning.provider_terms["paxos-sim"] = ProviderTerms(enabled=False)
    assert await system.registry.ask(holder, c.ApproveTransfer(by="carol")) is Result.ok
    return holder


@pytest.mark.parametrize(
    ("policy", "status", "message"),
    [
        (RequotePolicy(tolerance_bps=5), Status.RECONCILED, None),
        (RequotePolicy(tolerance_bps=3), Status.FAILED, "beyond the client's tolerance of 3 bp"),
        (RequotePolicy(mode=Requote.REQUIRE_NEW), Status.FAILED, "requires a new quote"),
    ],
)
def test_the_clients_requote_policy_decides_a_quote_that_expired_awaiting_approval(
    tmp_path: Path, policy: RequotePolicy, status: Status, message: str | None
) -> None:
    """Per client: re-quote automatically within a tolerance (a fresh price worse by more
    fails the transfer, naming the move), or require a new quote (the transfer fails)."""

    async def body(world: World) -> None:
        ctx = world.context()
        ctx.tuning.requote_by_client[CLIENT] = policy
        system = System(ctx)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            holder = await _named_then_approved(world, system)
            await settle(world, holder, status)
            state = await world.store.transfer(holder)
            assert state is not None
            if message is None:
                assert state.quote is not None and state.quote.provider == "circle-sim"
            else:
                assert state.failure_code == "quote_expired"
                assert state.failure_message is not None and message in state.failure_message
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
