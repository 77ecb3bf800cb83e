"""The transfer actor: one per live transfer, one message at a time.

    command -> engine.decide -> journal append (awaited, durable) -> evolve -> answer -> effects

Persist, then act, then answer: a decision's events are durable before the state moves, before
the caller hears "ok" and before any effect runs; an effect's outcome comes back as the next
command and goes through the same path. Everything the actor holds in memory is a cache of the
journal: it loads its state on activation, and a crash loses nothing that a restart (which
re-drives the state's pending effects) does not redo safely.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from actors import effects
from actors.context import Context
from actors.mailbox import Mailbox
from actors.messages import BumpFee, Envelope, Message, Rebroadcast, Redrive, Requote
from engine import commands as c
from engine import effects as fx
from engine import limits, pricing
from engine.records import ClaimKey, Committed, Duplicate, Rejected
from engine.results import Result
from engine.states import TERMINAL, Status
from engine.transfer import TransferState, decide, evolve_all, pending_effects

if TYPE_CHECKING:
    from actors.system import Supervisors


class TransferActor:
    def __init__(self, transfer_id: str, ctx: Context, supervisors: Supervisors) -> None:
        self.transfer_id = transfer_id
        self.ctx = ctx
        self.supervisors = supervisors
        self.mailbox: Mailbox[Message] = Mailbox(limits.mailbox_depth_max)
        self.state: TransferState | None = None
        self.requotes = 0
        # The message being handled, so a crash can answer its caller.
        self.current: Message | None = None
        # Effects still to run for the current state. Replaced (not extended) by every commit:
        # pending_effects of the new state is everything the world owes it, and an effect queued
        # for an older state (a quote for a transfer cancelled meanwhile) must not run.
        self.todo: deque[fx.Effect] = deque()
        # The X-Request-Id of the API request whose effects are running: the events they lead
        # to (the quote, the funds lock, the broadcast...) are journaled under it too. A message
        # from a supervisor starts a chain of its own, with none.
        self.cause: str | None = None
        # Why the store refused the last append (a rolling limit names itself here).
        self.refusal: str | None = None

    async def run(self) -> None:
        """Serve messages and run effects until idle or terminal with nothing queued, then
        return (passivate). A queued message goes before the next effect, so a client's cancel
        lands between a quote and the lock instead of waiting for the whole chain."""
        self.state = await self.ctx.journal.transfer(self.transfer_id)
        while True:
            if self.todo and self.mailbox.empty():
                await self.step(self.todo.popleft())
                continue
            if self.terminal and self.mailbox.empty():
                # Its last effect ran after the transfer ended (a Reconcile overtook it): nothing
                # is left to wait for.
                return
            message = await self.mailbox.receive(limits.actor_idle_s)
            if message is not None:
                self.current = message
                await self.handle(message)
                self.current = None
            idle = message is None or self.terminal
            if idle and self.mailbox.empty() and not self.todo:
                return

    @property
    def terminal(self) -> bool:
        return self.state is not None and self.state.status in TERMINAL

    async def handle(self, message: Message) -> None:
        if not isinstance(message, Envelope):
            self.cause = None  # a supervisor's nudge: what it starts, no request caused
        match message:
            case Envelope(command=command, reply=reply, request_id=request_id):
                if self.ctx.drills.planted("reply_before_commit") and reply is not None:
                    reply.set_result(Result.ok)
                result, follow = await self.apply(command, request_id)
                if reply is not None and not reply.done():
                    reply.set_result(result)
                if result is Result.ok and follow:
                    self.cause = request_id
                self.plan(result, follow)
            case Redrive():
                if self.state is not None:
                    self.todo = deque(pending_effects(self.state))
            case Requote():
                await self.requote()
            case Rebroadcast():
                if self.state is not None and self.state.status is Status.SENT_ON_CHAIN:
                    latest = self.state.txs[-1]
                    self.todo.append(
                        fx.BroadcastTransaction(
                            transfer_id=self.transfer_id, tx_hash=latest.tx_hash, raw=latest.raw
                        )
                    )
            case BumpFee():
                if self.state is not None and self.state.status is Status.SENT_ON_CHAIN:
                    self.todo.append(effects.replacement(self.state))

    async def apply(
        self, command: c.TransferCommand, request_id: str | None = None
    ) -> tuple[Result, tuple[fx.Effect, ...]]:
        """Decide and persist one command; the result and the effects to run next."""
        for _ in range(2):
            decision = decide(self.state, command, self.ctx.clock.now_us())
            if decision.result is not Result.ok or not decision.events:
                return decision.result, ()
            version = self.state.version if self.state is not None else 0
            self.ctx.drills.failpoint("journal.before_commit")
            outcome = await self.ctx.journal.append(
                self.transfer_id,
                version,
                decision.events,
                request_id=request_id,
                claim=self.claim(command),
            )
            match outcome:
                case Duplicate() if isinstance(command, c.CreateTransfer):
                    # The idempotency key already names a transfer: nothing was created here,
                    # and the caller reads which transfer holds the key.
                    return Result.ok, ()
                case Committed():
                    self.ctx.drills.failpoint("journal.after_commit")
                    before = self.state
                    self.state = evolve_all(self.state, decision.events)
                    self.supervisors.transfer_changed(before, self.state)
                    return Result.ok, decision.effects
                case Rejected(result=Result.version_conflict) | Duplicate():
                    # Someone else moved the stream (an operator, a second process during a
                    # failover): reload and decide again against what is durable.
                    self.state = await self.ctx.journal.transfer(self.transfer_id)
                case Rejected(result=result, detail=detail):
                    self.refusal = detail
                    return result, ()
        return Result.version_conflict, ()

    def claim(self, command: c.TransferCommand) -> ClaimKey | None:
        """A new transfer acquires its idempotency key in the same commit that creates it."""
        if not isinstance(command, c.CreateTransfer):
            return None
        if self.ctx.drills.planted("skip_idempotency_check"):
            return None
        return ClaimKey(
            client_id=command.client_id,
            key=command.idempotency_key,
            request_hash=command.request_hash,
            transaction_id=command.transfer_id,
            expires_at=self.ctx.clock.now_us() + limits.idempotency_key_ttl_us,
        )

    def plan(self, result: Result, follow: tuple[fx.Effect, ...]) -> None:
        """After a command: a commit brings the new state's effects; anything else, none new."""
        if result is Result.ok and follow:
            self.todo = deque(follow)

    async def step(self, effect: fx.Effect) -> None:
        """Run one effect; its outcome is the next command, applied at once."""
        assert self.state is not None
        command = await effects.run(self, effect)
        if command is None:
            return
        result, follow = await self.apply(command, self.cause)
        if result is not Result.ok:
            follow = await self.refused(command, result)
            result = Result.ok
        self.plan(result, follow)

    async def refused(self, command: c.TransferCommand, result: Result) -> tuple[fx.Effect, ...]:
        """What a refused outcome means for the transfer (most refusals are stale retries)."""
        match command, result:
            case c.LockFunds(), Result.insufficient_funds:
                _, follow = await self.apply(
                    c.FailTransfer(code=result.code, message="available balance too low")
                )
                return follow
            case c.LockFunds(), Result.limit_exceeded:
                message = self.refusal or "a rolling limit of the client's policy is reached"
                _, follow = await self.apply(c.FailTransfer(code=result.code, message=message))
                return follow
            case ((c.LockFunds() | c.QuoteTransfer()), Result.quote_expired):
                await self.requote()
            case c.QuoteTransfer(), Result.requote_beyond_tolerance:
                return await self.refuse_requote(command)
        return ()

    async def refuse_requote(self, command: c.QuoteTransfer) -> tuple[fx.Effect, ...]:
        """A fresh price further below the expired one than the client accepts: the transfer
        ends, naming the move (EXPIRED from QUOTED; FAILED when the quote it named expired
        awaiting approval), and the client starts again with a new quote."""
        state = self.state
        assert state is not None
        before = state.quote.target_amount if state.quote else command.replaced_target_amount
        quote = command.quote
        message = (
            f"the new price gives {quote.target_amount} {quote.target_currency} minor units,"
            f" against {before} before: beyond the client's tolerance of"
            f" {command.requote_tolerance_bps} bp"
        )
        ending: c.TransferCommand = (
            c.ExpireTransfer(reason=message)
            if state.status is Status.QUOTED
            else c.FailTransfer(code=Result.quote_expired.code, message=message)
        )
        _, follow = await self.apply(ending)
        return follow

    async def requote(self) -> None:
        state = self.state
        if state is None or state.status is not Status.QUOTED:
            return
        assert state.quote is not None
        if state.quote.expires_at > self.ctx.clock.now_us():
            return
        policy = self.ctx.tuning.requote_for(state.client_id)
        if policy.mode is pricing.Requote.AUTO and self.requotes < limits.requotes_max:
            self.requotes += 1
            self.todo = deque([fx.RequestQuote(transfer_id=self.transfer_id)])
            return
        result, follow = await self.apply(c.ExpireTransfer())
        self.plan(result, follow)
