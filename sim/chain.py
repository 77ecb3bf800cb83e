"""A simulated EVM-like chain: blocks on a timer, a mempool, per-sender nonces, an EIP-1559-style
base fee that moves, ERC-20 stablecoin balances, a log index (the indexer's feed), and the faults
real chains have.

Transactions arrive as the raw bytes a custody service signed; the node decodes them and recovers
the sender from the signature with eth-account, as a real node would. A block takes, per sender,
the pending transactions in nonce order from the sender's next nonce while each bids at least the
base fee (a nonce gap or an underpriced transaction stops that sender). Faults, each drawn from
the run's fault plan: RPC calls refused, a broadcast whose answer is lost although the node took
the transaction, pending transactions dropped, base-fee spikes, reorgs that undo the last few
blocks (their transactions go back to the mempool, or are lost) and grow a longer fork, and an
indexer that delivers a log twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable

import msgspec
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from engine import limits
from engine.chain import SignedTx
from engine.rails import ChainView, IndexedBlocks, RailError, Receipt, TransferLog, TxPresence
from engine.results import Result
from sim.custody import CHAIN_ID, TOKENS, TRANSFER_SELECTOR
from sim.faults import FaultLog

TOKEN_OF = {address: currency for currency, address in TOKENS.items()}
BASE_FEE_START_WEI = 20_000_000_000
BASE_FEE_FLOOR_WEI = 1_000_000_000
block_txs_max = 500
rpc_latency_s = 0.05
# Blocks deeper than this are final: no reorg reaches them (the deepest a fault plan draws is 14),
# so the node keeps only their transactions, as a pruned node does.
unfinalized_blocks_max = 64
# The indexer serves logs from final blocks until it has read past them (a reorg rewind or a
# restart may ask again for the 64 below what it asked last), so the saved world stays small
# while the indexer keeps up, and no block is pruned before it is read.


@dataclasses.dataclass(frozen=True, slots=True)
class ChainTx:
    tx_hash: str
    raw: str
    sender: str
    nonce: int
    max_fee_per_gas: int
    currency: str
    to_address: str
    amount: int


@dataclasses.dataclass(slots=True)
class Block:
    number: int
    block_hash: str
    txs: list[tuple[ChainTx, bool]]
    # (kind, key, value before) to undo on a reorg.
    undo: list[tuple[str, object, int]]
    # tx hash -> its position in txs, so a receipt is found without a scan.
    where: dict[str, int] = dataclasses.field(default_factory=dict)


class SimChain:
    # How many times faster than real time the world moves (`serve --sim-speed`).
    speed: float = 1.0

    def __init__(self, rng: random.Random, faults: FaultLog, *, chain: str = "ethereum") -> None:
        self.chain = chain
        self.rng = rng
        self.faults = faults
        # The unfinalized tail of the chain; older blocks live on only as `finalized` receipts.
        self.blocks: list[Block] = [Block(0, self._hash(), [], [])]
        # tx hash -> (block number, block hash, transaction, succeeded), for final blocks.
        self.finalized: dict[str, tuple[int, str, ChainTx, bool]] = {}
        # Final blocks by number, for the indexer's log feed, from the lowest it may still ask.
        self.final_blocks: dict[int, Block] = {}
        self.indexed_from = 0
        self.mempool: dict[str, ChainTx] = {}
        self.slots: dict[tuple[str, int], str] = {}
        self.nonces: dict[str, int] = {}
        self.balances: dict[tuple[str, str], int] = {}
        self.mined_at: dict[str, int] = {}
        self.base_fee = BASE_FEE_START_WEI
        self.reorgs = 0
        self.deepest_reorg = 0
        # Moves on every change anyone outside could observe (sim.durable saves on a change).
        self.generation = 0
        # How long each RPC takes; 0 for a node that answers at once (the lifecycle benchmark).
        self.rpc_latency_s = rpc_latency_s
        # How the node reads a raw transaction (sim.instant swaps in its own for the benchmark).
        self.decode: Callable[[str], ChainTx] = decode

    def __setstate__(self, state: dict[str, object]) -> None:
        if "final_blocks" not in state:  # a world saved before the indexer: no history kept
            blocks = state["blocks"]
            assert isinstance(blocks, list)
            state.update(final_blocks={}, indexed_from=blocks[0].number)
        self.__dict__.update(state)

    # --- the world's side ---------------------------------------------------------------------

    def mint(self, currency: str, address: str, amount: int) -> None:
        self.generation += 1
        key = (currency, address.lower())
        self.balances[key] = self.balances.get(key, 0) + amount

    def balance(self, currency: str, address: str) -> int:
        return self.balances.get((currency, address.lower()), 0)

    @property
    def head(self) -> int:
        return self.blocks[-1].number

    def start_at(self, number: int) -> None:
        """Begin at block `number` instead of 0, before anything happened: the chain a store
        written by an earlier run has seen up to there (its indexer resumes from its last
        block, not from the start)."""
        assert len(self.blocks) == 1 and not self.blocks[0].txs and not self.finalized
        self.blocks = [Block(number, self._hash(), [], [])]
        self.indexed_from = number

    async def run(self, block_time_s: float) -> None:
        while True:
            await asyncio.sleep(block_time_s / self.speed)
            self.produce()

    def produce(self) -> None:
        self.generation += 1
        if self.faults.fire("reorg") and self.faults.plan.reorg_depth_max > 0:
            self.reorg(self.rng.randint(1, self.faults.plan.reorg_depth_max))
        self._move_base_fee()
        self._drop()
        self._mine()

    def reorg(self, depth: int) -> None:
        depth = min(depth, len(self.blocks) - 1)
        if depth <= 0:
            return
        self.reorgs += 1
        self.deepest_reorg = max(self.deepest_reorg, depth)
        returned: list[ChainTx] = []
        for _ in range(depth):
            block = self.blocks.pop()
            for kind, key, before in reversed(block.undo):
                table: dict[object, int] = self.nonces if kind == "nonce" else self.balances  # type: ignore[assignment]
                table[key] = before
            for tx, _ok in block.txs:
                del self.mined_at[tx.tx_hash]
                returned.append(tx)
        for tx in returned:
            if not self.faults.fire("tx_dropped"):
                self._pool(tx)
        for _ in range(depth):
            self._mine()

    def _move_base_fee(self) -> None:
        if self.faults.fire("gas_spike"):
            self.base_fee *= self.rng.choice((2, 3))
        else:
            self.base_fee = self.base_fee * self.rng.randint(875, 1125) // 1000
        self.base_fee = max(BASE_FEE_FLOOR_WEI, min(self.base_fee, 50 * BASE_FEE_START_WEI))

    def _drop(self) -> None:
        for tx_hash in list(self.mempool):
            if self.faults.fire("tx_dropped"):
                self._unpool(self.mempool[tx_hash])

    def _mine(self) -> None:
        block = Block(self.head + 1, self._hash(), [], [])
        for sender in sorted({s for s, _ in self.slots}):
            nonce = self.nonces.get(sender, 0)
            while len(block.txs) < block_txs_max:
                tx_hash = self.slots.get((sender, nonce))
                if tx_hash is None:
                    break
                tx = self.mempool[tx_hash]
                if tx.max_fee_per_gas < self.base_fee:
                    break
                self._unpool(tx)
                block.where[tx.tx_hash] = len(block.txs)
                block.txs.append((tx, self._apply(tx, block)))
                self.mined_at[tx.tx_hash] = block.number
                nonce += 1
        self.blocks.append(block)
        while len(self.blocks) > unfinalized_blocks_max:
            final = self.blocks.pop(0)
            final.undo.clear()
            self.final_blocks[final.number] = final
            for tx, ok in final.txs:
                self.finalized[tx.tx_hash] = (final.number, final.block_hash, tx, ok)

    def _apply(self, tx: ChainTx, block: Block) -> bool:
        block.undo.append(("nonce", tx.sender, self.nonces.get(tx.sender, 0)))
        self.nonces[tx.sender] = tx.nonce + 1
        source, target = (tx.currency, tx.sender), (tx.currency, tx.to_address)
        if self.balances.get(source, 0) < tx.amount:
            return False  # The token transfer reverts; the nonce is still spent.
        for key in (source, target):
            block.undo.append(("balance", key, self.balances.get(key, 0)))
        self.balances[source] -= tx.amount
        self.balances[target] = self.balances.get(target, 0) + tx.amount
        return True

    def _pool(self, tx: ChainTx) -> None:
        self.mempool[tx.tx_hash] = tx
        self.slots[(tx.sender, tx.nonce)] = tx.tx_hash

    def _unpool(self, tx: ChainTx) -> None:
        del self.mempool[tx.tx_hash]
        if self.slots.get((tx.sender, tx.nonce)) == tx.tx_hash:
            del self.slots[(tx.sender, tx.nonce)]

    def _hash(self) -> str:
        return "0x" + self.rng.randbytes(32).hex()

    # --- the node's RPC (engine.rails.ChainNode) ---------------------------------------------

    async def broadcast(self, chain: str, raw: str) -> str:
        await asyncio.sleep(self.rpc_latency_s / self.speed)
        if self.faults.fire("rpc_unavailable"):
            raise RailError(Result.chain_unavailable, "node refused the call", transient=True)
        tx = self.decode(raw)
        self._accept(tx)
        if self.faults.fire("rpc_timeout"):
            raise RailError(
                Result.chain_unavailable, "no answer (the node took it)", transient=True
            )
        return tx.tx_hash

    def submit(self, raw: str) -> str:
        """A transaction from outside the engine (a provider's own wallet), without RPC faults."""
        tx = self.decode(raw)
        self._accept(tx)
        return tx.tx_hash

    def _accept(self, tx: ChainTx) -> None:
        self.generation += 1
        if tx.tx_hash in self.mined_at or tx.tx_hash in self.mempool:
            return  # Already known: re-sending the same bytes is harmless.
        if tx.nonce < self.nonces.get(tx.sender, 0):
            raise RailError(Result.transaction_mismatch, "nonce too low", transient=False)
        holder = self.slots.get((tx.sender, tx.nonce))
        if holder is not None:
            old = self.mempool[holder]
            if tx.max_fee_per_gas * 10 < old.max_fee_per_gas * 11:
                raise RailError(
                    Result.transaction_mismatch, "replacement underpriced", transient=False
                )
            self._unpool(old)
        self._pool(tx)

    async def view(self, chain: str) -> ChainView:
        await asyncio.sleep(self.rpc_latency_s / self.speed)
        if self.faults.fire("rpc_unavailable"):
            raise RailError(Result.chain_unavailable, "node refused the call", transient=True)
        return ChainView(
            head=self.head,
            # No reorg the fault plans draw reaches this deep (limits.finality_blocks > 14).
            final=self.head - limits.finality_blocks + 1,
            suggested_max_fee_per_gas=2 * self.base_fee + 10**9,
        )

    async def receipt(self, chain: str, tx_hash: str) -> Receipt | None:
        number = self.mined_at.get(tx_hash)
        if number is None:
            return None
        if tx_hash in self.finalized:
            _, block_hash, tx, succeeded = self.finalized[tx_hash]
        else:
            block = self.blocks[number - self.blocks[0].number]
            block_hash = block.block_hash
            tx, succeeded = block.txs[block.where[tx_hash]]
        return Receipt(
            tx_hash=tx_hash,
            block_number=number,
            block_hash=block_hash,
            succeeded=succeeded,
            confirmations=self.head - number + 1,
            currency=tx.currency if succeeded else None,
            from_address=tx.sender if succeeded else None,
            to_address=tx.to_address if succeeded else None,
            amount=tx.amount if succeeded else 0,
        )

    async def presence(self, chain: str, tx_hash: str) -> TxPresence:
        if tx_hash in self.mined_at:
            return TxPresence.MINED
        if tx_hash in self.mempool:
            return TxPresence.PENDING
        return TxPresence.UNKNOWN

    async def nonce(self, chain: str, address: str) -> int:
        return self.nonces.get(address.lower(), 0)

    # --- the indexer's feed (engine.rails.ChainIndexer) ---------------------------------------

    async def transfers(
        self,
        chain: str,
        first_block: int,
        addresses: frozenset[str],
        *,
        confirmations: int,
        blocks_max: int,
    ) -> IndexedBlocks:
        """Transfer logs from or to `addresses` in the canonical blocks deep enough. The
        indexer duplicates a delivery now and then (`indexer_duplicate`): the same log again
        under a second event id."""
        await asyncio.sleep(self.rpc_latency_s / self.speed)
        # What lies below the blocks kept was served before (a restarted feed may ask again
        # from further back): the answer starts where this node's history does.
        start = max(first_block, self.indexed_from, 0)
        self.indexed_from = max(self.indexed_from, first_block - unfinalized_blocks_max)
        for number in [n for n in self.final_blocks if n < self.indexed_from]:
            del self.final_blocks[number]
        last = min(self.head - confirmations + 1, start + blocks_max - 1)
        blocks: list[tuple[int, str, str]] = []
        logs: list[TransferLog] = []
        for number in range(start, last + 1):
            block = self._block(number)
            assert block is not None, f"block {number} pruned before the indexer read it"
            parent = self._block(number - 1)
            blocks.append((number, block.block_hash, parent.block_hash if parent else ""))
            for log_index, (tx, ok) in enumerate(block.txs):
                if not ok or (tx.sender not in addresses and tx.to_address not in addresses):
                    continue
                log = _log(tx, log_index, block)
                logs.append(log)
                if self.faults.fire("indexer_duplicate"):
                    logs.append(msgspec.structs.replace(log, event_id=log.event_id + "-again"))
        return IndexedBlocks(blocks=tuple(blocks), logs=tuple(logs))

    async def token_balance(self, chain: str, currency: str, address: str) -> int:
        await asyncio.sleep(self.rpc_latency_s / self.speed)
        return self.balance(currency, address)

    def _block(self, number: int) -> Block | None:
        tail = number - self.blocks[0].number
        if tail >= 0:
            return self.blocks[tail] if tail < len(self.blocks) else None
        return self.final_blocks.get(number)

    def forget_final(self) -> None:
        """Drop the receipts of final blocks, as a pruned node does (the lifecycle benchmark's
        memory reading: the node's memory is not the engine's). Their transactions read as
        unknown afterwards, so only for a world nothing will ask about them again."""
        for tx_hash in self.finalized:
            del self.mined_at[tx_hash]
        self.finalized.clear()
        # The indexer's feed still needs the final blocks it has not read.
        for number in [n for n in self.final_blocks if n < self.indexed_from]:
            del self.final_blocks[number]

    def slot_of(self, tx_hash: str) -> tuple[str, int] | None:
        """The (sender, nonce) of a transaction the chain has seen (pending, mined or final)."""
        tx = self.mempool.get(tx_hash)
        if tx is None and tx_hash in self.finalized:
            tx = self.finalized[tx_hash][2]
        if tx is None:
            tx = next((t for b in self.blocks for t, _ in b.txs if t.tx_hash == tx_hash), None)
        return (tx.sender, tx.nonce) if tx is not None else None

    def mined_in_slot(self, sender: str, nonce: int) -> str | None:
        """The transaction mined with this sender and nonce in the blocks not yet final."""
        for block in reversed(self.blocks):
            for tx, _ in block.txs:
                if (tx.sender, tx.nonce) == (sender, nonce):
                    return tx.tx_hash
        return None

    def mined_transfers(self) -> list[ChainTx]:
        """Every successful token transfer in the canonical chain, oldest first."""
        final = [tx for _, _, tx, ok in self.finalized.values() if ok]
        return final + [tx for block in self.blocks for tx, ok in block.txs if ok]


def _log(tx: ChainTx, log_index: int, block: Block) -> TransferLog:
    identity = f"{block.block_hash}:{tx.tx_hash}:{log_index}".encode()
    return TransferLog(
        event_id="ix_" + keccak(identity).hex()[:32],
        tx_hash=tx.tx_hash,
        log_index=log_index,
        block_number=block.number,
        block_hash=block.block_hash,
        currency=tx.currency,
        from_address=tx.sender,
        to_address=tx.to_address,
        amount=tx.amount,
    )


def decode(raw: str) -> ChainTx:
    """The node's view of a signed transaction: fields from the envelope, sender recovered from
    the signature; anything but a stablecoin transfer(address,uint256) is refused."""
    try:
        encoded = HexBytes(raw)
        fields = TypedTransaction.from_bytes(encoded).as_dict()
        sender = Account.recover_transaction(encoded).lower()
        tx_hash = "0x" + keccak(encoded).hex()
    except Exception as e:
        raise RailError(Result.transaction_mismatch, f"undecodable: {e}", transient=False) from e
    data = bytes(fields["data"]).hex()
    token = "0x" + bytes(fields["to"]).hex()
    currency = TOKEN_OF.get(token)
    if (
        fields.get("chainId") != CHAIN_ID
        or currency is None
        or not data.startswith(TRANSFER_SELECTOR)
    ):
        raise RailError(Result.transaction_mismatch, "not a stablecoin transfer", transient=False)
    return ChainTx(
        tx_hash=tx_hash,
        raw=raw,
        sender=sender,
        nonce=int(fields["nonce"]),
        max_fee_per_gas=int(fields["maxFeePerGas"]),
        currency=currency,
        to_address="0x" + data[8 + 24 : 8 + 64],
        amount=int(data[8 + 64 : 8 + 128], 16),
    )


def signed_matches(tx: SignedTx, on_chain: ChainTx) -> bool:
    return (tx.tx_hash, tx.nonce, tx.amount) == (on_chain.tx_hash, on_chain.nonce, on_chain.amount)
