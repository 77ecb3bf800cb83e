"""`stablerail bench evm`: payments per second through the real chain adapter to a real node
(anvil, automine: each transaction is mined as it arrives), side by side with the simulated
rails in the same run, and the CPU each payment costs.

A payment is what the engine's effects do for one transfer on chain: ask the node for fees
(ChainNode.view), sign the ERC-20 transfer (custody: eth_estimateGas, then eth-account), broadcast
it, and read its receipt back. `concurrency` payers share the treasury's nonces. Two rounds:

  evm  adapters.chain (EvmNode, KeystoreCustody's signing) over JSON-RPC to anvil on 127.0.0.1;
  sim  sim.chain and sim.custody in this process: the same signing with eth-account, the node
       recovering the sender from the signature, a block mined after each broadcast.

CPU per payment is read from the operating system: this process (time.process_time) and the
node's process (/proc/PID/stat), over a whole round. Signing alone is measured serially.
The rounds run interleaved, several times; the report gives medians and the ratio evm / sim.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr

from adapters import proc
from adapters.chain.anvil import Anvil
from adapters.chain.custody import KeystoreCustody
from adapters.chain.devnet import Devnet
from adapters.chain.network import EvmNetwork
from adapters.chain.node import EvmNode
from adapters.chain.rpc import JsonRpc
from engine.rails import ChainNode, Custody, SignRequest
from sim.chain import SimChain
from sim.custody import SimCustody
from sim.faults import FaultLog, FaultPlan

CHAIN = "ethereum"
PAYEE = "0x" + "b0" * 20
AMOUNT = 10_000_000  # 10 USDC
receipt_poll_s = 0.002
receipt_wait_s = 30.0


class EvmBenchReport(msgspec.Struct, kw_only=True):
    payments: int
    concurrency: int
    rounds: int
    evm_payments_per_s: float
    sim_payments_per_s: float
    evm_vs_sim: float
    # CPU per payment, microseconds: this process, and (evm) the node's process.
    evm_cpu_us_per_payment: float
    evm_node_cpu_us_per_payment: float
    sim_cpu_us_per_payment: float
    # eth-account signing one EIP-1559 transfer, alone.
    signing_cpu_us: float
    rpc_calls_per_payment: float
    evm_runs: list[float]
    sim_runs: list[float]


@dataclasses.dataclass(slots=True)
class _Round:
    seconds: float
    cpu_s: float
    node_cpu_s: float = 0.0
    rpc_calls: int = 0


async def _pay(
    node: ChainNode,
    custody: Custody,
    nonces: itertools.count[int],
    payments: int,
    concurrency: int,
    mine: bool = False,
) -> None:
    left = iter(range(payments))

    async def payer() -> None:
        for _ in left:
            view = await node.view(CHAIN)
            request = SignRequest(
                chain=CHAIN, to_address=PAYEE, currency="USDC", amount=AMOUNT,
                nonce=next(nonces), max_fee_per_gas=view.suggested_max_fee_per_gas,
                max_priority_fee_per_gas=view.suggested_priority_fee_per_gas,
            )  # fmt: skip
            tx = await custody.sign(request)
            await node.broadcast(CHAIN, tx.raw)
            if mine:
                assert isinstance(node, SimChain)
                node.produce()
            # Polling the node for the receipt, as a client of a real node does (automine: it
            # is there at once; a node that never mines it fails the round, it does not hang).
            async with asyncio.timeout(receipt_wait_s):
                while (receipt := await node.receipt(CHAIN, tx.tx_hash)) is None:  # noqa: ASYNC110
                    await asyncio.sleep(receipt_poll_s)
            assert receipt.succeeded and receipt.amount == AMOUNT, receipt

    async with asyncio.TaskGroup() as payers:
        for _ in range(concurrency):
            payers.create_task(payer())


class _EvmRails:
    def __init__(self, anvil: Anvil, session: aiohttp.ClientSession) -> None:
        self.anvil = anvil
        self.rpc = JsonRpc(anvil.url, session)
        self.node: EvmNode | None = None
        self.custody: KeystoreCustody | None = None
        self.nonces = itertools.count()

    async def prepare(self, payments_total: int) -> None:
        devnet = await Devnet.open(self.rpc)
        token = await devnet.deploy_token()
        treasury: LocalAccount = Account.create()
        await devnet.give_gas_money(treasury.address, 10**24)
        await devnet.mint(token, treasury.address, AMOUNT * payments_total)
        network = EvmNetwork(
            rpc_url=self.anvil.url, chain_id=self.anvil.chain_id, tokens=(("USDC", token),)
        )
        self.node = EvmNode(network, self.rpc)
        await self.node.connect()
        self.custody = KeystoreCustody(network, self.rpc, treasury)

    async def round(self, payments: int, concurrency: int) -> _Round:
        assert self.node is not None and self.custody is not None
        calls, cpu, node_cpu = self.rpc.calls, time.process_time(), proc.cpu_s(self.anvil.pid)
        started = time.perf_counter()
        await _pay(self.node, self.custody, self.nonces, payments, concurrency)
        return _Round(
            seconds=time.perf_counter() - started,
            cpu_s=time.process_time() - cpu,
            node_cpu_s=proc.cpu_s(self.anvil.pid) - node_cpu,
            rpc_calls=self.rpc.calls - calls,
        )


class _SimRails:
    def __init__(self, payments_total: int) -> None:
        faults = FaultLog(FaultPlan.none(), random.Random(1))
        self.chain = SimChain(random.Random(1), faults)
        self.chain.rpc_latency_s = 0.0
        self.custody = SimCustody(1)
        self.chain.mint("USDC", self.custody.address(CHAIN), AMOUNT * payments_total)
        self.nonces = itertools.count()

    async def round(self, payments: int, concurrency: int) -> _Round:
        cpu = time.process_time()
        started = time.perf_counter()
        await _pay(self.chain, self.custody, self.nonces, payments, concurrency, mine=True)
        return _Round(seconds=time.perf_counter() - started, cpu_s=time.process_time() - cpu)


def _signing_cpu_us(samples: int = 200) -> float:
    account: LocalAccount = Account.create()
    started = time.process_time()
    for nonce in range(samples):
        account.sign_transaction(
            {
                "type": 2,
                "chainId": 31337,
                "nonce": nonce,
                "to": account.address,
                "value": 0,
                "gas": 65_000,
                "maxFeePerGas": 3 * 10**9,
                "maxPriorityFeePerGas": 10**9,
                "data": HexStr("0xa9059cbb" + "00" * 64),
            }
        )
    return (time.process_time() - started) / samples * 1e6


async def _bench(payments: int, concurrency: int, rounds: int, home: Path) -> EvmBenchReport:
    total = payments * (rounds + 1)
    anvil = Anvil(home / "anvil")
    try:
        async with aiohttp.ClientSession() as session:
            evm = _EvmRails(anvil, session)
            await evm.prepare(total)
            sim = _SimRails(total)
            # A warm-up round of each, not counted.
            await evm.round(max(1, payments // 10), concurrency)
            await sim.round(max(1, payments // 10), concurrency)
            evm_runs: list[_Round] = []
            sim_runs: list[_Round] = []
            for n in range(rounds):
                order: list[tuple[_EvmRails | _SimRails, list[_Round]]] = [
                    (evm, evm_runs),
                    (sim, sim_runs),
                ]
                for rails, runs in order if n % 2 == 0 else reversed(order):
                    runs.append(await rails.round(payments, concurrency))
    finally:
        anvil.stop()

    def rate(runs: list[_Round]) -> list[float]:
        return [round(payments / r.seconds, 1) for r in runs]

    def per_payment_us(values: list[float]) -> float:
        return round(statistics.median(values) / payments * 1e6, 1)

    evm_rate = statistics.median(rate(evm_runs))
    sim_rate = statistics.median(rate(sim_runs))
    return EvmBenchReport(
        payments=payments,
        concurrency=concurrency,
        rounds=rounds,
        evm_payments_per_s=round(evm_rate, 1),
        sim_payments_per_s=round(sim_rate, 1),
        evm_vs_sim=round(evm_rate / sim_rate, 3),
        evm_cpu_us_per_payment=per_payment_us([r.cpu_s for r in evm_runs]),
        evm_node_cpu_us_per_payment=per_payment_us([r.node_cpu_s for r in evm_runs]),
        sim_cpu_us_per_payment=per_payment_us([r.cpu_s for r in sim_runs]),
        signing_cpu_us=round(_signing_cpu_us(), 1),
        rpc_calls_per_payment=round(statistics.median(r.rpc_calls for r in evm_runs) / payments, 2),
        evm_runs=rate(evm_runs),
        sim_runs=rate(sim_runs),
    )


def bench_evm(payments: int, concurrency: int, rounds: int) -> EvmBenchReport:
    with tempfile.TemporaryDirectory(prefix="stablerail-bench-evm-") as home:
        return asyncio.run(_bench(payments, concurrency, rounds, Path(home)))
