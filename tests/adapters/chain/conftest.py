"""Fixtures for the chain adapter's tests: a real anvil node, our test stablecoin deployed on it,
and a treasury wallet with gas money and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from adapters.chain.anvil import Anvil, running
from adapters.chain.custody import KeystoreCustody
from adapters.chain.devnet import Devnet
from adapters.chain.network import EvmNetwork
from adapters.chain.node import EvmNode
from adapters.chain.rpc import JsonRpc

TREASURY_USDC = 1_000_000 * 10**6  # one million USDC
GAS_MONEY_WEI = 10 * 10**18
# A fixed treasury key for these tests only (it holds nothing anywhere else).
TREASURY_KEY = "0x" + "4c" * 32


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    with running(tmp_path / "anvil") as node:
        yield node


@pytest.fixture
async def rpc(anvil: Anvil) -> AsyncIterator[JsonRpc]:
    async with aiohttp.ClientSession() as session:
        yield JsonRpc(anvil.url, session, timeout_s=5.0)


@pytest.fixture
def treasury() -> LocalAccount:
    account: LocalAccount = Account.from_key(TREASURY_KEY)
    return account


@pytest.fixture
async def devnet(rpc: JsonRpc) -> Devnet:
    return await Devnet.open(rpc)


@pytest.fixture
async def token(devnet: Devnet, treasury: LocalAccount) -> str:
    address = await devnet.deploy_token()
    await devnet.give_gas_money(treasury.address, GAS_MONEY_WEI)
    await devnet.mint(address, treasury.address, TREASURY_USDC)
    return address


@pytest.fixture
def network(anvil: Anvil, token: str) -> EvmNetwork:
    return EvmNetwork(rpc_url=anvil.url, chain_id=anvil.chain_id, tokens=(("USDC", token),))


@pytest.fixture
async def node(network: EvmNetwork, rpc: JsonRpc) -> EvmNode:
    found = EvmNode(network, rpc)
    await found.connect()
    return found


@pytest.fixture
def custody(network: EvmNetwork, rpc: JsonRpc, treasury: LocalAccount) -> KeystoreCustody:
    return KeystoreCustody(network, rpc, treasury)
