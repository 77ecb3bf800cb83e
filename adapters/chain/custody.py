"""The custody port (engine.rails.Custody) over a key held in this process: EIP-1559 ERC-20
`transfer(address,uint256)` transactions, signed with eth-account.

Before signing, the node estimates the transfer's gas from the treasury wallet (eth_estimateGas):
a transfer the token would refuse (a treasury short of tokens, a blocked recipient) fails here,
before any nonce is used, with the node's reason. The limit signed is the estimate with a margin.

The shape the port allows for keys held elsewhere (an HSM, a custody provider such as an MPC
wallet service): `address(chain)` names the wallet, `sign(request)` answers a SignedTx whose raw
bytes are exactly what will be broadcast and whose hash is the keccak of those bytes. A remote
signer implements those two calls against its API (the request carries chain, recipient, token,
amount, nonce and both fee fields; the nonce is ours, journaled, never the signer's own), and the
engine checks what comes back (engine.transfer: the same recipient, amount and nonce, well formed)
before journaling it. Nothing else in the engine changes.
"""

from __future__ import annotations

import dataclasses

from eth_abi.abi import encode
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from adapters.chain.network import TRANSFER_SELECTOR, EvmNetwork, quantity
from adapters.chain.rpc import JsonRpc, RpcError, RpcUnreachable
from engine.chain import SignedTx
from engine.rails import RailError, SignRequest
from engine.results import Result


def transfer_call(to_address: str, amount: int) -> str:
    """ERC-20 transfer(address,uint256) calldata."""
    args = encode(["address", "uint256"], [to_checksum_address(to_address), amount])
    return "0x" + (TRANSFER_SELECTOR + args).hex()


@dataclasses.dataclass(slots=True, repr=False)
class KeystoreCustody:
    network: EvmNetwork
    rpc: JsonRpc
    _account: LocalAccount
    signed: int = 0

    def __repr__(self) -> str:
        return f"KeystoreCustody({self._account.address})"

    def address(self, chain: str) -> str:
        return self._account.address.lower()

    async def sign(self, request: SignRequest) -> SignedTx:
        if request.chain != self.network.chain:
            raise RailError(
                Result.destination_invalid, f"no wallet on {request.chain}", transient=False
            )
        token = self.network.token_checksummed(request.currency)
        if token is None:
            raise RailError(
                Result.currency_unknown,
                f"no {request.currency} token configured on {request.chain}",
                transient=False,
            )
        data = transfer_call(request.to_address, request.amount)
        gas = await self._gas(token, data)
        tip = min(request.max_priority_fee_per_gas, request.max_fee_per_gas)
        signed = self._account.sign_transaction(
            {
                "type": 2,
                "chainId": self.network.chain_id,
                "nonce": request.nonce,
                "to": token,
                "value": 0,
                "gas": gas,
                "maxFeePerGas": request.max_fee_per_gas,
                "maxPriorityFeePerGas": tip,
                "data": HexStr(data),
            }
        )
        self.signed += 1
        return SignedTx(
            chain=request.chain,
            tx_hash="0x" + bytes(signed.hash).hex(),
            raw="0x" + bytes(signed.raw_transaction).hex(),
            nonce=request.nonce,
            from_address=self._account.address.lower(),
            to_address=request.to_address.lower(),
            currency=request.currency,
            amount=request.amount,
            max_fee_per_gas=request.max_fee_per_gas,
            max_priority_fee_per_gas=tip,
        )

    async def _gas(self, token: str, data: str) -> int:
        call = {"from": self._account.address, "to": token, "data": data}
        try:
            estimate = await self.rpc.call("eth_estimateGas", call)
        except RpcUnreachable as e:
            raise RailError(Result.chain_unavailable, str(e), transient=True) from None
        except RpcError as e:
            raise RailError(
                Result.transaction_mismatch,
                f"the token would refuse this transfer: {e.message}",
                transient=False,
            ) from None
        return quantity(estimate) * self.network.gas_margin_percent // 100
