"""A simulated custody service: a real secp256k1 key (derived from the seed) signing real EIP-1559
transactions with eth-account. The transactions call the stablecoin contract's
`transfer(address,uint256)`, exactly what a treasury wallet sends on Ethereum."""

from __future__ import annotations

import hashlib

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from engine.chain import SignedTx
from engine.rails import RailError, SignRequest
from engine.results import Result

CHAIN_ID = 31337
GAS_LIMIT = 65_000
PRIORITY_FEE_WEI = 1_000_000_000
TRANSFER_SELECTOR = "a9059cbb"
# The stablecoin contracts on the simulated chain (USDC's and EURC's mainnet addresses).
TOKENS = {
    "USDC": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
    "EURC": "0x1abaea1f7c830bd89acc67ec4af516284b1bc33c",
}


def key_for(seed: int, role: str) -> LocalAccount:
    secret = hashlib.sha256(f"stablerail-sim:{role}:{seed}".encode()).digest()
    account: LocalAccount = Account.from_key(secret)
    return account


def transfer_call(to_address: str, amount: int) -> str:
    return "0x" + TRANSFER_SELECTOR + to_address.lower()[2:].rjust(64, "0") + f"{amount:064x}"


def sign_token_transfer(account: LocalAccount, request: SignRequest) -> SignedTx:
    token = TOKENS.get(request.currency)
    if token is None:
        raise RailError(Result.currency_unknown, request.currency, transient=False)
    tip = min(request.max_priority_fee_per_gas or PRIORITY_FEE_WEI, request.max_fee_per_gas)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": request.nonce,
            "to": to_checksum_address(token),
            "value": 0,
            "gas": GAS_LIMIT,
            "maxFeePerGas": request.max_fee_per_gas,
            "maxPriorityFeePerGas": tip,
            "data": HexStr(transfer_call(request.to_address, request.amount)),
        }
    )
    return SignedTx(
        chain=request.chain,
        tx_hash="0x" + bytes(signed.hash).hex(),
        raw="0x" + bytes(signed.raw_transaction).hex(),
        nonce=request.nonce,
        from_address=account.address.lower(),
        to_address=request.to_address.lower(),
        currency=request.currency,
        amount=request.amount,
        max_fee_per_gas=request.max_fee_per_gas,
        max_priority_fee_per_gas=tip,
    )


class SimCustody:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._account = key_for(seed, "treasury")
        self.signed = 0

    def __getstate__(self) -> dict[str, int]:
        return {"seed": self.seed, "signed": self.signed}  # the key is derived again

    def __setstate__(self, state: dict[str, int]) -> None:
        self.seed = state["seed"]
        self._account = key_for(self.seed, "treasury")
        self.signed = state["signed"]

    def address(self, chain: str) -> str:
        return self._account.address.lower()

    async def sign(self, request: SignRequest) -> SignedTx:
        self.signed += 1
        return sign_token_transfer(self._account, request)
