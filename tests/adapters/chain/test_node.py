"""The chain node adapter against a real anvil node: it refuses a node on the wrong chain and a
token it cannot convert exactly; a signed transfer broadcast through it is mined, read back from
its receipt and found in the indexer feed; re-sending the same bytes (pending or mined) answers
the same hash and pays once; a transaction the node never saw under a used nonce is refused;
a transfer the token would refuse fails before signing."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from adapters.chain.custody import KeystoreCustody
from adapters.chain.devnet import Devnet
from adapters.chain.network import EvmNetwork
from adapters.chain.node import EvmNode, NodeRefused
from adapters.chain.rpc import JsonRpc
from engine.rails import RailError, Receipt, SignRequest, TxPresence
from engine.results import Result
from tests.adapters.chain.conftest import TREASURY_USDC

pytestmark = pytest.mark.anyio

PAYEE = "0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1"


async def _request(node: EvmNode, nonce: int, amount: int, to: str = PAYEE) -> SignRequest:
    view = await node.view("ethereum")
    return SignRequest(
        chain="ethereum",
        to_address=to,
        currency="USDC",
        amount=amount,
        nonce=nonce,
        max_fee_per_gas=view.suggested_max_fee_per_gas,
        max_priority_fee_per_gas=view.suggested_priority_fee_per_gas,
    )


async def _mined(node: EvmNode, tx_hash: str, within_s: float = 10.0) -> Receipt:
    """The receipt once the node has it: anvil's automine can answer the broadcast before the
    block is sealed (seen on a loaded machine), so the receipt is asked for until it is there."""
    with anyio.fail_after(within_s):
        while (receipt := await node.receipt("ethereum", tx_hash)) is None:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return receipt


async def test_a_node_on_another_chain_is_refused(network: EvmNetwork, rpc: JsonRpc) -> None:
    wrong = EvmNetwork(rpc_url=network.rpc_url, chain_id=1, tokens=network.tokens)
    with pytest.raises(NodeRefused, match="chain id 31337, the configuration says 1"):
        await EvmNode(wrong, rpc).connect()


async def test_a_token_address_without_a_contract_is_refused(
    network: EvmNetwork, rpc: JsonRpc
) -> None:
    empty = EvmNetwork(
        rpc_url=network.rpc_url, chain_id=network.chain_id, tokens=(("USDC", "0x" + "11" * 20),)
    )
    with pytest.raises(NodeRefused, match="no contract at"):
        await EvmNode(empty, rpc).connect()


async def test_a_payment_is_mined_read_back_and_indexed(
    node: EvmNode, custody: KeystoreCustody
) -> None:
    treasury = custody.address("ethereum")
    nonce = await node.nonce("ethereum", treasury)
    tx = await custody.sign(await _request(node, nonce, 25_000_000))
    assert await node.broadcast("ethereum", tx.raw) == tx.tx_hash
    receipt = await _mined(node, tx.tx_hash)
    assert receipt.succeeded
    assert (receipt.currency, receipt.from_address, receipt.to_address, receipt.amount) == (
        "USDC", treasury, PAYEE, 25_000_000,
    )  # fmt: skip
    assert receipt.confirmations == 1
    assert await node.presence("ethereum", tx.tx_hash) is TxPresence.MINED
    assert await node.nonce("ethereum", treasury) == nonce + 1
    assert await node.token_balance("ethereum", "USDC", PAYEE) == 25_000_000
    assert await node.token_balance("ethereum", "USDC", treasury) == TREASURY_USDC - 25_000_000
    feed = await node.transfers(
        "ethereum", 0, frozenset({treasury}), confirmations=1, blocks_max=1_000
    )
    # Every block from genesis to the head, each chained to the one before.
    assert [b[0] for b in feed.blocks] == list(range(receipt.block_number + 1))
    assert all(b[2] == a[1] for a, b in zip(feed.blocks, feed.blocks[1:], strict=False))
    moved = [(log.from_address, log.to_address, log.amount) for log in feed.logs]
    # The mint into the treasury and the payment out of it.
    assert moved == [("0x" + "00" * 20, treasury, TREASURY_USDC), (treasury, PAYEE, 25_000_000)]
    assert feed.logs[1].tx_hash == tx.tx_hash
    assert feed.logs[1].block_hash == receipt.block_hash


async def test_the_same_bytes_sent_again_pay_once(
    node: EvmNode, custody: KeystoreCustody, rpc: JsonRpc
) -> None:
    treasury = custody.address("ethereum")
    await rpc.call("evm_setAutomine", False)
    tx = await custody.sign(await _request(node, await node.nonce("ethereum", treasury), 1_000_000))
    assert await node.broadcast("ethereum", tx.raw) == tx.tx_hash
    # Pending: the node already holds these bytes.
    assert await node.broadcast("ethereum", tx.raw) == tx.tx_hash
    assert await node.presence("ethereum", tx.tx_hash) is TxPresence.PENDING
    await rpc.call("anvil_mine", "0x1")
    # Mined: the node answers "nonce too low"; the hash is looked up and found.
    assert await node.broadcast("ethereum", tx.raw) == tx.tx_hash
    await rpc.call("anvil_mine", "0x1")
    assert await node.token_balance("ethereum", "USDC", PAYEE) == 1_000_000


async def test_a_stranger_under_a_used_nonce_is_refused(
    node: EvmNode, custody: KeystoreCustody
) -> None:
    treasury = custody.address("ethereum")
    nonce = await node.nonce("ethereum", treasury)
    first = await custody.sign(await _request(node, nonce, 1_000_000))
    await node.broadcast("ethereum", first.raw)
    other = await custody.sign(await _request(node, nonce, 2_000_000))
    with pytest.raises(RailError) as refused:
        await node.broadcast("ethereum", other.raw)
    assert refused.value.result is Result.transaction_mismatch
    assert not refused.value.transient
    assert "nonce too low" in refused.value.message


async def test_a_transfer_the_token_would_refuse_fails_before_signing(
    node: EvmNode, custody: KeystoreCustody
) -> None:
    treasury = custody.address("ethereum")
    request = await _request(node, await node.nonce("ethereum", treasury), TREASURY_USDC + 1)
    with pytest.raises(RailError, match="balance too low") as refused:
        await custody.sign(request)
    assert not refused.value.transient
    assert custody.signed == 0


async def test_fees_follow_the_base_fee(node: EvmNode, rpc: JsonRpc) -> None:
    view = await node.view("ethereum")
    history = await rpc.call("eth_feeHistory", "0x1", "latest", [])
    base = int(history["baseFeePerGas"][-1], 16)
    assert view.suggested_priority_fee_per_gas > 0
    assert view.suggested_max_fee_per_gas == 2 * base + view.suggested_priority_fee_per_gas


async def test_an_unreachable_node_is_a_transient_failure(network: EvmNetwork) -> None:
    import aiohttp

    from adapters.chain.anvil import free_port

    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(f"http://127.0.0.1:{free_port()}", session, timeout_s=1.0)
        with pytest.raises(RailError) as failed:
            await EvmNode(network, rpc).view("ethereum")
    assert failed.value.transient and failed.value.result is Result.chain_unavailable
    assert rpc.retries == 2


async def test_the_devnet_mines_on_demand(devnet: Devnet, rpc: JsonRpc) -> None:
    await rpc.call("evm_setAutomine", False)
    before = int(await rpc.call("eth_blockNumber"), 16)
    await asyncio.wait_for(devnet.deploy_token("Other", "OTH"), 10)
    assert int(await rpc.call("eth_blockNumber"), 16) > before
