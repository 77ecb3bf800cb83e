"""On-chain values the engine reasons about: a signed transaction and what was observed of it.

The custody port signs (private keys never enter the engine); the engine only checks that what was
signed is what the transfer promised, and journals the hash and raw bytes before any broadcast, so
a retry re-sends the same bytes with the same nonce and can never pay twice.
"""

from __future__ import annotations

import re

import msgspec

from engine.destinations import is_address

_TX_HASH = re.compile(r"0x[0-9a-f]{64}")
_RAW = re.compile(r"0x(?:[0-9a-f]{2})+")
raw_tx_length_max = 4096


class SignedTx(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    tx_hash: str
    raw: str
    nonce: int
    from_address: str
    to_address: str
    currency: str
    amount: int
    # EIP-1559 fee cap and tip in wei; a replacement must raise both (`outbids`). A tip of 0 is
    # a transaction journaled before the tip was recorded.
    max_fee_per_gas: int
    max_priority_fee_per_gas: int = 0


class Mined(msgspec.Struct, frozen=True, kw_only=True):
    tx_hash: str
    block_number: int
    block_hash: str


def is_tx_hash(text: str) -> bool:
    return isinstance(text, str) and _TX_HASH.fullmatch(text) is not None


def well_formed(tx: SignedTx) -> bool:
    return (
        is_tx_hash(tx.tx_hash)
        and isinstance(tx.raw, str)
        and len(tx.raw) <= raw_tx_length_max
        and _RAW.fullmatch(tx.raw) is not None
        and tx.nonce >= 0
        and is_address(tx.from_address)
        and is_address(tx.to_address)
        and tx.amount > 0
        and tx.max_fee_per_gas > 0
    )


def outbids(old: SignedTx, new: SignedTx) -> bool:
    """Whether `new` may replace `old` in a node's mempool: both fee fields raised by at least
    the 10% geth and most nodes require (a smaller bump is refused as underpriced)."""
    fee_up = new.max_fee_per_gas * 10 >= old.max_fee_per_gas * 11
    tip_up = old.max_priority_fee_per_gas == 0 or (
        new.max_priority_fee_per_gas * 10 >= old.max_priority_fee_per_gas * 11
    )
    return fee_up and tip_up


def same_payment(a: SignedTx, b: SignedTx) -> bool:
    """Whether `b` pays exactly what `a` pays, from the same account slot (a valid replacement)."""
    return (
        a.chain == b.chain
        and a.nonce == b.nonce
        and a.from_address.lower() == b.from_address.lower()
        and a.to_address.lower() == b.to_address.lower()
        and (a.currency, a.amount) == (b.currency, b.amount)
    )
