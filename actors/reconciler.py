"""The per-transfer reconciler: a transfer whose route's evidence is all in and agrees moves to
RECONCILED (engine.matching decides); one still missing a witness is looked at again later, with a
growing interval. A transfer whose journaled confirmation the watcher has not re-checked since a
restart waits for it (a reorg may have taken the payment while the process was down). The full
pipeline (statements, discrepancies, the ops queue) is its own issue."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from actors.fanout import for_each
from actors.messages import Envelope
from engine import commands as c
from engine import limits
from engine.backoff import delay_us
from engine.matching import match_transfer, reconcilable

if TYPE_CHECKING:
    from actors.confirmations import ConfirmationWatcher
    from actors.context import Context
    from actors.registry import Registry


class Reconciler:
    def __init__(
        self, ctx: Context, registry: Registry, confirmations: ConfirmationWatcher
    ) -> None:
        self.ctx = ctx
        self.registry = registry
        self.confirmations = confirmations
        # transfer_id -> (attempt, next look in us)
        self.pending: dict[str, tuple[int, int]] = {}

    def request(self, transfer_id: str) -> None:
        if transfer_id not in self.pending:
            self.pending[transfer_id] = (0, self.ctx.clock.now_us())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.tuning.supervisor_poll_s)
            now = self.ctx.clock.now_us()
            due = [(tid, attempt) for tid, (attempt, at) in self.pending.items() if at <= now]
            await for_each(due, self._look, limit=limits.supervisor_fanout_max)

    async def _look(self, due: tuple[str, int]) -> None:
        await self.look(*due)

    async def look(self, transfer_id: str, attempt: int) -> None:
        if transfer_id in self.confirmations.unverified:
            return  # Asked again next round, once the node has confirmed the confirmation.
        state = await self.ctx.journal.transfer(transfer_id)
        if state is None or not reconcilable(state):
            self.pending.pop(transfer_id, None)
            return
        evidence = await self.ctx.journal.evidence_for(transfer_id)
        matched = match_transfer(state, evidence)
        if matched is not None and self.registry.tell(
            transfer_id, Envelope(c.Reconcile(evidence=matched))
        ):
            self.pending.pop(transfer_id, None)
            return
        if attempt + 1 >= limits.reconcile_attempts_max:
            self.pending.pop(transfer_id, None)
            return
        wait = delay_us(
            attempt,
            base_us=limits.reconcile_retry_base_us,
            cap_us=limits.reconcile_retry_cap_us,
            key=transfer_id,
        )
        self.pending[transfer_id] = (attempt + 1, self.ctx.clock.now_us() + wait)
