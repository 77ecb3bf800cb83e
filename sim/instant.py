"""Custody that costs nothing, for the lifecycle benchmark.

The simulated custody signs real EIP-1559 transactions with eth-account and the simulated node
recovers their sender from the signature: about a millisecond of this process's CPU per payment,
work that in production happens in an HSM and on the node, not in the engine's process. To
measure the engine, `stablerail bench lifecycle` swaps in this custody: same key address, same
nonces and fields, but the "signature" is a digest and the node reads the fields back from the
envelope. Every other path (nonces, journaling before broadcast, confirmations) is the same. The
benchmark also runs with real signatures and reports both.
"""

from __future__ import annotations

import hashlib

import msgspec

from engine.chain import SignedTx
from engine.rails import RailError, SignRequest
from engine.results import Result
from sim.chain import ChainTx
from sim.custody import TOKENS, key_for

PREFIX = "0x" + b"stablerail-sim-unsigned:".hex()


class DigestCustody:
    def __init__(self, seed: int) -> None:
        self._address = key_for(seed, "treasury").address.lower()
        self.signed = 0

    def address(self, chain: str) -> str:
        return self._address

    async def sign(self, request: SignRequest) -> SignedTx:
        if request.currency not in TOKENS:
            raise RailError(Result.currency_unknown, request.currency, transient=False)
        self.signed += 1
        fields = [
            request.chain,
            self._address,
            request.nonce,
            request.to_address.lower(),
            request.currency,
            request.amount,
            request.max_fee_per_gas,
        ]
        raw = PREFIX + msgspec.json.encode(fields).hex()
        return SignedTx(
            chain=request.chain,
            tx_hash=_hash(raw),
            raw=raw,
            nonce=request.nonce,
            from_address=self._address,
            to_address=request.to_address.lower(),
            currency=request.currency,
            amount=request.amount,
            max_fee_per_gas=request.max_fee_per_gas,
        )


def decode_digest(raw: str) -> ChainTx:
    """The node's side of DigestCustody: the fields back from the envelope."""
    if not raw.startswith(PREFIX):
        raise RailError(Result.transaction_mismatch, "not a digest envelope", transient=False)
    try:
        _, sender, nonce, to, currency, amount, fee = msgspec.json.decode(
            bytes.fromhex(raw[len(PREFIX) :])
        )
    except (ValueError, msgspec.DecodeError) as e:
        raise RailError(Result.transaction_mismatch, f"undecodable: {e}", transient=False) from e
    return ChainTx(
        tx_hash=_hash(raw),
        raw=raw,
        sender=sender,
        nonce=nonce,
        max_fee_per_gas=fee,
        currency=currency,
        to_address=to,
        amount=amount,
    )


def _hash(raw: str) -> str:
    return "0x" + hashlib.sha256(raw.encode()).hexdigest()
