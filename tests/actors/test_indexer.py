"""The chain indexer feed in the running system, in the simulated world (virtual time): a wallet
transfer reconciles on the indexer's Transfer log (not on the watcher's receipt), in the block
the ledger names; a log the indexer delivers twice is a LOW duplicate case, counted and closed at
once, and the transfer still reconciles; value that reaches the treasury from a stranger is an
external-only chain case (HIGH), value that leaves it without a transfer is CRITICAL; after a
reorg deeper than the feed's depth the feed reads the new fork, and a restarted feed adds
nothing it kept before."""

from __future__ import annotations

import random
from pathlib import Path

import anyio

from actors.indexer import ChainIndexFeed
from actors.system import System
from engine import discrepancies as dc
from engine import matching
from engine.events import Reconciled
from engine.rails import SignRequest
from engine.reconciliation import Kind
from engine.states import Status
from sim.custody import key_for, sign_token_transfer
from sim.faults import FaultLog, FaultPlan
from tests.actors.test_reconciliation import cases, transfer_reaching, wait_for
from tests.actors.test_runtime import World, in_world

CHAIN = "ethereum"
FEE = 500 * 10**9


def outside_payment(world: World, role: str, to: str, amount: int, nonce: int = 0) -> str:
    """A token transfer signed outside the engine (a stranger's wallet, or the treasury's key
    used by someone else), mined like any other."""
    account = key_for(1, role)
    if role != "treasury":
        world.rails.chain.mint("USDC", account.address, amount)
    request = SignRequest(
        chain=CHAIN, to_address=to, currency="USDC", amount=amount, nonce=nonce,
        max_fee_per_gas=FEE,
    )  # fmt: skip
    return world.rails.chain.submit(sign_token_transfer(account, request).raw)


def test_a_wallet_transfer_reconciles_on_the_indexers_log(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            tid = await transfer_reaching(system, world, world.create(), Status.RECONCILED)
            state = await world.store.transfer(tid)
            assert state is not None and state.mined is not None
            [reconciled] = [
                r.event for r in await world.store.stream(tid) if isinstance(r.event, Reconciled)
            ]
            kinds = {e.evidence_id: e for e in await world.store.evidence_for(tid)}
            [log] = [kinds[e] for e in reconciled.evidence]
            assert log.event_type == matching.CHAIN_TRANSFER
            assert (log.normalized["tx_hash"], log.normalized["block_hash"]) == (
                state.mined.tx_hash, state.mined.block_hash,
            )  # fmt: skip
            assert log.normalized["direction"] == "out"
            # The watcher's receipt is kept too, but it is not the chain's witness.
            assert any(e.event_type == matching.CHAIN_CONFIRMED for e in kinds.values())
            assert await cases(world) == []
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_duplicated_indexer_event_is_a_low_duplicate_counted_and_closed(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        world.rails.chain.faults = FaultLog(
            FaultPlan(rates={"indexer_duplicate": 1.0}, reorg_depth_max=0), random.Random(5)
        )
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            tid = await transfer_reaching(system, world, world.create(), Status.RECONCILED)
            await anyio.sleep(120)
            logs = [
                e.evidence_id
                for e in await world.store.evidence_for(tid)
                if e.event_type == matching.CHAIN_TRANSFER
            ]
            assert len(logs) == 2  # the same log under two of the indexer's ids, both kept
            [case] = await cases(world)
            assert (case.kind, case.severity, case.transfer_id, case.status) == (
                Kind.DUPLICATE_EXTERNAL_EVENT, "LOW", tid, dc.Status.RESOLVED,
            )  # fmt: skip
            assert sorted(case.evidence_ids) == sorted(logs)
            assert case.resolved_by == dc.SYSTEM_ACTOR and "counted once" in case.resolution_notes
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_value_the_ledger_does_not_know_is_an_external_only_chain_case(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        treasury = world.rails.treasury
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            stray = outside_payment(world, "stranger", treasury, 250_000000)
            leak = outside_payment(world, "treasury", "0x" + "ee" * 20, 90_000000)

            async def external() -> list[dc.Discrepancy]:
                return [k for k in await cases(world) if k.kind is Kind.EXTERNAL_ONLY]

            async def both() -> bool:
                return len(await external()) == 2

            await anyio.sleep(1800)
            assert await external() == []  # inside the grace: the ledger may be behind
            await wait_for(both, within_s=3 * 3600)
            found = {k.actual["key"].split("/")[0]: k for k in await external()}
            inbound, outbound = found[stray], found[leak]
            assert (inbound.kind, inbound.source, inbound.severity) == (
                Kind.EXTERNAL_ONLY, "chain", "HIGH",
            )  # fmt: skip
            assert inbound.actual["amount"] == "250000000"
            assert (outbound.kind, outbound.source, outbound.severity) == (
                Kind.EXTERNAL_ONLY, "chain", "CRITICAL",
            )  # fmt: skip
            assert outbound.actual["counterparty"] == "0x" + "ee" * 20
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


class _Nudges:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def request(self, transfer_id: str) -> None:
        self.asked.append(transfer_id)


def test_a_deep_reorg_rewinds_the_feed_and_a_restart_adds_nothing(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        ctx = world.context()
        feed = ChainIndexFeed(ctx, _Nudges())  # type: ignore[arg-type]
        chain = world.rails.chain
        tx_hash = outside_payment(world, "stranger", world.rails.treasury, 5_000000)
        await anyio.sleep(2 * 14)  # mined, and 13 blocks on top: deep enough to read
        await feed.poll(CHAIN)
        assert feed.logs_kept == 1
        before = await chain.receipt(CHAIN, tx_hash)
        chain.reorg(14)  # deeper than the feed reads: the block it read is gone
        after = await chain.receipt(CHAIN, tx_hash)
        assert before is not None and after is not None
        assert after.block_hash != before.block_hash
        await anyio.sleep(2 * 12)
        await feed.poll(CHAIN)
        assert feed.rewinds == 1
        await feed.poll(CHAIN)
        assert feed.logs_kept == 2  # the new fork's log is kept as well
        hashes = {
            e.normalized["block_hash"]
            for _, e, _ in await world.store.evidence_since(0, 100)
            if e.event_type == matching.CHAIN_TRANSFER
        }
        assert hashes == {before.block_hash, after.block_hash}
        restarted = ChainIndexFeed(ctx, _Nudges())  # type: ignore[arg-type]
        await restarted.poll(CHAIN)
        assert restarted.logs_kept == 0 and restarted.next_block[CHAIN] > after.block_number

    in_world(tmp_path, body)
