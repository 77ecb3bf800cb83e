"""`serve --rails evm`: the real chain, custody and indexer feed, from the `[evm]` configuration.

The treasury wallet's opening balance: on a data dir whose ledger has never held this wallet, the
token balance the node reports at its head is booked as inventory bought in (TreasuryFunded, the
same event the simulated world's genesis uses), its reference naming the block it was read at.
The chain indexer feed starts after that block (or at the configured `start_block`, if later), so
the transfers that made up the opening balance are not read again as unexplained arrivals. Value
that arrives later is such an arrival: the reconciler opens a case for an operator.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Iterable
from pathlib import Path

import aiohttp

from adapters.chain import keystore
from adapters.chain.custody import KeystoreCustody
from adapters.chain.network import BALANCE_OF_SELECTOR, EvmNetwork, quantity
from adapters.chain.node import EvmNode
from adapters.chain.rpc import JsonRpc
from engine.events import TreasuryFunded
from engine.funding import decide_treasury_funding
from engine.ports import Clock, Ids
from engine.rails import ProviderQuote, QuoteProvider, QuoteRequest, RailError

_OPENING = re.compile(r"opening balance read from the chain at block (\d+)")


@dataclasses.dataclass(frozen=True, slots=True)
class EvmSettings:
    network: EvmNetwork
    keystore: Path
    # The keystore's passphrase: this file's first line, else STABLERAIL_KEYSTORE_PASSPHRASE.
    passphrase_file: Path | None = None
    # Blocks on top of a payment's before it is CONFIRMED (the engine's floor is 12).
    confirmations: int = 12


@dataclasses.dataclass(frozen=True, slots=True)
class EvmRails:
    node: EvmNode
    custody: KeystoreCustody

    @property
    def treasury(self) -> str:
        return self.custody.address(self.node.network.chain)


async def open_rails(settings: EvmSettings, session: aiohttp.ClientSession) -> EvmRails:
    """The keystore unlocked and the node checked (keystore.KeystoreError, node.NodeRefused, or
    a RailError when the node cannot be reached)."""
    account = keystore.unlock(settings.keystore, keystore.passphrase(settings.passphrase_file))
    rpc = JsonRpc(settings.network.rpc_url, session, timeout_s=settings.network.rpc_timeout_s)
    node = EvmNode(settings.network, rpc)
    await node.connect()
    return EvmRails(node, KeystoreCustody(settings.network, rpc, account))


def opening_block(references: Iterable[str]) -> int | None:
    """The block an opening balance was read at, from the references of the wallet's bookings."""
    for reference in references:
        found = _OPENING.fullmatch(reference)
        if found is not None:
            return int(found.group(1))
    return None


async def opening_funding(
    rails: EvmRails, ids: Ids, clock: Clock
) -> tuple[int, list[TreasuryFunded]]:
    """The head block, and a funding per token the treasury holds there that books it."""
    node = rails.node
    network = node.network
    head = quantity(await node.rpc.call("eth_blockNumber"))
    found: list[TreasuryFunded] = []
    for currency, token in network.tokens:
        data = "0x" + BALANCE_OF_SELECTOR.hex() + rails.treasury[2:].rjust(64, "0")
        held = quantity(await node.rpc.call("eth_call", {"to": token, "data": data}, hex(head)))
        if held == 0:
            continue
        funded = decide_treasury_funding(
            funding_id=ids.new("tf"),
            chain=network.chain,
            address=rails.treasury,
            currency=currency,
            amount=held,
            reference=f"opening balance read from the chain at block {head}",
            now=clock.now_us(),
        )
        if not isinstance(funded, TreasuryFunded):
            raise RailError(funded, f"cannot book {held} {currency} minor units", transient=False)
        found.append(funded)
    return head, found


@dataclasses.dataclass(frozen=True, slots=True)
class WalletCorridors:
    """A pricing provider, limited to the corridors that pay a wallet in a token this chain has:
    with real rails the simulated off-ramps cannot see the stablecoin a bank payout would send
    them, so those corridors are refused by policy (corridor_unsupported) rather than left to
    fail."""

    inner: QuoteProvider
    network: EvmNetwork

    @property
    def name(self) -> str:
        return self.inner.name

    def corridors(self) -> frozenset[str]:
        served = set()
        for corridor in self.inner.corridors():
            _, _, target = corridor.partition("-")
            if self.network.token(target) is not None:
                served.add(corridor)
        return frozenset(served)

    def quote(self, request: QuoteRequest) -> Awaitable[ProviderQuote]:
        return self.inner.quote(request)
