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
from engine.timers import DueTimer, TimerKind

if TYPE_CHECKING:
    from actors.context import Context
    from actors.registry import Registry

ALERT_STUCK = "transfer_stuck"


class TimerSupervisor:
    def __init__(self, ctx: Context, registry: Registry) -> None:
        self.ctx = ctx
        self.registry = registry
        # (transfer_id, kind, due_at) -> the earliest instant to fire it again.
        self.next_fire: dict[tuple[str, TimerKind, int], int] = {}
        self.next_sweep_us = 0

    async def run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.ctx.tuning.supervisor_poll_s)

    async def poll(self) -> None:
        now = self.ctx.clock.now_us()
        due = await self.ctx.journal.due_timers(now, limits.timers_per_poll_max)
        keep: dict[tuple[str, TimerKind, int], int] = {}
        for timer in due:
            key = (timer.transfer_id, timer.kind, timer.due_at)
            again = self.next_fire.get(key, 0)
            if again > now:
                keep[key] = again
                continue
            if await self.fire(timer):
                keep[key] = now + limits.stuck_redrive_us
            self.ctx.drills.failpoint("timers.mid_fire")
        self.next_fire = keep
        if now >= self.next_sweep_us:
            await self.ctx.journal.expire_idempotency_keys(now)
            self.next_sweep_us = now + limits.idempotency_sweep_us
        await check_age(self.ctx, now)

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
