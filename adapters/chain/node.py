"""The chain node and the chain indexer feed over a real Ethereum JSON-RPC endpoint
(engine.rails.ChainNode and ChainIndexer).

- `connect` checks the node before anything is signed: its chain id is the configured one (a
  signature for one chain is a valid payment on no other, and a wrong node would make every
  lookup lie), and each token contract answers `decimals()` with its currency's ledger scale.
- `broadcast` sends the journaled bytes. Any answer that means "the node already has these bytes"
  is success; any answer that might mean the node took them earlier (`nonce too low`, a
  replacement refused) is settled by looking the hash up. Only a hash the node has never seen
  under a nonce it has moved past is an error (the nonce is another transaction's).
- Fees: EIP-1559. The suggestion is twice the next block's base fee (eth_feeHistory) plus the
  node's priority fee (eth_maxPriorityFeePerGas), so a payment stays includable through about
  six full blocks of base-fee rises.
- Receipts and presence read the canonical chain; confirmations count from the head.
- The indexer feed reads the token contracts' Transfer logs (eth_getLogs) from or to the
  treasury addresses, with each block's hash and parent hash (one JSON-RPC batch), and refuses an
  answer whose logs and blocks disagree (the chain moved between the calls): asked again later.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

from eth_utils.crypto import keccak

from adapters.chain.network import (
    BALANCE_OF_SELECTOR,
    DECIMALS_SELECTOR,
    TRANSFER_TOPIC,
    EvmNetwork,
    quantity,
)
from adapters.chain.rpc import JsonRpc, RpcError, RpcUnreachable
from engine import money
from engine.rails import ChainView, IndexedBlocks, RailError, Receipt, TransferLog, TxPresence
from engine.results import Result

# Messages that mean the node already holds exactly these bytes (geth, anvil, erigon, nethermind,
# besu word it differently).
_ALREADY_KNOWN = (
    "already known",
    "already imported",
    "known transaction",
    "same hash was already imported",
    "alreadyknown",
    "transaction already exists",
)
# Messages after which the node may hold these bytes from an earlier attempt, or mined them
# ("underpriced" covers geth's "replacement transaction underpriced" and its kin).
_LOOK_IT_UP = ("nonce too low", "underpriced", "nonce has already been used", "oldnonce")
fee_multiplier = 2


class NodeRefused(Exception):
    """The node is not one this configuration may pay through (a one-line reason)."""


def _topic_address(address: str) -> str:
    return "0x" + address.lower()[2:].rjust(64, "0")


def _address_of(topic: str) -> str:
    return "0x" + topic[-40:].lower()


@dataclasses.dataclass(slots=True)
class EvmNode:
    network: EvmNetwork
    rpc: JsonRpc

    async def connect(self) -> None:
        """Refuse a node on another chain, or a token whose decimals are not its currency's
        scale (NodeRefused); RailError if the node cannot be reached."""
        chain_id = quantity(await self._call("eth_chainId"))
        if chain_id != self.network.chain_id:
            raise NodeRefused(
                f"the node at {self.rpc.where} is chain id {chain_id}, the configuration says"
                f" {self.network.chain_id}: nothing is signed for the wrong chain"
            )
        for currency, token in self.network.tokens:
            asset = money.asset(currency)
            if asset is None or asset.kind is not money.AssetKind.STABLECOIN:
                raise NodeRefused(f"token {currency}: not a stablecoin this ledger keeps")
            code = await self._call("eth_getCode", token, "latest")
            if code in (None, "0x", "0x0"):
                raise NodeRefused(f"token {currency}: no contract at {token} on this chain")
            answer = await self._call(
                "eth_call", {"to": token, "data": "0x" + DECIMALS_SELECTOR.hex()}, "latest"
            )
            decimals = quantity(answer)
            if decimals != asset.scale:
                raise NodeRefused(
                    f"token {currency} at {token} has {decimals} decimals; the ledger keeps"
                    f" {currency} in {asset.scale}: amounts would not convert exactly"
                )

    async def _call(self, method: str, *params: object) -> Any:
        try:
            return await self.rpc.call(method, *params)
        except RpcUnreachable as e:
            raise RailError(Result.chain_unavailable, str(e), transient=True) from None

    async def _batch(self, calls: Sequence[tuple[str, Sequence[object]]]) -> list[Any]:
        try:
            return await self.rpc.batch(calls)
        except RpcUnreachable as e:
            raise RailError(Result.chain_unavailable, str(e), transient=True) from None

    def _check_chain(self, chain: str) -> None:
        if chain != self.network.chain:
            raise RailError(Result.destination_invalid, f"no node for {chain}", transient=False)

    # --- engine.rails.ChainNode -----------------------------------------------------------------

    async def broadcast(self, chain: str, raw: str) -> str:
        self._check_chain(chain)
        tx_hash = "0x" + keccak(hexstr=raw).hex()
        try:
            answer = await self.rpc.call("eth_sendRawTransaction", raw)
        except RpcUnreachable as e:
            # The node may have taken it: the retry re-sends the same bytes, which is harmless.
            raise RailError(Result.chain_unavailable, str(e), transient=True) from None
        except RpcError as e:
            text = e.message.lower()
            if any(m in text for m in _ALREADY_KNOWN):
                return tx_hash
            if (
                any(m in text for m in _LOOK_IT_UP)
                and await self.presence(chain, tx_hash) is not TxPresence.UNKNOWN
            ):
                return tx_hash
            raise RailError(
                Result.transaction_mismatch,
                f"the node refused {tx_hash}: {e.message}",
                transient=False,
            ) from None
        if isinstance(answer, str) and answer.lower() != tx_hash:
            raise RailError(
                Result.transaction_mismatch,
                f"the node names the transaction {answer}, its bytes hash to {tx_hash}",
                transient=False,
            )
        return tx_hash

    async def view(self, chain: str) -> ChainView:
        self._check_chain(chain)
        head, history, tip = await self._batch(
            [
                ("eth_blockNumber", ()),
                ("eth_feeHistory", ("0x1", "latest", [])),
                ("eth_maxPriorityFeePerGas", ()),
            ]
        )
        base_fees = history.get("baseFeePerGas") if isinstance(history, dict) else None
        if not base_fees:
            raise RailError(
                Result.chain_unavailable, "no base fee: not an EIP-1559 chain", transient=False
            )
        next_base = quantity(base_fees[-1])
        priority = quantity(tip)
        return ChainView(
            head=quantity(head),
            final=await self.final_block(chain),
            suggested_max_fee_per_gas=fee_multiplier * next_base + priority,
            suggested_priority_fee_per_gas=priority,
        )

    async def receipt(self, chain: str, tx_hash: str) -> Receipt | None:
        self._check_chain(chain)
        found, head = await self._batch(
            [("eth_getTransactionReceipt", (tx_hash,)), ("eth_blockNumber", ())]
        )
        if found is None or found.get("blockHash") is None:
            return None
        number = quantity(found["blockNumber"])
        succeeded = quantity(found.get("status", "0x0")) == 1
        moved = self._token_transfer(found.get("logs") or []) if succeeded else None
        currency, sender, to, amount = moved if moved is not None else (None, None, None, 0)
        return Receipt(
            tx_hash=tx_hash,
            block_number=number,
            block_hash=str(found["blockHash"]).lower(),
            succeeded=succeeded,
            confirmations=max(0, quantity(head) - number + 1),
            currency=currency,
            from_address=sender,
            to_address=to,
            amount=amount,
        )

    def _token_transfer(self, logs: list[dict[str, Any]]) -> tuple[str, str, str, int] | None:
        """The first Transfer log of one of our tokens in a receipt."""
        for log in logs:
            currency = self.network.currency_of(str(log.get("address", "")))
            topics = log.get("topics") or []
            if currency is None or len(topics) != 3 or topics[0].lower() != TRANSFER_TOPIC:
                continue
            return currency, _address_of(topics[1]), _address_of(topics[2]), quantity(log["data"])
        return None

    async def presence(self, chain: str, tx_hash: str) -> TxPresence:
        self._check_chain(chain)
        found, receipt = await self._batch(
            [("eth_getTransactionByHash", (tx_hash,)), ("eth_getTransactionReceipt", (tx_hash,))]
        )
        if found is None:
            return TxPresence.UNKNOWN
        # A node may still index a transaction whose block a reorg removed: only a receipt in
        # the canonical chain makes it mined.
        if found.get("blockHash") is None or receipt is None:
            return TxPresence.PENDING
        return TxPresence.MINED

    async def nonce(self, chain: str, address: str) -> int:
        """The account's next nonce as the node sees it, its pending transactions counted (a
        transaction sent from this wallet by anyone keeps its nonce)."""
        self._check_chain(chain)
        return quantity(await self._call("eth_getTransactionCount", address.lower(), "pending"))

    async def final_block(self, chain: str) -> int:
        """The highest block no reorg can undo: the node's `finalized` block, or the head less
        the configured depth."""
        self._check_chain(chain)
        if self.network.use_finalized_tag:
            try:
                block = await self.rpc.call("eth_getBlockByNumber", "finalized", False)
            except RpcUnreachable as e:
                raise RailError(Result.chain_unavailable, str(e), transient=True) from None
            except RpcError:
                block = None  # a node without the tag
            if isinstance(block, dict) and block.get("number") is not None:
                return quantity(block["number"])
        head = quantity(await self._call("eth_blockNumber"))
        return head - self.network.finality_depth

    # --- engine.rails.ChainIndexer --------------------------------------------------------------

    async def transfers(
        self,
        chain: str,
        first_block: int,
        addresses: frozenset[str],
        *,
        confirmations: int,
        blocks_max: int,
    ) -> IndexedBlocks:
        self._check_chain(chain)
        start = max(first_block, self.network.start_block)
        head = quantity(await self._call("eth_blockNumber"))
        last = min(head - confirmations + 1, start + blocks_max - 1)
        if last < start or not self.network.tokens:
            return IndexedBlocks(blocks=(), logs=())
        span = {"fromBlock": hex(start), "toBlock": hex(last)}
        tokens = [address for _, address in self.network.tokens]
        ours = sorted(_topic_address(a) for a in addresses)
        calls: list[tuple[str, Sequence[object]]] = [
            ("eth_getLogs", ({**span, "address": tokens, "topics": [TRANSFER_TOPIC, ours]},)),
            ("eth_getLogs", ({**span, "address": tokens, "topics": [TRANSFER_TOPIC, None, ours]},)),
        ]
        calls += [("eth_getBlockByNumber", (hex(n), False)) for n in range(start, last + 1)]
        answers = await self._batch(calls)
        sent, received, headers = answers[0], answers[1], answers[2:]
        blocks: list[tuple[int, str, str]] = []
        for number, header in zip(range(start, last + 1), headers, strict=True):
            if not isinstance(header, dict) or quantity(header.get("number")) != number:
                raise RailError(Result.chain_unavailable, f"block {number} missing", transient=True)
            blocks.append((number, str(header["hash"]).lower(), str(header["parentHash"]).lower()))
        for (_, block_hash, _), (_, _, parent) in itertools.pairwise(blocks):
            if parent != block_hash:
                raise RailError(
                    Result.chain_unavailable, "the chain moved mid-read", transient=True
                )
        hashes = {number: block_hash for number, block_hash, _ in blocks}
        logs: dict[tuple[str, int], TransferLog] = {}
        for log in [*sent, *received]:
            found = self._log(log, hashes)
            if found is not None:
                logs[(found.tx_hash, found.log_index)] = found
        ordered = sorted(logs.values(), key=lambda x: (x.block_number, x.log_index))
        return IndexedBlocks(blocks=tuple(blocks), logs=tuple(ordered))

    def _log(self, log: dict[str, Any], hashes: dict[int, str]) -> TransferLog | None:
        if log.get("removed"):
            return None
        currency = self.network.currency_of(str(log.get("address", "")))
        topics = log.get("topics") or []
        if currency is None or len(topics) != 3 or topics[0].lower() != TRANSFER_TOPIC:
            return None
        number = quantity(log["blockNumber"])
        block_hash = str(log["blockHash"]).lower()
        if hashes.get(number) != block_hash:
            raise RailError(Result.chain_unavailable, "the chain moved mid-read", transient=True)
        tx_hash = str(log["transactionHash"]).lower()
        log_index = quantity(log["logIndex"])
        identity = f"{block_hash}:{tx_hash}:{log_index}".encode()
        return TransferLog(
            event_id="ix_" + keccak(identity).hex()[:32],
            tx_hash=tx_hash,
            log_index=log_index,
            block_number=number,
            block_hash=block_hash,
            currency=currency,
            from_address=_address_of(topics[1]),
            to_address=_address_of(topics[2]),
            amount=quantity(log["data"]),
        )

    async def token_balance(self, chain: str, currency: str, address: str) -> int:
        self._check_chain(chain)
        token = self.network.token(currency)
        if token is None:
            raise RailError(
                Result.currency_unknown, f"no {currency} token on {chain}", transient=False
            )
        data = "0x" + BALANCE_OF_SELECTOR.hex() + _topic_address(address)[2:]
        return quantity(await self._call("eth_call", {"to": token, "data": data}, "latest"))
