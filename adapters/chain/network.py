"""Which EVM network the appliance pays on, and the ERC-20 tokens it moves there.

A token's on-chain decimals must equal the ledger scale of its currency (USDC and EURC have 6 on
every chain they are issued on), so an amount converts exactly in both directions; a token with
other decimals is refused when the node is first asked, never rounded.
"""

from __future__ import annotations

import dataclasses

from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from engine.rails import RailError
from engine.results import Result

# topic0 of ERC-20's Transfer(address,address,uint256)
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
BALANCE_OF_SELECTOR = keccak(text="balanceOf(address)")[:4]
DECIMALS_SELECTOR = keccak(text="decimals()")[:4]


def quantity(value: object) -> int:
    """A JSON-RPC quantity ("0x1a"); anything else is the node answering nonsense, which a later
    call may not repeat (RailError, transient)."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RailError(Result.chain_unavailable, f"not a quantity: {value!r}", transient=True)
    try:
        return int(value, 16)
    except ValueError:
        raise RailError(
            Result.chain_unavailable, f"not a quantity: {value!r}", transient=True
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class EvmNetwork:
    rpc_url: str
    # The node must report this chain id (EIP-155): signatures are bound to it.
    chain_id: int
    # currency -> the token contract (lower-case 0x address).
    tokens: tuple[tuple[str, str], ...]
    # Our name for the chain (engine.destinations.CHAINS).
    chain: str = "ethereum"
    # Where the chain indexer feed starts on a data dir that has read no block yet (the block the
    # treasury's opening balance was read at is later; earlier blocks hold nothing of ours).
    start_block: int = 0
    # A payment's block is final when the node's `finalized` block is at or past it; a node
    # without that tag (or with `finality = "depth"`) counts `finality_depth` blocks instead.
    use_finalized_tag: bool = True
    finality_depth: int = 64
    # Gas for a token transfer: the node's estimate times this margin (in percent).
    gas_margin_percent: int = 125
    # Each JSON-RPC request's deadline (adapters.chain.rpc retries a few times within a call).
    rpc_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for currency, address in self.tokens:
            if not is_address(address):
                raise ValueError(f"token {currency}: {address!r} is not an address")

    def token(self, currency: str) -> str | None:
        for code, address in self.tokens:
            if code == currency:
                return address.lower()
        return None

    def currency_of(self, token: str) -> str | None:
        for code, address in self.tokens:
            if address.lower() == token.lower():
                return code
        return None

    def token_checksummed(self, currency: str) -> ChecksumAddress | None:
        found = self.token(currency)
        return None if found is None else to_checksum_address(found)
