"""Which nonce a treasury wallet's next transaction takes.

A nonce is reserved for a transfer when its transaction is signed and becomes used when the signed
transaction is journaled; a reservation whose transaction never reached the journal is released
and handed to the next signer, so the wallet's nonces stay gap-free (a gap would strand every later
transaction in the mempool). Reserving twice for the same transfer gives the same nonce, which is
what makes re-signing after a crash between signing and journaling safe. At start the book is
rebuilt from the journal: every journaled nonce is used, every hole below the highest is free.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from engine.chain import SignedTx

Wallet = tuple[str, str]  # (chain, lower-case address)


class _Slots:
    def __init__(self, start: int) -> None:
        self.next = start
        # Every nonce below `floor` is used; `used` holds only the used ones above it, so the
        # book stays as small as the window of transactions in flight, not the wallet's history.
        self.floor = start
        self.used: set[int] = set()
        self.free: list[int] = []
        self.reserved: dict[str, int] = {}

    def is_used(self, nonce: int) -> bool:
        return nonce < self.floor or nonce in self.used

    def use(self, nonce: int) -> None:
        if nonce >= self.floor:
            self.used.add(nonce)
        while self.floor in self.used:
            self.used.remove(self.floor)
            self.floor += 1


class NonceBook:
    def __init__(self) -> None:
        self._wallets: dict[Wallet, _Slots] = {}

    def known(self, wallet: Wallet) -> bool:
        return wallet in self._wallets

    def open(self, wallet: Wallet, start: int, journaled: Iterable[SignedTx] = ()) -> None:
        """Start tracking `wallet`, whose first nonce not used before stablerail is `start`."""
        slots = _Slots(start)
        highest = start - 1
        for tx in journaled:
            slots.use(tx.nonce)
            highest = max(highest, tx.nonce)
        slots.next = max(start, highest + 1)
        slots.free = [n for n in range(slots.floor, slots.next) if not slots.is_used(n)]
        heapq.heapify(slots.free)
        self._wallets[wallet] = slots

    def reserve(self, wallet: Wallet, transfer_id: str) -> int:
        slots = self._wallets[wallet]
        found = slots.reserved.get(transfer_id)
        if found is not None:
            return found
        if slots.free:
            nonce = heapq.heappop(slots.free)
        else:
            nonce = slots.next
            slots.next += 1
        slots.reserved[transfer_id] = nonce
        return nonce

    def settle(self, wallet: Wallet, transfer_id: str, journaled: SignedTx | None) -> None:
        """The transfer is past signing: its nonce is used if its transaction was journaled,
        otherwise free again."""
        slots = self._wallets.get(wallet)
        if slots is None:
            return
        nonce = slots.reserved.pop(transfer_id, None)
        if journaled is not None:
            slots.use(journaled.nonce)
            if journaled.nonce >= slots.next:
                slots.next = journaled.nonce + 1
        elif nonce is not None and not slots.is_used(nonce):
            heapq.heappush(slots.free, nonce)

    def holes(self, wallet: Wallet) -> list[int]:
        """Nonces below the highest handed out that no journaled transaction uses."""
        slots = self._wallets[wallet]
        return sorted(slots.free)

    def tracked(self, wallet: Wallet) -> int:
        """How many nonces the book holds for `wallet` beyond its floor (bounded by what is in
        flight, not by the wallet's history)."""
        slots = self._wallets[wallet]
        return len(slots.used) + len(slots.free) + len(slots.reserved)
