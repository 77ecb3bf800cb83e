"""The simulated world's own durable state, so an engine that dies does not take the chain, the
bank and the off-ramp with it.

A real chain keeps a transaction the node accepted even if the process that sent it is killed a
microsecond later; a real bank keeps the payout it booked. The simulated world runs inside the
engine's process, so it must do the same by hand: it saves itself (chain, bank, off-ramp, quote
desk, fault plan, the time) to `world.pickle` in the data dir before anything it did can be
observed — before every answer a rail gives the engine and before every webhook it sends. What the
world did that nobody observed yet may be lost with the process; that is indistinguishable from it
not having happened yet. The file is replaced atomically (write, then rename), so a kill leaves
either the old world or the new one. It survives the death of the process (the OS keeps the
written pages), not the loss of the machine: the journal, not this file, is fsynced.

Saving is skipped while nothing observable changed (each part counts its changes in
`generation`), and a chain keeps only its unfinalized tail of blocks, so a save stays small.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from actors.context import Rails
from engine.ports import Clock, Ids
from engine.rails import (
    BankCredit,
    ChainView,
    IndexedBlocks,
    PayoutRequest,
    PayoutStatus,
    Receipt,
    TxPresence,
    WithdrawalRequest,
    WithdrawalStatus,
)
from engine.states import TERMINAL
from sim.checker import OK, Checker
from sim.clock import SeededIds, VirtualClock
from sim.faults import FaultLog
from sim.world import SimRails
from store.executor import ExecutorKind
from store.store import Store

T = TypeVar("T")
WORLD_FILE = "world.pickle"
# 2: the chain keeps final blocks (the indexer reads them) and the off-ramp the trades it has
# reported; a format-1 world loads with neither (its old blocks are not indexed).
FORMAT = 3
READABLE = (1, 2, 3)


@dataclasses.dataclass
class SavedWorld:
    rails: SimRails
    faults: FaultLog
    now_us: int
    # False: `serve --rails evm` pays on a real chain; this world's bank, quotes and off-ramp
    # serve, its chain does not (and `verify` does not hold the books against it).
    chain_in_use: bool = True


class _Pickler(pickle.Pickler):
    """The clock and the id generator belong to the process, not the world: they are written as
    names and the loading process supplies its own."""

    def __init__(self, file: io.BytesIO, clock: Clock, ids: Ids) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.clock = clock
        self.ids = ids

    def persistent_id(self, obj: object) -> str | None:
        if obj is self.clock:
            return "clock"
        if obj is self.ids:
            return "ids"
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, clock: Clock, ids: Ids) -> None:
        super().__init__(file)
        self.clock = clock
        self.ids = ids

    def persistent_load(self, pid: object) -> object:
        match pid:
            case "clock":
                return self.clock
            case "ids":
                return self.ids
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


class WorldFile:
    """Saves one world to `data_dir/world.pickle` whenever it changed."""

    def __init__(self, data_dir: Path, world: SavedWorld, clock: Clock, ids: Ids) -> None:
        self.path = data_dir / WORLD_FILE
        self.world = world
        self.clock = clock
        self.ids = ids
        self.saved_generation = -1
        self.saves = 0

    def generation(self) -> int:
        rails = self.world.rails
        return rails.chain.generation + rails.bank.generation + rails.offramp.generation

    def save(self) -> None:
        generation = self.generation()
        if generation == self.saved_generation:
            return
        self.world.now_us = self.clock.now_us()
        buffer = io.BytesIO()
        buffer.write(FORMAT.to_bytes(4, "big"))
        _Pickler(buffer, self.clock, self.ids).dump(self.world)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, self.path)
        self.saved_generation = generation
        self.saves += 1

    @classmethod
    def load(cls, data_dir: Path, clock: Clock, ids: Ids) -> SavedWorld | None:
        path = data_dir / WORLD_FILE
        if not path.exists():
            return None
        data = path.read_bytes()
        if int.from_bytes(data[:4], "big") not in READABLE:
            raise ValueError(f"{path}: not a simulated world of format {READABLE}")
        world = _Unpickler(io.BytesIO(data[4:]), clock, ids).load()
        assert isinstance(world, SavedWorld), type(world)
        return world

    def saving(self, rails: SimRails) -> SavingRails:
        return SavingRails(rails, self.save)


class SavingRails:
    """The world's rails as the engine reaches them: every answer (and every refusal) is given
    only after the world that gave it is saved."""

    def __init__(self, rails: SimRails, save: Callable[[], None]) -> None:
        self.rails = rails
        self.save = save
        self.chain = _SavingChain(rails, save)
        self.offramp = _SavingOffRamp(rails, save)
        self.bank = _SavingBank(rails, save)

    def ports(self) -> Rails:
        return Rails(
            quotes=self.rails.quotes.providers,
            custody=self.rails.custody,
            chain=self.chain,
            indexer=self.chain,
            offramp=self.offramp,
            bank=self.bank,
        )

    def webhook(
        self, deliver: Callable[[bytes], Awaitable[object]]
    ) -> Callable[[bytes], Awaitable[object]]:
        async def send(body: bytes) -> object:
            self.save()
            return await deliver(body)

        return send


async def _saved(call: Awaitable[T], save: Callable[[], None]) -> T:
    try:
        return await call
    finally:
        save()


@dataclasses.dataclass(frozen=True, slots=True)
class _SavingChain:
    rails: SimRails
    save: Callable[[], None]

    def broadcast(self, chain: str, raw: str) -> Awaitable[str]:
        return _saved(self.rails.chain.broadcast(chain, raw), self.save)

    def view(self, chain: str) -> Awaitable[ChainView]:
        return _saved(self.rails.chain.view(chain), self.save)

    def receipt(self, chain: str, tx_hash: str) -> Awaitable[Receipt | None]:
        return _saved(self.rails.chain.receipt(chain, tx_hash), self.save)

    def presence(self, chain: str, tx_hash: str) -> Awaitable[TxPresence]:
        return _saved(self.rails.chain.presence(chain, tx_hash), self.save)

    def nonce(self, chain: str, address: str) -> Awaitable[int]:
        return _saved(self.rails.chain.nonce(chain, address), self.save)

    def transfers(
        self,
        chain: str,
        first_block: int,
        addresses: frozenset[str],
        *,
        confirmations: int,
        blocks_max: int,
    ) -> Awaitable[IndexedBlocks]:
        found = self.rails.chain.transfers(
            chain, first_block, addresses, confirmations=confirmations, blocks_max=blocks_max
        )
        return _saved(found, self.save)

    def token_balance(self, chain: str, currency: str, address: str) -> Awaitable[int]:
        return _saved(self.rails.chain.token_balance(chain, currency, address), self.save)


@dataclasses.dataclass(frozen=True, slots=True)
class _SavingOffRamp:
    rails: SimRails
    save: Callable[[], None]

    def start_payout(self, request: PayoutRequest) -> Awaitable[str]:
        return _saved(self.rails.offramp.start_payout(request), self.save)

    def payout_status(self, provider: str, provider_trade_id: str) -> Awaitable[PayoutStatus]:
        return _saved(self.rails.offramp.payout_status(provider, provider_trade_id), self.save)

    def prefunded(self, provider: str, currency: str) -> Awaitable[int]:
        return _saved(self.rails.offramp.prefunded(provider, currency), self.save)

    def withdraw(self, request: WithdrawalRequest) -> Awaitable[str]:
        return _saved(self.rails.offramp.withdraw(request), self.save)

    def withdrawal_status(self, provider: str, withdrawal_id: str) -> Awaitable[WithdrawalStatus]:
        return _saved(self.rails.offramp.withdrawal_status(provider, withdrawal_id), self.save)


@dataclasses.dataclass(frozen=True, slots=True)
class _SavingBank:
    rails: SimRails
    save: Callable[[], None]

    def credit(self, bank_reference: str) -> Awaitable[BankCredit | None]:
        return _saved(self.rails.bank.credit(bank_reference), self.save)

    def closing_balance(self, bank: str, currency: str) -> Awaitable[int]:
        return _saved(self.rails.bank.closing_balance(bank, currency), self.save)


async def verify_world(data_dir: Path) -> list[str] | None:
    """The simulated world a data dir holds against its ledger (`stablerail verify`): every
    payment on the chain from the treasury belongs to one transfer and each transfer paid at
    most once, every payment the books call mined is where the chain has it, and, when no
    transfer is in flight, the treasury's ledger balance is its balance on the chain. No world
    file, nothing to check; None: the payments went to a real chain, not this world's."""
    clock = VirtualClock()
    saved = WorldFile.load(data_dir, clock, SeededIds(0, clock))
    if saved is None:
        return []
    if not saved.chain_in_use:
        return None
    chain, treasury = saved.rails.chain, saved.rails.treasury
    async with Store.open(data_dir, clock=clock, executor=ExecutorKind.INLINE) as store:
        checker = Checker(store)
        await checker.resume()
        checker.check_chain(chain, treasury)
        await checker.check_confirmations(chain)
        terminal = ", ".join(f"'{s.value}'" for s in TERMINAL)
        row = await store.reader.fetchone(
            f"SELECT count(*) FROM transactions WHERE status NOT IN ({terminal})"
        )
        if row is not None and row[0] == 0:
            await checker.check_treasury(chain, treasury, "USDC")
    return [f"{name}: {verdict}" for name, verdict in checker.results.items() if verdict != OK]
