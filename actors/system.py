"""The system root: the registry of transfer actors and the supervisors, in one task group.

    async with anyio.create_task_group() as tg:
        system = await tg.start(System(ctx).run)

`run` opens the treasury wallets' nonce books from the journal, starts the supervisors, recovers
every non-terminal transfer (re-activated, pending effects re-driven), reports ready, and then
serves until cancelled. Every supervisor task belongs to its task group, and every actor task to
the actors' group that one of its tasks holds open (`host_actors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import msgspec
from anyio.abc import TaskGroup, TaskStatus

from actors.alerts import raise_alert
from actors.confirmations import ConfirmationWatcher
from actors.context import Context
from actors.controls import ControlBook
from actors.evidence import record_provider_report, record_statement
from actors.indexer import ChainIndexFeed
from actors.messages import Answer, Answering
from actors.pricing import QuoteDesk
from actors.rebalancer import Rebalancer
from actors.reconciler import Reconciler
from actors.registry import Registry
from actors.retry import call_rail
from actors.rules import RuleBook
from actors.settlements import SettlementTracker
from actors.signing import wallet_of
from actors.timers import TimerSupervisor
from actors.watch import StateWatch
from engine import (
    controls,
    discrepancies,
    limits,
    overrides,
    policy,
    reconciliation,
    sanctions,
)
from engine.audit import AuditRecord
from engine.commands import CancelTransfer, CreateTransfer, CreditDeposit
from engine.destinations import CHAINS
from engine.events import ControlChanged, DepositCredited, OverrideExecuted, QuoteIssued
from engine.funding import decide_deposit
from engine.provider_reports import ReportLine
from engine.quotes import Quote
from engine.rails import QuoteRequest, RailError
from engine.records import Committed, IdempotencyStatus, Rejected
from engine.results import Result
from engine.service import CaseDecision
from engine.statements import StatementLine
from engine.states import TERMINAL, Status
from engine.transfer import (
    TransferState,
    check_create,
    decided,
    normalized_destination,
    payout_chain,
    policy_facts,
)


class Supervisors:
    def __init__(self, ctx: Context, registry: Registry) -> None:
        self.ctx = ctx
        self.confirmations = ConfirmationWatcher(ctx, registry)
        self.settlements = SettlementTracker(ctx, registry)
        self.reconciler = Reconciler(ctx, registry, self.confirmations)
        self.indexer = ChainIndexFeed(ctx, self.reconciler)
        self.timers = TimerSupervisor(ctx, registry)
        self.pricing = QuoteDesk(ctx)
        self.rebalancer = Rebalancer(ctx, self.confirmations)
        self.reconciler.balances.moves = self.rebalancer.in_flight
        self.watch = StateWatch()
        # Called after every commit (the webhook dispatcher's nudge, metrics).
        self.listeners: list[Callable[[TransferState | None, TransferState], None]] = []

    def transfer_changed(self, before: TransferState | None, after: TransferState) -> None:
        """Called by an actor after each commit, to keep in-memory bookkeeping in step."""
        signing_over = after.status is not Status.FUNDS_LOCKED
        if before is not None and before.status is Status.FUNDS_LOCKED and signing_over:
            chain = payout_chain(after)
            wallet = wallet_of(self.ctx, chain)
            self.ctx.nonces.settle(wallet, after.transfer_id, after.txs[0] if after.txs else None)
        self.watch.changed(after)
        self.timers.changed(after)
        for listener in self.listeners:
            listener(before, after)
        if after.status in TERMINAL:
            if after.status is not Status.RECONCILED:
                self.confirmations.forget(after.transfer_id)
            self.settlements.forget(after.transfer_id)
            self.reconciler.forget(after.transfer_id)


class System:
    """`answer`: how a create is answered. Without one (the simulator), the answer is the
    transfer's id, given as soon as the transfer is durable; with one (the HTTP service), it is
    rendered once the synchronous steps are decided."""

    def __init__(self, ctx: Context, answer: Answer | None = None) -> None:
        self.ctx = ctx
        self.registry = Registry(ctx)
        self.supervisors = Supervisors(ctx, self.registry)
        self.recovered = 0
        self.answer = answer
        self.rules = RuleBook(ctx.journal, ctx.clock)
        self.controls = ControlBook(ctx.journal, ctx.clock, ctx.controls)
        self.ready = False
        self._tasks: TaskGroup | None = None

    async def open_wallets(self) -> None:
        """Each treasury wallet's nonce book, from the chain's nonce and the journaled
        transactions at or above it (below it every nonce is used)."""
        for chain in sorted(CHAINS):
            address = self.ctx.rails.custody.address(chain).lower()
            start = await self.ctx.rails.chain.nonce(chain, address)
            mine = await self.ctx.journal.signed_transactions(chain, address, start)
            self.ctx.nonces.open((chain, address), start, mine)

    async def run(self, *, task_status: TaskStatus[System] = anyio.TASK_STATUS_IGNORED) -> None:
        await self.rules.open(self.ctx.tuning.rules_document, by="system")
        await self.controls.open()
        await self.supervisors.pricing.open()
        await self.supervisors.reconciler.liquidity.open()
        await self.supervisors.rebalancer.open()
        await self.open_wallets()
        async with anyio.create_task_group() as tasks:
            await tasks.start(self.host_actors, name="transfer actors")
            s = self.supervisors
            s.rebalancer.bind(tasks)
            tasks.start_soon(s.rebalancer.run, name="rebalancer")
            tasks.start_soon(s.confirmations.run, name="confirmation watcher")
            tasks.start_soon(s.settlements.run, name="settlement tracker")
            tasks.start_soon(s.reconciler.run, name="reconciler")
            tasks.start_soon(s.indexer.run, name="chain indexer feed")
            tasks.start_soon(s.timers.run, name="timers")
            self._tasks = tasks
            self.recovered = await self.registry.recover()
            s.rebalancer.recover()
            await self.answer_keys()
            self.ready = True
            task_status.started(self)

    async def host_actors(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The owner of every transfer actor's task, held open in the system's task group while
        it runs; cancelled with it, it cancels them all and waits for them. An asyncio.TaskGroup,
        not anyio's: an actor is started for every transfer, and with anyio 4.16 starting a task
        costs about three times what asyncio's does (actors.fanout has the figures)."""
        async with asyncio.TaskGroup() as actors:
            self.registry.bind(actors, self.supervisors)
            task_status.started()
            await anyio.sleep_forever()

    async def create_transfer(self, command: CreateTransfer) -> tuple[Result, str | None]:
        """Create a transfer, at most once per (client, idempotency key): the result, and the id
        of the transfer that holds the key (this one, or the one an earlier request created)."""
        result, holder, _, _ = await self.create_and_answer(command)
        return result, holder

    async def create_and_answer(
        self, command: CreateTransfer, audit: Callable[[int, bytes], AuditRecord] | None = None
    ) -> tuple[Result, str | None, TransferState | None, bool]:
        """As create_transfer, plus, when this request created the transfer and stored its
        answer, the state that answer was rendered from (so `answer(state)` is the stored
        answer, byte for byte), and whether the request's audit record was committed with it.
        Policy decides every create here, whoever sends it.

        The answer is stored in the create's own commit when its steps are decided there, which
        is the rule; `audit` then makes the request's audit record, committed with it. Otherwise
        (a step was refused and runs again) it is stored once they are decided, and the caller
        writes the audit record itself."""
        screening = None
        if check_create(command) is Result.ok:
            screening = await self.ctx.sanctions.screener.screen(
                sanctions.Stage.CREATION,
                command.client_id,
                normalized_destination(command.destination),
            )
            decision = policy.evaluate(
                self.rules.current,
                await self.facts(command),
                self.supervisors.pricing.corridors(),
                self.ctx.controls.current,
                screening,
            )
            available = await self.ctx.journal.available(command.client_id, command.source_currency)
            command = msgspec.structs.replace(
                command, policy=decision, available=available, screening=screening
            )
        answering = Answering(render=self.answer, audit=audit)
        result = await self.registry.ask(
            command.transfer_id, command, request_id=command.request_id, answering=answering
        )
        record = None
        if answering.state is not None:
            holder: str | None = command.transfer_id
        else:
            record = await self.ctx.journal.idempotency_record(
                command.client_id, command.idempotency_key
            )
            holder = record.transaction_id if record is not None else None
        created = result is Result.ok and holder == command.transfer_id
        if created and screening is not None and screening.hits:
            await raise_alert(
                self.ctx,
                kind="sanctions_hit",
                transfer_id=command.transfer_id,
                status="FAILED",
                cause_at_us=self.ctx.clock.now_us(),
                detail=sanctions.describe(screening),
            )
        state = answering.state
        audited = state is not None and audit is not None
        if created and record is not None and record.status is IdempotencyStatus.IN_PROGRESS:
            state = await self._answer(record.client_id, record.key, command.transfer_id)
        return result, holder, state, audited

    async def facts(self, command: CreateTransfer) -> policy.Facts:
        """What policy needs to know about a well-formed create (check_create passed)."""
        first_seen = None
        if self.rules.current.reads_first_seen:
            beneficiary = policy.beneficiary_key(normalized_destination(command.destination))
            first_seen = await self.ctx.journal.beneficiary_first_seen(
                command.client_id, beneficiary
            )
        return policy_facts(command, self.ctx.clock.now_us(), first_seen)

    async def answer_keys(self) -> int:
        """A create commits its transfer and claims its key in one commit; the key's answer is
        recorded just after. A crash in between leaves the key IN_PROGRESS with its transfer
        durable, and every retry of the request would hear "in progress" for ever. At start,
        before serving, each such key whose transfer is decided gets the answer its request
        earned, so a client retrying right after the restart hears it, not "in progress".
        Returns how many keys are answered or will be."""
        answered = 0
        after = ("", "")
        while True:
            page = await self.ctx.journal.unanswered_keys(after, limits.recovery_page_max)
            for record in page:
                tid = record.transaction_id
                state = None if tid is None else await self.ctx.journal.transfer(tid)
                if tid is None or state is None:
                    continue
                if self.answer is None or decided(state):
                    await self._answer(record.client_id, record.key, tid)
                else:
                    # Its steps are still running (recovery re-drove them): its request is in
                    # flight until they are decided, and answered then, without holding up the
                    # start.
                    assert self._tasks is not None
                    self._tasks.start_soon(self._answer, record.client_id, record.key, tid)
                answered += 1
            if len(page) < limits.recovery_page_max:
                return answered
            after = (page[-1].client_id, page[-1].key)

    async def _answer(self, client_id: str, key: str, transfer_id: str) -> TransferState | None:
        if self.answer is None:
            await self.ctx.journal.complete_key(
                client_id,
                key,
                IdempotencyStatus.COMPLETED,
                201,
                msgspec.json.encode({"id": transfer_id}),
            )
            return None
        state = await self.supervisors.watch.until(
            transfer_id, self.ctx.journal.transfer, decided, limits.create_decided_wait_s
        )
        assert state is not None, transfer_id
        status, body = self.answer(state)
        outcome = IdempotencyStatus.COMPLETED if status < 400 else IdempotencyStatus.FAILED
        stored = await self.ctx.journal.complete_key(client_id, key, outcome, status, body)
        if not isinstance(stored, Committed):
            return None  # answered already (by recovery): the stored answer is the one to give
        return state

    async def control(
        self, scope: controls.Scope, target: str, on: bool, by: str, reason: str
    ) -> tuple[ControlChanged, int]:
        """Switch a freeze or halt (journaled first). Switching one on cancels every transfer
        it covers that is not yet on chain, the control as the reason (holds released); those
        already on chain finish. Returns the change in force and how many were cancelled."""
        change = await self.controls.switch(scope, target, on, by, reason)
        if not on:
            return change, 0
        client = target if scope is controls.Scope.CLIENT else None
        corridor = None
        if scope is controls.Scope.CORRIDOR:
            source, _, destination = target.partition("-")
            corridor = (source, destination)
        cancel = CancelTransfer(by=by, reason=f"{controls.CODES[scope].code}: {reason}")
        cancelled = 0
        after = ""
        while True:
            page = await self.ctx.journal.before_chain(
                client, corridor, after, limits.recovery_page_max
            )
            for transfer_id in page:
                # Already on chain by now: the cancel is refused and the transfer finishes.
                if await self.registry.ask(transfer_id, cancel) is Result.ok:
                    cancelled += 1
            if len(page) < limits.recovery_page_max:
                return change, cancelled
            after = page[-1]

    async def override(self, override_id: str) -> overrides.Override | None:
        records = await self.ctx.journal.stream(override_id)
        return overrides.fold([r.event for r in records])  # type: ignore[misc]

    async def request_override(
        self, kind: overrides.Kind, transfer_id: str, reason: str, by: str
    ) -> overrides.Override | Result:
        """An operator asks for an override; nothing happens until a second one approves."""
        if await self.ctx.journal.transfer(transfer_id) is None:
            return Result.transfer_not_found
        override_id = self.ctx.ids.new("ov")
        requested = overrides.request(
            override_id, kind, transfer_id, reason, by, self.ctx.clock.now_us()
        )
        if isinstance(requested, Result):
            return requested
        outcome = await self.ctx.journal.append(override_id, 0, [requested])
        assert isinstance(outcome, Committed), outcome
        found = await self.override(override_id)
        assert found is not None
        return found

    async def decide_override(
        self, override_id: str, by: str, approved: bool, reason: str
    ) -> overrides.Override | Result:
        """A second operator approves (the override is carried out at once, its outcome
        journaled) or rejects. Journaled before it acts: an approval whose execution was cut
        short is carried out by approving again (the forced commands are idempotent)."""
        found = await self.override(override_id)
        if found is None:
            return Result.transfer_not_found
        if found.state is overrides.State.APPROVED and approved and by == found.decided_by:
            return await self._execute(found)
        decided = overrides.decide(found, by, approved, reason, self.ctx.clock.now_us())
        if isinstance(decided, Result):
            return decided
        outcome = await self.ctx.journal.append(override_id, found.version, [decided])
        if isinstance(outcome, Rejected):
            return Result.override_not_pending  # another operator decided first
        found = await self.override(override_id)
        assert found is not None
        if not approved:
            return found
        return await self._execute(found)

    async def _execute(self, found: overrides.Override) -> overrides.Override | Result:
        result = await self.registry.ask(found.transfer_id, overrides.command(found))
        done = OverrideExecuted(
            at=self.ctx.clock.now_us(), override_id=found.override_id, outcome=result.code
        )
        outcome = await self.ctx.journal.append(found.override_id, found.version, [done])
        # Rejected: a concurrent retry of the same approval recorded its outcome first (the forced
        # command is idempotent, so the transfer was moved once).
        assert isinstance(outcome, Committed | Rejected), outcome
        done_now = await self.override(found.override_id)
        assert done_now is not None
        return done_now

    async def discrepancy(self, discrepancy_id: str) -> discrepancies.Discrepancy | None:
        return discrepancies.from_records(await self.ctx.journal.stream(discrepancy_id))

    async def act_on_case(
        self, discrepancy_id: str, decide: CaseDecision
    ) -> discrepancies.Discrepancy | Result:
        """An operator's step on a case, decided on the case as journaled and appended at its
        version: a concurrent step by someone else makes this one `version_conflict`."""
        case = await self.discrepancy(discrepancy_id)
        if case is None:
            return Result.discrepancy_not_found
        event = decide(case)
        if isinstance(event, Result):
            return event
        outcome = await self.ctx.journal.append(discrepancy_id, case.version, [event])
        if isinstance(outcome, Rejected):
            return outcome.result
        assert isinstance(outcome, Committed), outcome
        return discrepancies.evolve(case, event)

    async def issue_quote(
        self, client_id: str, source: str, target: str, amount: int, *, bank: bool
    ) -> Quote | Result:
        """A quote for a client to use later (`quote_id` on a create), journaled before it is
        shown, so a transfer that names it finds exactly these terms. A freeze or halt in force
        refuses it."""
        scope = controls.refusal(
            self.ctx.controls.current, client_id, policy.corridor_id(source, target)
        )
        if scope is not None:
            return controls.CODES[scope]
        request = QuoteRequest(
            transfer_id="",
            client_id=client_id,
            source_currency=source,
            target_currency=target,
            amount=amount,
            bank=bank,
        )
        try:
            quote = await call_rail(
                lambda: self.supervisors.pricing.quote(request), key=f"{client_id}:quote"
            )
        except RailError as e:
            return e.result
        issued = QuoteIssued(at=self.ctx.clock.now_us(), client_id=client_id, quote=quote)
        outcome = await self.ctx.journal.append(quote.quote_id, 0, [issued])
        if isinstance(outcome, Rejected):
            return outcome.result
        return quote

    async def record_statement(self, lines: list[StatementLine]) -> tuple[list[str], int]:
        """Keep each statement line as evidence: the ids, and how many were new."""
        return await record_statement(self.ctx, lines)

    async def record_provider_report(self, rows: list[ReportLine]) -> tuple[list[str], int, int]:
        """Keep a provider's trade report rows as its payout reports: the ids, how many were
        new, how many disagreed with an earlier report of the same trade."""
        return await record_provider_report(self.ctx, rows)

    async def credit_from_statement(self, command: CreditDeposit, evidence_id: str) -> Result:
        """A deposit the statement shows: credited if its notice never came, and then the lost
        notice is a case of its own (missing evidence, closed at once: the statement line is the
        evidence, the credit is made), so a lost webhook is counted, not hidden."""
        result, made = await self._credit(command)
        if result is not Result.ok or not made:
            return result  # Refused, or the notice credited it first.
        now = self.ctx.clock.now_us()
        finding = reconciliation.Finding(
            kind=reconciliation.Kind.MISSING_EVIDENCE,
            severity=reconciliation.Severity.LOW,
            confidence=reconciliation.CERTAIN,
            source=reconciliation.Source.BANK,
            transfer_id=None,
            evidence_ids=(evidence_id,),
            expected={"notice": "deposit notice (webhook)", "reference": command.bank_reference},
            actual={"amount": command.amount, "currency": command.currency},
        )
        opened = discrepancies.open_case(self.ctx.ids.new("dc"), finding, now)
        case = discrepancies.evolve(None, opened)
        note = f"the bank's notice never came; {command.deposit_id} credited from the statement"
        closed = discrepancies.close_by_pipeline(case, note, now)
        outcome = await self.ctx.journal.append(opened.discrepancy_id, 0, [opened, closed])
        assert isinstance(outcome, Committed), outcome
        return Result.ok

    async def credit_deposit(self, command: CreditDeposit) -> Result:
        """A bank credit to a client (a webhook, a statement line): once per deposit id."""
        result, _ = await self._credit(command)
        return result

    async def _credit(self, command: CreditDeposit) -> tuple[Result, bool]:
        """The result, and whether this call made the credit (False: it was made before)."""
        credited = decide_deposit(command, self.ctx.clock.now_us())
        if not isinstance(credited, DepositCredited):
            return credited, False
        outcome = await self.ctx.journal.append(credited.deposit_id, 0, [credited])
        if isinstance(outcome, Rejected) and outcome.result is Result.stream_exists:
            return Result.ok, False
        assert isinstance(outcome, Committed), outcome
        return Result.ok, True
