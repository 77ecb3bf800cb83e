"""The transfer actor: one per live transfer, one message at a time.

    command -> engine.decide -> journal append (awaited, durable) -> evolve -> answer -> effects

Persist, then act, then answer: a decision's events are durable before the state moves, before
the caller hears "ok" and before any effect runs; an effect's outcome comes back as the next
command and goes through the same path. A create is the one command decided with the steps
that follow it: its quote and its funds lock are decided before its commit and made durable in
it, with its idempotency claim and stored answer (`create`). Everything the actor holds in
memory is a cache of the journal: it loads its state on activation, and a crash loses nothing
that a restart (which re-drives the state's pending effects) does not redo safely.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import anyio
import msgspec

from actors import effects
from actors.context import Context
from actors.mailbox import Mailbox
from actors.messages import (
    Answering,
    BumpFee,
    Envelope,
    Message,
    Rebroadcast,
    Redrive,
    Requote,
)
from engine import commands as c
from engine import effects as fx
from engine import limits, pricing
from engine.audit import AuditRecord
from engine.events import TransferEvent
from engine.records import (
    ClaimKey,
    Committed,
    CompleteKey,
    Duplicate,
    IdempotencyStatus,
    Rejected,
)
from engine.results import Result
from engine.states import TERMINAL, Status
from engine.transfer import TransferState, decide, decided, pending_effects

if TYPE_CHECKING:
    from actors.system import Supervisors


# The steps a create decides before its commit: they ask nothing of the world but a price.
_SYNCHRONOUS = (fx.RequestQuote, fx.ReserveFunds)


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One decided step of a create, not yet durable: its events and the state after them."""

    state: TransferState
    events: tuple[TransferEvent, ...]
    effects: tuple[fx.Effect, ...]
    locked: bool  # the funds lock, which the store may still refuse


def lock_refusal(result: Result, detail: str | None) -> c.FailTransfer | None:
    """How a transfer ends when the store refuses its funds lock: the balance is too low, or
    a rolling limit of its policy is reached. None: any other refusal (a stale retry)."""
    match result:
        case Result.insufficient_funds:
            return c.FailTransfer(code=result.code, message="available balance too low")
        case Result.limit_exceeded:
            message = detail or "a rolling limit of the client's policy is reached"
            return c.FailTransfer(code=result.code, message=message)
    return None


