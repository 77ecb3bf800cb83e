"""Failure drills against a real node (anvil) and a real `serve --rails evm` process. In each, the
payment reaches RECONCILED, the payee holds exactly the transfer's amount, the treasury sent
exactly one mined transaction (nonce 1), and no case is left open:

- SIGKILL after custody signed and before the journal holds the transaction, then restart;
- SIGKILL after the broadcast, before the process hears the node's answer, then restart;
- the node takes the broadcast and its answer never comes (a proxy holds it past the deadline):
  the same bytes are sent again and the node's "already known" is the success it is;
- the node drops the pending transaction (anvil_dropTransaction): the journaled bytes go again;
- the payment is stuck under a base fee it cannot pay: it is replaced with the same nonce and
  both fees raised by at least 10%, the replacement journaled first; one of the two is mined;
- a reorg deeper than the confirmation depth takes the confirmed payment away (anvil drops
  orphaned transactions): the transfer goes back to SENT_ON_CHAIN, the same bytes are mined again,
  and it is reconciled only once the new block is final.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.adapters.chain.harness import SLOW_FINALITY, EvmWorld, evm_world, wait_for
from tests.adapters.chain.proxy import StallingProxy
from tests.adapters.test_serve import WALLET

PAID = 24_980_000  # 25.00 USD less the 0.02 fee, in USDC minor units


def _paid_once(world: EvmWorld, tid: str) -> dict[str, object]:
    transfer = world.wait_status(tid, "RECONCILED")
    assert world.balance_of(WALLET) == PAID
    assert world.nonce() == 1
    assert world.open_cases() == []
    return transfer


def _crash_then_restart(tmp_path: Path, failpoint: str) -> None:
    with evm_world(tmp_path) as world:
        serve = world.start({"STABLERAIL_DRILL_FAILPOINT": f"{failpoint}:1"})
        world.fund()
        # The create may be answered before the kill, or lose its answer to it; a client
        # whose request got no answer sends it again with the same key.
        with contextlib.suppress(ConnectionError):
            world.create("drill-1")
        assert serve.proc is not None
        assert serve.proc.wait(60) == -9, world.log()[-3000:]
        assert f"failpoint {failpoint} pass 1: SIGKILL" in world.log()
        world.start()
        tid = world.create("drill-1")
        _paid_once(world, tid)
        events = world.events(tid)
        assert events.count("OnChainSubmitted") == 1, events
        world.stop()


def test_sigkill_between_signing_and_journaling(tmp_path: Path) -> None:
    _crash_then_restart(tmp_path, "chain.after_sign")


def test_sigkill_between_broadcast_and_its_answer(tmp_path: Path) -> None:
    _crash_then_restart(tmp_path, "chain.after_broadcast")


def test_a_broadcast_whose_answer_times_out(tmp_path: Path) -> None:
    proxies: list[StallingProxy] = []

    def through(url: str) -> str:
        proxies.append(StallingProxy(url, hold_s=3.0))
        return proxies[0].url

    try:
        with evm_world(tmp_path, evm_extra="rpc_timeout_s = 1.0", through=through) as world:
            world.start()
            world.fund()
            tid = world.create("timeout-1")
            _paid_once(world, tid)
            assert proxies[0].held == 1 and proxies[0].sends >= 2
            assert world.events(tid).count("OnChainSubmitted") == 1
            world.stop()
    finally:
        for proxy in proxies:
            proxy.close()


class Miner:
    """Mines a block every 0.2 s on a node started with --no-mining, until paused."""

    def __init__(self, world: EvmWorld) -> None:
        self.world = world
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(0.2):
            if self.running.is_set():
                self.world.rpc("anvil_mine", "0x1")

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)


@contextlib.contextmanager
def paused(tmp_path: Path) -> Iterator[tuple[EvmWorld, Miner]]:
    """A node that mines only when told (a block every 0.2 s while the miner runs): serve
    started and the client funded, then mining paused, so the next payment stays pending."""
    with evm_world(tmp_path, anvil_args=("--no-mining", "--slots-in-an-epoch", "1")) as world:
        miner = Miner(world)
        try:
            miner.running.set()
            world.start()
            world.fund()
            miner.running.clear()
            yield world, miner
        finally:
            miner.stop()


def test_a_dropped_transaction_is_sent_again(tmp_path: Path) -> None:
    with paused(tmp_path) as (world, miner):
        tid = world.create("drop-1")
        tx_hash = world.wait_status(tid, "SENT_ON_CHAIN")["on_chain_tx_hash"]
        assert world.rpc("eth_getTransactionByHash", tx_hash)["blockHash"] is None
        world.rpc("anvil_dropTransaction", tx_hash)
        assert world.rpc("eth_getTransactionByHash", tx_hash) is None
        miner.running.set()
        transfer = _paid_once(world, tid)
        # The journaled bytes went again: the same transaction, not a new signature.
        assert transfer["on_chain_tx_hash"] == tx_hash
        assert world.events(tid).count("OnChainSubmitted") == 1
        world.stop()


def test_a_stuck_payment_is_replaced_with_the_same_nonce(tmp_path: Path) -> None:
    with paused(tmp_path) as (world, miner):
        tid = world.create("stuck-1")
        first = world.wait_status(tid, "SENT_ON_CHAIN")["on_chain_tx_hash"]
        signed = world.rpc("eth_getTransactionByHash", first)
        # Blocks go on, every one under a base fee far above what the payment bids.
        high = 20 * int(signed["maxFeePerGas"], 16)

        def replaced() -> bool:
            world.rpc("anvil_setNextBlockBaseFeePerGas", hex(high))
            world.rpc("anvil_mine", "0x1")
            return "OnChainReplaced" in world.events(tid)

        wait_for(replaced, 60, "a replacement")
        miner.running.set()
        transfer = _paid_once(world, tid)
        events = world.events(tid)
        assert events.count("OnChainSubmitted") == 1 and events.count("OnChainReplaced") >= 1
        second = transfer["on_chain_tx_hash"]
        assert second != first
        new = world.rpc("eth_getTransactionByHash", second)
        assert new["nonce"] == signed["nonce"] == "0x0"
        for field in ("maxFeePerGas", "maxPriorityFeePerGas"):
            assert int(new[field], 16) * 10 >= int(signed[field], 16) * 11, field
        # The replaced transaction is not on chain: the replacement took its nonce.
        assert world.rpc("eth_getTransactionReceipt", first) is None
        world.stop()


def test_a_reorg_past_the_confirmations_pays_once(tmp_path: Path) -> None:
    with evm_world(tmp_path, SLOW_FINALITY) as world:
        world.start()
        world.fund()
        tid = world.create("reorg-1")
        confirmed = world.wait_status(tid, "CONFIRMED")
        tx_hash = confirmed["on_chain_tx_hash"]
        receipt = world.rpc("eth_getTransactionReceipt", tx_hash)
        head = int(world.rpc("eth_blockNumber"), 16)
        depth = head - int(receipt["blockNumber"], 16) + 2
        world.rpc("anvil_reorg", {"depth": depth, "tx_block_pairs": []})
        assert world.rpc("eth_getTransactionReceipt", tx_hash) is None
        transfer = _paid_once(world, tid)
        assert transfer["on_chain_tx_hash"] == tx_hash
        events = world.events(tid)
        assert events.count("OnChainConfirmed") == 2, events
        after = world.rpc("eth_getTransactionReceipt", tx_hash)
        assert after["blockHash"] != receipt["blockHash"]
        final = world.rpc("eth_getBlockByNumber", "finalized", False)
        assert int(after["blockNumber"], 16) <= int(final["number"], 16)
        world.stop()
