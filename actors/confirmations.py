"""The confirmation watcher: one supervisor for every transaction in flight.

Each poll (a block time) it asks the node about every watched transfer's transactions (the latest
and the ones it replaced: any of them may be the one that mines, they share a nonce), many
transfers at a time (actors.fanout):
- mined and deep enough: the confirmation is recorded as evidence, then reported
  (ObserveConfirmation); a failed receipt is reported as a revert;
- a confirmed transaction no longer in the canonical chain (a reorg deeper than the confirmations)
  is reported as ObserveReorg, which sends the transfer back to SENT_ON_CHAIN: the same signed
  bytes are broadcast again, so the payment can mine again but never twice;
- unknown to the node (dropped): the actor re-broadcasts the journaled bytes;
- not mined for `tx_stuck_blocks` (pending, or dropped and refused again: a node evicts a
  transaction the base fee rose above): the actor replaces it, same nonce, higher fees.
A confirmed transaction stays watched until its block is final (ChainView.final: the node's
`finalized` block, or a configured depth under the head).

What it finds goes to the owner of the payment by the id's prefix: a transfer's actor (through the
registry), or another owner of payments registered in `owners` (the rebalancer's moves).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from actors.evidence import record_evidence
from actors.fanout import for_each
from actors.messages import BumpFee, Envelope, Message, Rebroadcast
from engine import commands as c
from engine import limits, matching
from engine.chain import Mined
from engine.rails import ChainView, RailError, Receipt, TxPresence

if TYPE_CHECKING:
    from actors.context import Context
    from actors.registry import Registry


@dataclasses.dataclass(slots=True)
class _Watch:
    transfer_id: str
    chain: str
    hashes: tuple[str, ...]
    pending_since: int | None = None
    # The confirmation reported (or, after a restart, the one the journal holds).
    confirmed: Mined | None = None
    # Nothing can have changed for this watch before the chain reaches this head: a pending
    # transaction is looked at once per block, a mined one when it should have its
    # confirmations, a confirmed one once per block until final.
    next_head: int = 0
    # Whether the confirmation is kept as evidence naming the transfer (a transfer's payment).
    evidence: bool = True


class ConfirmationWatcher:
    def __init__(self, ctx: Context, registry: Registry) -> None:
        self.ctx = ctx
        self.registry = registry
        self.watches: dict[str, _Watch] = {}
        # Transfers whose journaled confirmation (after a restart) the node has not been asked
        # about yet: the reconciler waits for them, a reorg may have happened while down.
        self.unverified: set[str] = set()
        # Id prefix -> how to tell the owner of a payment that is not a transfer's.
        self.owners: dict[str, Callable[[str, Message], bool]] = {}

    def tell(self, owner_id: str, message: Message) -> bool:
        tell = self.owners.get(owner_id.partition("_")[0], self.registry.tell)
        return tell(owner_id, message)

    def watch(
        self,
        transfer_id: str,
        chain: str,
        hashes: tuple[str, ...],
        confirmed: Mined | None = None,
        *,
        evidence: bool = True,
    ) -> None:
        found = self.watches.get(transfer_id)
        if found is None:
            self.watches[transfer_id] = _Watch(
                transfer_id, chain, hashes, confirmed=confirmed, evidence=evidence
            )
            if confirmed is not None:
                self.unverified.add(transfer_id)
        elif found.hashes != hashes:
            found.hashes = hashes
            found.pending_since = None
            found.confirmed = None
            found.next_head = 0

    def forget(self, transfer_id: str) -> None:
        self.watches.pop(transfer_id, None)
        self.unverified.discard(transfer_id)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.tuning.chain_poll_s)
            await self.poll()

    async def poll(self) -> None:
        views: dict[str, ChainView] = {}
        for chain in sorted({w.chain for w in self.watches.values()}):
            try:
                async with asyncio.timeout(limits.rail_call_timeout_s):
                    views[chain] = await self.ctx.rails.chain.view(chain)
            except (RailError, TimeoutError):
                continue  # The node is unreachable this round; the next poll asks again.

        async def check(watch: _Watch) -> None:
            try:
                async with asyncio.timeout(limits.rail_call_timeout_s):
                    await self.check(watch, views[watch.chain])
            except (RailError, TimeoutError):
                return  # As above: asked again next round.

        watched = [
            w
            for w in self.watches.values()
            if w.chain in views and views[w.chain].head >= w.next_head
        ]
        await for_each(watched, check, limit=limits.supervisor_fanout_max)

    async def check(self, watch: _Watch, view: ChainView) -> None:
        chain = self.ctx.rails.chain
        mined: Receipt | None = None
        for tx_hash in reversed(watch.hashes):
            mined = await chain.receipt(watch.chain, tx_hash)
            if mined is not None:
                break
        tid = watch.transfer_id
        gone = watch.confirmed
        if self.ctx.drills.planted("ignore_reorgs"):
            gone = None
        if gone is not None and (mined is None or mined.block_hash != gone.block_hash):
            reorg = c.ObserveReorg(tx_hash=gone.tx_hash, block_hash=gone.block_hash)
            if self.tell(tid, Envelope(reorg)):
                watch.confirmed = None
                self.unverified.discard(tid)
            return
        if mined is not None:
            watch.pending_since = None
            await self._mined(watch, mined, view)
            return
        watch.next_head = view.head + 1
        latest = watch.hashes[-1]
        presence = await chain.presence(watch.chain, latest)
        if presence is TxPresence.UNKNOWN:
            self.tell(tid, Rebroadcast())
        # Not mined for `tx_stuck_blocks`, pending or gone: a node evicts a transaction the base
        # fee rose above and refuses it again, so only a higher fee can get the nonce mined.
        if watch.pending_since is None or (
            view.head - watch.pending_since >= limits.tx_stuck_blocks and self.tell(tid, BumpFee())
        ):
            watch.pending_since = view.head

    async def _mined(self, watch: _Watch, mined: Receipt, view: ChainView) -> None:
        tid = watch.transfer_id
        if not mined.succeeded:
            revert = c.ObserveRevert(tx_hash=mined.tx_hash, block_number=mined.block_number)
            if self.tell(tid, Envelope(revert)):
                self.forget(tid)
            return
        if watch.confirmed is not None:
            self.unverified.discard(tid)  # still where the journal says
            if mined.block_number <= view.final:
                self.forget(tid)
            watch.next_head = view.head + 1
            return
        required = self.ctx.tuning.confirmations_required
        if mined.confirmations < required:
            # A reorg meanwhile is seen then: the receipt is asked for again.
            watch.next_head = mined.block_number + required - 1
            return
        if watch.evidence:
            await self.record(watch, mined)
        confirm = c.ObserveConfirmation(
            tx_hash=mined.tx_hash,
            block_number=mined.block_number,
            block_hash=mined.block_hash,
            confirmations=mined.confirmations,
        )
        if self.tell(tid, Envelope(confirm)):
            watch.confirmed = Mined(
                tx_hash=mined.tx_hash, block_number=mined.block_number, block_hash=mined.block_hash
            )
            watch.next_head = view.head + 1

    async def record(self, watch: _Watch, mined: Receipt) -> None:
        """The confirmation as evidence (what the node says was transferred, not what we signed),
        before the transfer acts on it."""
        await record_evidence(
            self.ctx,
            provider=matching.chain_provider(watch.chain),
            event_type=matching.CHAIN_CONFIRMED,
            external_ref=matching.chain_ref(mined.tx_hash, mined.block_hash),
            occurred_at=self.ctx.clock.now_us(),
            transfer_id=watch.transfer_id,
            normalized={
                "tx_hash": mined.tx_hash,
                "amount": str(mined.amount),
                "currency": mined.currency or "",
                "to": (mined.to_address or "").lower(),
                "from": (mined.from_address or "").lower(),
                "block_number": str(mined.block_number),
                "block_hash": mined.block_hash,
            },
            raw=msgspec.json.encode(mined),
        )
