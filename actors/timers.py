"""The timer supervisor: durable timers (rows the store projects from each transfer's state)
come due here.

- quote_expiry: the actor re-quotes or expires the transfer (the re-quote policy);
- approval_expiry: the transfer expires;
- payout: a bank payout no provider accepted yet is asked for again (every stuck_redrive_us);
- stuck (time in state past its Series 9 threshold): an alert for an operator, raised once per
  episode, and a re-drive of the transfer's pending effects (the automated first level of the
  escalation path), repeated at most every `stuck_redrive_us` while the transfer stays stuck.
It also sweeps expired idempotency keys and asks whether the sanctions list in force has grown
too old (one alert per list). A timer row outlives a restart; the supervisor's memory
of what it already fired does not need to: firing again is harmless by design.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from actors.alerts import raise_alert
from actors.messages import Envelope, Redrive, Requote
from actors.sanctions import check_age
from engine import commands as c
from engine import limits
from engine.timers import DueTimer, TimerKind, timers_for
from engine.transfer import TransferState

if TYPE_CHECKING:
    from actors.context import Context
    from actors.registry import Registry

ALERT_STUCK = "transfer_stuck"
_NEVER = 2**63 - 1


class TimerSupervisor:
    def __init__(self, ctx: Context, registry: Registry) -> None:
        self.ctx = ctx
        self.registry = registry
        # (transfer_id, kind, due_at) -> the earliest instant to fire it again.
        self.next_fire: dict[tuple[str, TimerKind, int], int] = {}
        self.next_sweep_us = 0
        # When a timer can next fall due, as far as this process knows: the earliest one the
        # last read of the table left for later, lowered by every timer a commit here makes
        # (`changed`). The table is read when that time comes, and at least every
        # `timers_reread_us` (a timer another process wrote), not on every tick: it used to be
        # read every `supervisor_poll_s` for nothing most of the time.
        self.next_due_us = 0
        self.next_read_us = 0

    def changed(self, after: TransferState) -> None:
        """A transfer's new state is durable: its timers may fall due before the ones known."""
        for timer in timers_for(after):
            self.next_due_us = min(self.next_due_us, timer.due_at)

    async def run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.ctx.tuning.supervisor_poll_s)

    async def poll(self) -> None:
        now = self.ctx.clock.now_us()
        if now >= self.next_due_us or now >= self.next_read_us:
            await self._fire_due(now)
        if now >= self.next_sweep_us:
            await self.ctx.journal.expire_idempotency_keys(now)
            self.next_sweep_us = now + limits.idempotency_sweep_us
        await check_age(self.ctx, now)

    async def _fire_due(self, now: int) -> None:
        """Read the timers due by `now` and fire each that is not waiting to fire again; then
        learn when the next one falls due."""
        self.next_read_us = now + limits.timers_reread_us
        # Commits while this reads lower it from here; the read's own answer is folded in last.
        self.next_due_us = _NEVER
        due = await self.ctx.journal.due_timers(now, limits.timers_per_poll_max)
        keep: dict[tuple[str, TimerKind, int], int] = {}
        unfired = False
        for timer in due:
            key = (timer.transfer_id, timer.kind, timer.due_at)
            again = self.next_fire.get(key, 0)
            if again > now:
                keep[key] = again
                continue
            if await self.fire(timer):
                keep[key] = now + limits.stuck_redrive_us
            else:
                unfired = True  # its actor could not take it: again next tick
            self.ctx.drills.failpoint("timers.mid_fire")
        self.next_fire = keep
        if unfired or len(due) >= limits.timers_per_poll_max:
            # One not fired, or more due than one read takes: read again next tick.
            self.next_due_us = now
            return
        later = await self.ctx.journal.next_timer_due(now)
        refire = min(keep.values(), default=None)
        for at in (later, refire):
            if at is not None:
                self.next_due_us = min(self.next_due_us, at)

    async def fire(self, timer: DueTimer) -> bool:
        tid = timer.transfer_id
        match timer.kind:
            case TimerKind.QUOTE_EXPIRY:
                return self.registry.tell(tid, Requote())
            case TimerKind.APPROVAL_EXPIRY:
                return self.registry.tell(tid, Envelope(c.ExpireTransfer()))
            case TimerKind.PAYOUT:
                return self.registry.tell(tid, Redrive("payout not accepted yet"))
            case TimerKind.STUCK:
                state = await self.ctx.journal.transfer(tid)
                if state is None:
                    return True
                await raise_alert(
                    self.ctx,
                    kind=ALERT_STUCK,
                    transfer_id=tid,
                    status=state.status.value,
                    cause_at_us=state.status_since,
                    detail=f"in {state.status.value} past its time-in-state threshold",
                )
                return self.registry.tell(tid, Redrive("stuck"))
