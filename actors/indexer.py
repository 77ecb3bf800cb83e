"""The chain indexer feed: the chain's own record of what moved in and out of the treasury wallets.

The confirmation watcher asks the node about the transactions we sent; this supervisor reads a
separate feed, the indexer's token Transfer logs from or to our treasury wallets (Series 5's
chain_indexer_events), block by block once a block has `Tuning.confirmations_required`. Each log
is kept as evidence (raw and normalized, deduplicated by the indexer's event id) naming the
transfer that paid it when there is one; the reconciler matches it against the ledger, and a log
nobody's transfer explains (value we did not send, or did not expect) becomes an external-only
case there. A log delivered twice under two event ids is kept twice, so the matcher sees the
duplicate and counts it.

The feed resumes after a restart from the highest block its kept logs name, less
`limits.finality_blocks` (reading a block again adds nothing). A block whose parent is not the
block read before it means a reorg reached below the feed's position: it reads again from
`limits.finality_blocks` back, so the logs of the new fork are kept too (those of the old one stay
on record; the reconciler checks an unclaimed one against the node before calling it
external-only).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from actors.evidence import record_evidence_fresh
from actors.fanout import for_each
from engine import limits, matching
from engine.destinations import CHAINS
from engine.rails import RailError, TransferLog

if TYPE_CHECKING:
    from actors.context import Context
    from actors.reconciler import Reconciler


class ChainIndexFeed:
    def __init__(self, ctx: Context, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.reconciler = reconciler
        # chain -> the next block to read, and the hashes of the blocks read lately.
        self.next_block: dict[str, int] = {}
        self.hashes: dict[str, dict[int, str]] = {}
        self.logs_kept = 0
        self.rewinds = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.tuning.chain_poll_s)
            for chain in sorted(CHAINS):
                try:
                    await self.poll(chain)
                except (RailError, TimeoutError):
                    continue  # The indexer is unreachable: the next poll asks again.

    async def poll(self, chain: str) -> None:
        provider = matching.chain_provider(chain)
        if chain not in self.next_block:
            last = await self.ctx.journal.last_indexed_block(provider)
            self.next_block[chain] = 0 if last is None else max(0, last - limits.finality_blocks)
            self.hashes[chain] = {}
        first = self.next_block[chain]
        ours = frozenset({self.ctx.rails.custody.address(chain).lower()})
        async with asyncio.timeout(limits.rail_call_timeout_s):
            answer = await self.ctx.rails.indexer.transfers(
                chain,
                first,
                ours,
                confirmations=self.ctx.tuning.confirmations_required,
                blocks_max=limits.index_blocks_max,
            )
        if not answer.blocks:
            return
        hashes = self.hashes[chain]
        number, _, parent = answer.blocks[0]
        if hashes.get(number - 1, parent) != parent:
            self.rewinds += 1
            self.next_block[chain] = max(0, first - limits.finality_blocks)
            hashes.clear()
            return

        # Whose each log is, in one read for the whole answer.
        paid = await self.ctx.journal.transfers_paid_by(log.tx_hash for log in answer.logs)

        async def keep(log: TransferLog) -> None:
            transfer_id = paid.get(log.tx_hash)
            _, fresh = await record_evidence_fresh(
                self.ctx,
                provider=provider,
                event_type=matching.CHAIN_TRANSFER,
                external_ref=log.event_id,
                occurred_at=self.ctx.clock.now_us(),
                transfer_id=transfer_id,
                normalized=matching.normalize_log(log, ours),
                raw=msgspec.json.encode(log),
            )
            self.logs_kept += fresh
            if fresh and transfer_id is not None:
                self.reconciler.request(transfer_id)

        # Side by side, so the appends share group commits; every log is kept before the feed
        # moves past its block.
        await for_each(answer.logs, keep, limit=limits.supervisor_fanout_max)
        for number, block_hash, _ in answer.blocks:
            hashes[number] = block_hash
        last_read = answer.blocks[-1][0]
        for old in [n for n in hashes if n <= last_read - limits.finality_blocks]:
            del hashes[old]
        self.next_block[chain] = last_read + 1