class TransferActor:
    def __init__(
        self, transfer_id: str, ctx: Context, supervisors: Supervisors, *, new: bool = False
    ) -> None:
        self.transfer_id = transfer_id
        # Started for a create of a freshly minted id: there is no stream to load (a create
        # whose stream exists after all is refused by its commit, stream_exists).
        self.new = new
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
        if not self.new:
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
                if isinstance(command, c.CreateTransfer):
                    result, follow = await self.create(command, request_id, message.answering)
                else:
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
            if decision.result is not Result.ok or decision.state is None:
                return decision.result, ()
            version = self.state.version if self.state is not None else 0
            self.ctx.drills.failpoint("journal.before_commit")
            outcome = await self.ctx.journal.append(
                self.transfer_id, version, decision.events, request_id=request_id
            )
            match outcome:
                case Committed():
                    self.ctx.drills.failpoint("journal.after_commit")
                    before = self.state
                    self.state = decision.state
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

    async def create(
        self, command: c.CreateTransfer, request_id: str | None, answering: Answering | None
    ) -> tuple[Result, tuple[fx.Effect, ...]]:
        """A new transfer and its synchronous steps, decided first and made durable in one
        commit: created, quoted (the quote fetched before the commit) and its funds locked, with
        the idempotency claim, the request's stored answer and its audit record. Nothing leaves
        the process before that commit but a request for a price; the steps are the ones the
        transfer would take one commit at a time, decided by the same rules.

        The store refusing the hold (the balance or a rolling limit moved since the create was
        read) does not lose the create: the transfer is created, quoted and FAILED instead, in
        one commit, as the hold's own refusal would have ended it."""
        decided_steps = await self.steps(command)
        if isinstance(decided_steps, Result):
            return decided_steps, ()
        steps, timed_out = decided_steps
        for _ in range(2):
            events = tuple(e for step in steps for e in step.events)
            state = steps[-1].state
            complete, audit = self.answer(command, state, answering, timed_out)
            self.ctx.drills.failpoint("journal.before_commit")
            outcome = await self.ctx.journal.append(
                self.transfer_id,
                0,
                events,
                request_id=request_id,
                claim=self.claim(command),
                complete=complete,
                audit=audit,
            )
            match outcome:
                case Committed():
                    self.ctx.drills.failpoint("journal.after_commit")
                    before: TransferState | None = None
                    for step in steps:
                        self.supervisors.transfer_changed(before, step.state)
                        before = step.state
                    self.state = state
                    if answering is not None and complete is not None:
                        answering.state = state
                    return Result.ok, steps[-1].effects
                case Duplicate():
                    # The idempotency key already names a transfer: nothing was created here,
                    # and the caller reads which transfer holds the key.
                    return Result.ok, ()
                case Rejected(result=Result.stream_exists):
                    # The id names a stored transfer after all: this actor serves it from now on,
                    # so it holds its state, as an actor that loaded it would.
                    self.state = await self.ctx.journal.transfer(self.transfer_id)
                    return Result.transfer_exists, ()  # as decide answers a create it can see
                case Rejected(result=result, detail=detail) if (
                    steps[-1].locked and (ending := lock_refusal(result, detail)) is not None
                ):
                    failed = self.decide(steps[-2].state, ending)
                    assert not isinstance(failed, Result), failed
                    steps = [*steps[:-1], failed]
                case Rejected(result=result, detail=detail):
                    self.refusal = detail
                    return result, ()
        return Result.version_conflict, ()

    async def steps(self, command: c.CreateTransfer) -> tuple[list[Step], bool] | Result:
        """The create decided, then each synchronous step its state asks for (the quote, the
        funds lock), decided against the state before it, until a step waits on someone (an
        approver), refuses, or leads outside the process (the signature). A step whose command
        is refused is left out and runs again after the commit, as any refused step does. The
        quote may take at most `limits.create_decided_wait_s`; after that the transfer is
        committed as it stands and answered so, and its quote runs on after the commit.
        Returns the steps and whether that wait ran out."""
        first = self.decide(None, command)
        if isinstance(first, Result):
            return first
        steps = [first]
        with anyio.move_on_after(limits.create_decided_wait_s):
            while True:
                last = steps[-1]
                if len(last.effects) != 1 or not isinstance(last.effects[0], _SYNCHRONOUS):
                    return steps, False
                step_command = await effects.run(self, last.state, last.effects[0])
                if step_command is None:
                    return steps, False
                step = self.decide(last.state, step_command)
                if isinstance(step, Result):
                    return steps, False
                steps.append(step)
        return steps, True

    def decide(self, state: TransferState | None, command: c.TransferCommand) -> Step | Result:
        decision = decide(state, command, self.ctx.clock.now_us())
        if decision.result is not Result.ok or decision.state is None:
            return decision.result
        return Step(
            state=decision.state,
            events=decision.events,
            effects=decision.effects,
            locked=isinstance(command, c.LockFunds),
        )

    def answer(
        self,
        command: c.CreateTransfer,
        state: TransferState,
        answering: Answering | None,
        timed_out: bool,
    ) -> tuple[CompleteKey | None, tuple[AuditRecord, ...]]:
        """The answer stored with the create, and its audit record: when the steps are decided
        (or the quote's wait ran out, which is answered with the transfer as it stands). None
        when there is no key to answer, or the steps still run; the caller answers later."""
        if answering is None or self.ctx.drills.planted("skip_idempotency_check"):
            return None, ()
        if answering.render is None:
            status, body = 201, msgspec.json.encode({"id": self.transfer_id})
        elif decided(state) or timed_out:
            status, body = answering.render(state)
        else:
            return None, ()
        outcome = IdempotencyStatus.COMPLETED if status < 400 else IdempotencyStatus.FAILED
        complete = CompleteKey(
            client_id=command.client_id,
            key=command.idempotency_key,
            status=outcome,
            response_status=status,
            response_body=body,
        )
        audit = (answering.audit(status, body),) if answering.audit is not None else ()
        return complete, audit

    def claim(self, command: c.CreateTransfer) -> ClaimKey | None:
        """A new transfer acquires its idempotency key in the same commit that creates it."""
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
        command = await effects.run(self, self.state, effect)
        if command is None:
            return
        result, follow = await self.apply(command, self.cause)
        if result is not Result.ok:
            follow = await self.refused(command, result)
            result = Result.ok
        self.plan(result, follow)

    async def refused(self, command: c.TransferCommand, result: Result) -> tuple[fx.Effect, ...]:
        """What a refused outcome means for the transfer (most refusals are stale retries)."""
        if isinstance(command, c.LockFunds) and (ending := lock_refusal(result, self.refusal)):
            _, follow = await self.apply(ending)
            return follow
        match command, result:
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
