"""The registry: activates a transfer's actor on its first message, forgets it when it passivates,
and restarts it from the journal when it crashes, within a budget.

A crash is a bug (an assertion in deciding or evolving, an unexpected error from a port). The
actor is restarted after a short, growing delay with a re-drive of its pending effects; the
messages it had queued are handed to the new actor; the message it was handling is answered
`outcome_unknown` (its events may or may not be durable, and a retry is safe). Past the budget
the transfer is flagged: an alert is journaled, its messages are answered `transfer_flagged`, and
it is never dropped: the alert names it, the journal holds it, and a restart of the process
recovers it again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from actors.alerts import raise_alert
from actors.mailbox import MailboxFull
from actors.messages import Answering, Envelope, Message, Redrive
from actors.transfer_actor import TransferActor
from engine import limits
from engine.backoff import delay_us
from engine.commands import CreateTransfer, TransferCommand
from engine.results import Result

if TYPE_CHECKING:
    from actors.context import Context
    from actors.system import Supervisors

ALERT_RESTARTS = "actor_restart_budget_exhausted"


class Registry:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.supervisors: Supervisors | None = None
        self.actors: dict[str, TransferActor] = {}
        self.restarts: dict[str, list[int]] = {}
        self.flagged: set[str] = set()
        self.crashes = 0
        self.activations = 0
        self._tasks: asyncio.TaskGroup | None = None

    def bind(self, tasks: asyncio.TaskGroup, supervisors: Supervisors) -> None:
        """`tasks` owns every actor's task (System.host_actors keeps it open)."""
        self._tasks = tasks
        self.supervisors = supervisors

    def _activate(self, transfer_id: str, *, new: bool = False) -> TransferActor:
        """The transfer's live actor, started if need be. `new`: for a create, whose transfer
        id was just minted; the actor then has nothing to load."""
        actor = self.actors.get(transfer_id)
        if actor is None:
            assert self._tasks is not None and self.supervisors is not None, "registry not bound"
            actor = TransferActor(transfer_id, self.ctx, self.supervisors, new=new)
            self.actors[transfer_id] = actor
            self.activations += 1
            self._tasks.create_task(self._supervise(actor), name=f"actor {transfer_id}")
        return actor

    def tell(self, transfer_id: str, message: Message) -> bool:
        """Queue a message without waiting; False if the actor is flagged or its mailbox full
        (the sender tries again on its next round)."""
        if transfer_id in self.flagged:
            _answer(message, Result.transfer_flagged)
            return False
        return self._activate(transfer_id).mailbox.try_send(message)

    async def ask(
        self,
        transfer_id: str,
        command: TransferCommand,
        *,
        request_id: str | None = None,
        answering: Answering | None = None,
    ) -> Result:
        """Send a command and wait for its result (given once its events are durable). A create
        waits for its synchronous steps too (its quote, at most `create_decided_wait_s`) and,
        if the store refuses its funds lock, for a second commit."""
        if transfer_id in self.flagged:
            return Result.transfer_flagged
        reply: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        actor = self._activate(transfer_id, new=isinstance(command, CreateTransfer))
        try:
            await actor.mailbox.send(
                Envelope(command, reply, request_id, answering), limits.mailbox_send_wait_s
            )
        except MailboxFull:
            return Result.transfer_busy
        wait_s = limits.write_wait_s + limits.rail_call_timeout_s
        if isinstance(command, CreateTransfer):
            wait_s = limits.create_decided_wait_s + 2 * limits.write_wait_s
        async with asyncio.timeout(wait_s):
            return await reply

    async def recover(self) -> int:
        """Re-activate every non-terminal transfer and re-drive its pending effects."""
        count = 0
        after = ""
        while True:
            page = await self.ctx.journal.active_transfers(after, limits.recovery_page_max)
            if not page:
                return count
            for transfer_id in page:
                actor = self._activate(transfer_id)
                await actor.mailbox.send(Redrive("recovery"), limits.mailbox_send_wait_s)
                count += 1
            after = page[-1]

    async def _supervise(self, actor: TransferActor) -> None:
        crashed: Exception | None = None
        try:
            await actor.run()
        except Exception as error:
            crashed = error
        finally:
            if self.actors.get(actor.transfer_id) is actor:
                del self.actors[actor.transfer_id]
        if crashed is not None:
            await self._restart(actor, crashed)

    async def _restart(self, actor: TransferActor, crashed: Exception) -> None:
        tid = actor.transfer_id
        self.crashes += 1
        _answer(actor.current, Result.outcome_unknown)
        now = self.ctx.clock.now_us()
        history = [t for t in self.restarts.get(tid, []) if t > now - limits.restart_window_us]
        history.append(now)
        self.restarts[tid] = history
        left = actor.mailbox.drain()
        if len(history) > limits.restart_budget_max:
            self.flagged.add(tid)
            for message in left:
                _answer(message, Result.transfer_flagged)
            await raise_alert(
                self.ctx,
                kind=ALERT_RESTARTS,
                transfer_id=tid,
                status=actor.state.status.value if actor.state else None,
                cause_at_us=history[0],
                detail=f"{len(history)} crashes; last: {crashed!r}"[:500],
            )
            return
        wait = delay_us(
            len(history) - 1,
            base_us=limits.restart_delay_base_us,
            cap_us=limits.restart_delay_cap_us,
            key=tid,
        )
        await asyncio.sleep(wait / 1_000_000)
        fresh = self._activate(tid)
        fresh.mailbox.try_send(Redrive("restart"))
        for message in left:
            if not fresh.mailbox.try_send(message):
                _answer(message, Result.outcome_unknown)


def _answer(message: Message | None, result: Result) -> None:
    if isinstance(message, Envelope) and message.reply is not None and not message.reply.done():
        message.reply.set_result(result)
