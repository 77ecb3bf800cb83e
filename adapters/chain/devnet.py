"""A local development network (anvil) made ready to pay on: our test stablecoin deployed, the
treasury given gas money and tokens. Used by the tests and by `stablerail evm devnet`; never
against a public chain (the calls that set balances exist only on development nodes).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from adapters.chain import artifact
from adapters.chain.rpc import JsonRpc

# anvil's first development account: its key is published in every Foundry install, so it pays
# for nothing real. It deploys the token and is its minter.
DEV_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
MINT_SELECTOR = keccak(text="mint(address,uint256)")[:4]
receipt_wait_s = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class Devnet:
    rpc: JsonRpc
    chain_id: int
    deployer: LocalAccount

    @classmethod
    async def open(cls, rpc: JsonRpc, deployer_key: str = DEV_DEPLOYER_KEY) -> Devnet:
        chain_id = int(await rpc.call("eth_chainId"), 16)
        return cls(rpc, chain_id, Account.from_key(deployer_key))

    async def send(self, to: str | None, data: str, *, gas: int = 2_000_000) -> dict[str, object]:
        """Sign and send from the deployer; the receipt once mined (the node mines it: automine,
        or `anvil_mine` when automine is off)."""
        nonce = int(
            await self.rpc.call("eth_getTransactionCount", self.deployer.address, "pending"), 16
        )
        base = int(
            (await self.rpc.call("eth_getBlockByNumber", "latest", False))["baseFeePerGas"], 16
        )
        tx: dict[str, Any] = {
            "type": 2, "chainId": self.chain_id, "nonce": nonce, "value": 0, "gas": gas,
            "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9, "data": HexStr(data),
        }  # fmt: skip
        if to is not None:
            tx["to"] = to_checksum_address(to)
        signed = self.deployer.sign_transaction(tx)
        tx_hash = await self.rpc.call("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
        return await self.receipt(tx_hash)

    async def receipt(self, tx_hash: str) -> dict[str, object]:
        async with asyncio.timeout(receipt_wait_s):
            while True:
                found = await self.rpc.call("eth_getTransactionReceipt", tx_hash)
                if found is not None:
                    if found.get("status") != "0x1":
                        raise RuntimeError(f"{tx_hash} reverted")
                    return dict(found)
                if not await self.rpc.call("anvil_getAutomine"):
                    await self.rpc.call("anvil_mine", "0x1")
                await asyncio.sleep(0.05)

    async def deploy_token(self, name: str = "Test USD Coin", symbol: str = "USDC") -> str:
        built = artifact.load()
        arguments = encode(["string", "string"], [name, symbol]).hex()
        receipt = await self.send(None, str(built["bytecode"]) + arguments)
        address = receipt["contractAddress"]
        assert isinstance(address, str)
        return address.lower()

    async def mint(self, token: str, to: str, amount: int) -> None:
        data = MINT_SELECTOR + encode(["address", "uint256"], [to_checksum_address(to), amount])
        await self.send(token, "0x" + data.hex(), gas=200_000)

    async def give_gas_money(self, address: str, wei: int) -> None:
        await self.rpc.call("anvil_setBalance", address, hex(wei))
