"""`stablerail serve`: the composition root of the running service.

    store (aiosqlite, WAL, synchronous=FULL) -> actor system (recovery first) -> webhook
    dispatcher -> aiohttp AppRunner on host:port

all in one task group. The rails are the simulated world (`--rails sim`), kept in the data dir
(sim.durable) so a restart finds the chain, the bank and the off-ramp where it left them; they
run in real time, `--sim-speed` times faster. `--rails sim-instant` (benchmarks) keeps the world
in memory, answering at once, its custody signing with a digest (sim.instant).

SIGTERM or SIGINT stops gracefully: readiness goes to 503, the listener closes, requests in
flight finish, then the actors and supervisors stop and the store drains its writer and closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import getpass
import os
import random
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import anyio
import msgspec
from aiohttp import web
from loguru import logger

from actors.context import Context, Rails, Tuning
from actors.evidence import record_evidence, record_provider_report, record_statement
from actors.messages import Redrive
from actors.sanctions import bring_into_force, rescreen_pending
from actors.statement_import import StatementRecorded, record_statements
from actors.system import System
from actors.webhooks import WebhookDispatcher
from adapters.chain.keystore import KeystoreError
from adapters.chain.node import NodeRefused
from adapters.chain.rails import (
    EvmSettings,
    WalletCorridors,
    open_rails,
    opening_block,
    opening_funding,
)
from adapters.chain.rpc import RpcError, RpcUnreachable, redacted
from adapters.clock import SystemClock, SystemIds
from adapters.config import ConfigError, ServeConfig
from adapters.http import bodies, render
from adapters.http.app import build_app
from adapters.http.context import HttpConfig
from adapters.http.metrics import Metrics
from adapters.http.transfers import create_answer
from adapters.sanctions_files import ListUnusable, SanctionsSource, load_list
from adapters.webhook_sender import HttpSender
from engine import (
    access,
    controls,
    limits,
    liquidity,
    matching,
    overrides,
    policy,
    sanctions,
    statements,
)
from engine import commands as c
from engine.access import ApiKey, Role
from engine.audit import ActorType, AuditRecord, AuditRow
from engine.discrepancies import Discrepancy
from engine.events import (
    CONTROLS_STREAM,
    ControlChanged,
    EvidenceRecorded,
    RuleSetLoaded,
    TreasuryFunded,
)
from engine.events import decode as decode_event
from engine.funding import decide_deposit, deposit_id_for
from engine.nonces import NonceBook
from engine.policy import Explained, RuleSet
from engine.ports import Clock, Ids
from engine.pricing import OPEN_TERMS, Desk
from engine.provider_reports import ReportLine
from engine.quotes import Quote
from engine.rails import RailError
from engine.rebalance import Rebalance
from engine.records import Committed, IdempotencyRecord, IdempotencyStatus, Recorded
from engine.results import Result
from engine.sanctions import ListInForce, Rescreened
from engine.service import (
    Balance,
    CaseDecision,
    CaseQuery,
    Created,
    Dashboard,
    FeedEvent,
    LedgerLine,
    LedgerQuery,
    ReconciliationSummary,
    ReloadRefused,
    TransferQuery,
)
from engine.statements import Statement, StatementLine
from engine.timefmt import parse_rfc3339
from engine.transfer import RAIL_CHAIN, TransferState
from engine.webhooks import Attempt, Delivery, Endpoint, EndpointStatus
from sim.durable import SavedWorld, WorldFile
from sim.faults import FaultLog, FaultPlan
from sim.instant import DigestCustody, decode_digest
from sim.providers import BANK, OFFRAMPS
from sim.world import (
    SimRails,
    block_time_s,
    deposit_command,
    provider_report_import,
    provider_report_poll_s,
    statement_import,
    statement_poll_s,
)
from store import anchor
from store import service as tables
from store.store import Store, migrate_data_dir

GC_YOUNG_THRESHOLD = 20_000  # CPython's default is 700


class StoreOutbox:
    """The webhook dispatcher's view of the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.backlog = 0

    async def fan_out(self, now_us: int) -> int:
        added = await tables.fan_out(self.store, now_us)
        if added or self.backlog:  # only a fan-out adds to it
            self.backlog = await tables.backlog(self.store.reader)
        return added

    async def due_deliveries(self, now_us: int, limit: int) -> list[Delivery]:
        return await tables.due_deliveries(self.store.reader, now_us, limit)

    async def body(self, delivery: Delivery) -> bytes:
        transfer = None
        if delivery.transfer_id is not None:
            transfer = await tables.transfer_at(
                self.store.reader, delivery.transfer_id, delivery.journal_seq
            )
        event = FeedEvent(
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            client_id="",
            created_at=delivery.created_at,
            journal_seq=delivery.journal_seq,
            transfer=transfer,
            request_id=delivery.request_id,
        )
        return render.encode(render.feed_event(event))

    async def record_attempt(
        self, attempt: Attempt, next_attempt_at: int | None, disable: str | None
    ) -> None:
        await tables.record_attempt(self.store, attempt, next_attempt_at, disable)


@dataclasses.dataclass
class Node:
    """The service port over one store, one actor system and the simulated world."""

    store: Store
    system: System
    world: Sim
    dispatcher: WebhookDispatcher
    outbox: StoreOutbox
    env: str = "test"
    stopping: bool = False
    # Where the sanctions list is read from (a reload reads it again).
    sanctions: SanctionsSource = dataclasses.field(default_factory=SanctionsSource)

    @property
    def ready(self) -> bool:
        return self.system.ready and not self.stopping

    async def api_key(self, key_id: str) -> ApiKey | None:
        return await tables.api_key(self.store.reader, key_id)

    async def create_api_key(self, client_id: str, role: Role, user: str) -> tuple[ApiKey, str]:
        ctx = self.system.ctx
        key, text = mint_key(
            ctx.clock, ctx.ids, client=client_id, role=role, user=user, env=self.env
        )
        await tables.insert_key(self.store, key)
        return key, text

    async def api_keys(self, client_id: str | None, before: str | None, limit: int) -> list[ApiKey]:
        return await tables.api_keys(self.store.reader, client_id, before, limit)

    async def revoke_api_key(self, key_id: str) -> None:
        await tables.revoke_key(self.store, key_id, self.store.clock.now_us())

    async def issue_quote(
        self, client_id: str, source: str, target: str, amount: int, bank: bool
    ) -> Quote | Result:
        return await self.system.issue_quote(client_id, source, target, amount, bank=bank)

    async def quote(self, quote_id: str) -> tuple[str | None, Quote] | None:
        return await self.store.any_quote(quote_id)

    async def liquidity(self) -> liquidity.View:
        watch = self.system.supervisors.reconciler.liquidity
        balances = await self.store.held_balances()
        pending = self.system.supervisors.rebalancer.pending()
        return liquidity.view(self.system.ctx.tuning.liquidity, balances, watch.episodes, pending)

    def providers(self) -> Desk:
        tuning = self.system.ctx.tuning
        return Desk(
            providers=tuple(self.system.supervisors.pricing.health()),
            breaker=tuning.breaker,
            quote_deadline_s=tuning.quote_deadline_s,
        )

    async def create_transfer(
        self,
        command: c.CreateTransfer,
        audit: Callable[[int, bytes], AuditRecord] | None = None,
    ) -> Created:
        result, holder, state, audited = await self.system.create_and_answer(command, audit)
        return Created(result=result, holder=holder, state=state, audited=audited)

    async def command(
        self, transfer_id: str, command: c.TransferCommand, request_id: str | None
    ) -> Result:
        return await self.system.registry.ask(transfer_id, command, request_id=request_id)

    async def idempotency_record(self, client_id: str, key: str) -> IdempotencyRecord | None:
        return await self.store.idempotency_record(client_id, key)

    async def complete_key(
        self,
        client_id: str,
        key: str,
        status: IdempotencyStatus,
        response_status: int,
        response_body: bytes,
    ) -> object:
        return await self.store.complete_key(client_id, key, status, response_status, response_body)

    async def transfer(self, transfer_id: str) -> TransferState | None:
        return await self.store.transfer(transfer_id)

    async def transfers(self, query: TransferQuery) -> list[TransferState]:
        return await tables.transfers(self.store.reader, query)

    async def history(self, transfer_id: str) -> list[Recorded]:
        return await tables.history(self.store.reader, transfer_id)

    async def balances(self, client_id: str) -> list[Balance]:
        return await tables.balances(self.store.reader, client_id)

    async def ledger(self, query: LedgerQuery) -> list[LedgerLine]:
        return await tables.ledger(self.store.reader, query)

    async def create_endpoint(self, endpoint: Endpoint, secret: str) -> None:
        await tables.insert_endpoint(self.store, endpoint, secret)

    async def endpoints(self, client_id: str | None) -> list[Endpoint]:
        return await tables.endpoints(self.store.reader, client_id)

    async def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return await tables.endpoint(self.store.reader, endpoint_id)

    async def delete_endpoint(self, endpoint_id: str) -> None:
        await tables.close_endpoint(
            self.store,
            endpoint_id,
            EndpointStatus.DELETED,
            "deleted by the client",
            self.store.clock.now_us(),
        )

    async def attempts(
        self, endpoint_id: str, after: tuple[int, str, int] | None, limit: int
    ) -> list[Attempt]:
        return await tables.attempts(self.store.reader, endpoint_id, after, limit)

    async def feed(
        self, client_id: str | None, after_event_id: str | None, limit: int
    ) -> list[FeedEvent] | None:
        return await tables.feed(self.store.reader, client_id, after_event_id, limit)

    async def transfer_evidence(self, transfer_id: str) -> list[EvidenceRecorded]:
        return await self.store.evidence_for(transfer_id)

    async def transfer_attempts(self, transfer_id: str) -> list[Attempt]:
        return await tables.transfer_attempts(
            self.store.reader, transfer_id, limits.page_limit_max * 5
        )

    async def stuck_transfers(self, status: str | None, limit: int) -> list[TransferState]:
        return await tables.stuck_transfers(
            self.store.reader, self.store.clock.now_us(), status, limit
        )

    async def redrive(self, transfer_id: str) -> bool:
        return self.system.registry.tell(transfer_id, Redrive("operator"))

    async def sim_deposit(self, client_id: str, currency: str, amount: int) -> Result:
        if currency != "USD":
            return Result.currency_pair_unsupported
        _, reference, booked = self.world.rails.bank.book_deposit(client_id, amount)
        self.world.save()  # The bank booked it before anyone hears of it.
        return await self.system.credit_deposit(
            deposit_command(booked, reference, client_id, amount)
        )

    async def trial_balance(self) -> list[tuple[str, str, int, int]]:
        return await tables.trial_balance(self.store.reader)

    async def status_counts(self) -> dict[str, int]:
        return await tables.status_counts(self.store.reader)

    async def dashboard(self, client_id: str | None) -> Dashboard:
        return await tables.dashboard(self.store.reader, client_id, self.store.clock.now_us())

    async def audit_page(
        self,
        *,
        actor: str | None,
        resource: str | None,
        action: str | None,
        from_at: int | None,
        to_at: int | None,
        before_seq: int | None,
        limit: int,
    ) -> list[AuditRow]:
        return await tables.audit_page(
            self.store.reader,
            actor=actor,
            resource=resource,
            action=action,
            from_at=from_at,
            to_at=to_at,
            before_seq=before_seq,
            limit=limit,
        )

    async def record_audit(self, record: AuditRecord) -> None:
        outcome = await self.store.audit([record])
        assert isinstance(outcome, Committed), outcome

    async def control(
        self, scope: controls.Scope, target: str, on: bool, by: str, reason: str
    ) -> tuple[ControlChanged, int]:
        return await self.system.control(scope, target, on, by, reason)

    async def control_changes(self) -> list[ControlChanged]:
        records = await self.store.stream(CONTROLS_STREAM)
        changes = [r.event for r in reversed(records)]
        return [c for c in changes if isinstance(c, ControlChanged)]

    async def request_override(
        self, kind: overrides.Kind, transfer_id: str, reason: str, by: str
    ) -> overrides.Override | Result:
        return await self.system.request_override(kind, transfer_id, reason, by)

    async def decide_override(
        self, override_id: str, by: str, approved: bool, reason: str
    ) -> overrides.Override | Result:
        return await self.system.decide_override(override_id, by, approved, reason)

    async def override(self, override_id: str) -> overrides.Override | None:
        return await self.system.override(override_id)

    async def propose_rebalance(
        self, *, from_account: str, to_account: str, currency: str, amount: int, reason: str,
        by: str,
    ) -> Rebalance | Result:  # fmt: skip
        return await self.system.supervisors.rebalancer.propose(
            from_account=from_account, to_account=to_account, currency=currency, amount=amount,
            reason=reason, by=by,
        )  # fmt: skip

    async def decide_rebalance(
        self, rebalance_id: str, by: str, approved: bool, reason: str
    ) -> Rebalance | Result:
        return await self.system.supervisors.rebalancer.decide(rebalance_id, by, approved, reason)

    async def rebalance(self, rebalance_id: str) -> Rebalance | None:
        return await self.system.supervisors.rebalancer.load(rebalance_id)

    async def rebalances(self) -> list[Rebalance]:
        return await self.system.supervisors.rebalancer.listed()

    # --- reconciliation ---------------------------------------------------------------------------
    async def discrepancies(self, query: CaseQuery) -> list[Discrepancy]:
        return await tables.discrepancy_page(self.store.reader, query)

    async def discrepancy(self, discrepancy_id: str) -> Discrepancy | None:
        return await tables.discrepancy(self.store.reader, discrepancy_id)

    async def act_on_case(self, discrepancy_id: str, decide: CaseDecision) -> Discrepancy | Result:
        return await self.system.act_on_case(discrepancy_id, decide)

    async def reconciliation_summary(self, now: int) -> ReconciliationSummary:
        return await tables.reconciliation_summary(self.store.reader, now)

    # --- sanctions --------------------------------------------------------------------------------
    def sanctions_in_force(self) -> ListInForce:
        return self.system.ctx.sanctions.in_force

    async def reload_sanctions(
        self, by: str, reason: str
    ) -> tuple[ListInForce, Rescreened] | ReloadRefused:
        """Read the configured files again and bring them into force, re-screening every
        transfer not yet on chain; why they cannot be (the list in force stays)."""
        if not self.sanctions.paths:
            return ReloadRefused(
                code="sanctions_not_configured",
                detail="no [sanctions] files are configured: the shipped sample is in force",
            )
        try:
            loaded = await anyio.to_thread.run_sync(load_list, self.sanctions)
        except ListUnusable as e:
            return ReloadRefused(code="sanctions_list_invalid", detail=str(e))
        ctx = self.system.ctx
        in_force = loaded.in_force(self.sanctions, ctx.clock.now_us())
        rescreened = await bring_into_force(
            ctx, self.system.registry, loaded.listed, in_force,
            by=by, actor_type=ActorType.ADMIN, reason=reason, rescreen=True,
        )  # fmt: skip
        return in_force, rescreened

    # --- policy -----------------------------------------------------------------------------------
    def rules_in_force(self) -> RuleSetLoaded:
        return self.system.rules.history[-1]

    def rules_version(self, version: int) -> RuleSetLoaded | None:
        return self.system.rules.version(version)

    async def load_rules(self, document: bytes, by: str, reason: str) -> RuleSet | list[str]:
        return await self.system.rules.load(document, by, reason)

    async def explain_policy(self, command: c.CreateTransfer) -> Explained:
        ctx = self.system.ctx
        facts = await self.system.facts(command)
        screening = await ctx.sanctions.screener.screen(
            sanctions.Stage.CREATION, command.client_id, facts.destination
        )
        served = self.system.supervisors.pricing.corridors()
        return policy.explain(
            self.system.rules.current, facts, served, ctx.controls.current, screening
        )

    async def inbound(self, provider: str, raw: bytes) -> Result:
        if provider in OFFRAMPS:
            understood = await self.system.supervisors.settlements.on_webhook(raw)
            return Result.ok if understood else Result.command_malformed
        if provider == BANK:
            if _kind(raw) == STATEMENT_LINE_KIND:
                return await self._statement_line(raw)
            return await self._bank_credit(raw)
        return Result.command_malformed

    async def _statement_line(self, raw: bytes) -> Result:
        """The bank's statement feed: a line kept as evidence, once per line id, for the
        reconciler to pair (as a statement file's lines are); a line that would not pass in a
        file is refused here too, with nothing kept."""
        try:
            notice = msgspec.json.decode(raw, type=bodies.StatementLineNotice)
        except msgspec.DecodeError:
            return Result.command_malformed
        fields = msgspec.structs.asdict(notice)
        del fields["kind"]
        found = statements.line(BANK, fields)
        if not isinstance(found, StatementLine):
            return Result.command_malformed
        await record_statement(self.system.ctx, [found])
        return Result.ok

    async def _bank_credit(self, raw: bytes) -> Result:
        """The bank's credit notice: its raw payload kept as evidence, then the deposit credited
        once per bank reference, as the bank first told it: a redelivery (or a later notice
        under the same reference with other fields) credits nothing new, and one that follows a
        crash between the evidence and the credit completes the credit."""
        try:
            notice = msgspec.json.decode(raw, type=bodies.BankCreditNotice)
        except msgspec.DecodeError:
            return Result.command_malformed
        booked = parse_rfc3339(notice.booked_at)
        if booked is None:
            return Result.command_malformed
        told = {"client_id": notice.client_id, "amount": notice.amount, "currency": notice.currency}
        checked = decide_deposit(
            self._deposit(notice.reference, booked, told), self.store.clock.now_us()
        )
        if isinstance(checked, Result):
            return checked
        evidence_id = await record_evidence(
            self.system.ctx,
            provider=BANK,
            event_type=matching.DEPOSIT_CREDIT,
            external_ref=notice.reference,
            occurred_at=booked,
            transfer_id=None,
            normalized=told,
            raw=raw,
        )
        first = await tables.evidence_facts(self.store.reader, evidence_id)
        assert first is not None, evidence_id
        return await self.system.credit_deposit(self._deposit(notice.reference, *first))

    @staticmethod
    def _deposit(reference: str, booked: int, told: dict[str, str]) -> c.CreditDeposit:
        return c.CreditDeposit(
            deposit_id=deposit_id_for(BANK, reference, booked),
            client_id=told["client_id"],
            currency=told["currency"],
            amount=told["amount"],
            bank=BANK,
            bank_reference=reference,
        )

    def metrics_snapshot(self) -> dict[str, float]:
        registry = self.system.registry
        writer = self.store.writer
        return {
            "actors_live": len(registry.actors),
            "mailbox_depth": sum(len(a.mailbox) for a in registry.actors.values()),
            "actors_flagged": len(registry.flagged),
            "actor_crashes_total": registry.crashes,
            "journal_commits_total": writer.batches,
            "journal_batched_requests_total": writer.batched_requests,
            "journal_batch_size_mean": writer.batched_requests / max(1, writer.batches),
            "webhook_backlog": self.outbox.backlog,
            "webhooks_delivered_total": self.dispatcher.sent,
            "webhook_failed_attempts_total": self.dispatcher.failed_attempts,
        }


@dataclasses.dataclass(frozen=True)
class Sim:
    """The simulated world as the engine reaches it: its rails, the ports the engine calls (every
    answer given after the world is saved, when it is kept), and how to save it."""

    rails: SimRails
    ports: Rails
    save: Callable[[], None]
    webhook: Callable[[Callable[[bytes], Awaitable[object]]], Callable[[bytes], Awaitable[object]]]


async def _open_world(config: ServeConfig, store: Store, clock: SystemClock, ids: SystemIds) -> Sim:
    """The simulated world this data dir holds, or a new one (its treasury minted and booked).
    With the real chain (`evm`), the world's bank, quotes and off-ramp serve, its chain does
    not: nothing is minted or booked on it."""
    if config.rails == "sim-instant":
        return await _instant_world(config, store, clock, ids)
    data_dir = config.data_dir
    saved = WorldFile.load(data_dir, clock, ids)
    fresh = saved is None
    if saved is None:
        faults = FaultLog(FaultPlan.none(), random.Random(f"{config.sim_seed}:faults"))
        rails = SimRails.build(config.sim_seed, faults, clock, ids)
        saved = SavedWorld(rails, faults, clock.now_us())
    world = WorldFile(data_dir, saved, clock, ids)
    simulated_chain = config.rails == "sim"
    if fresh:
        saved.chain_in_use = simulated_chain
        if simulated_chain:
            saved.rails.mint_treasury()
        world.save()
    elif saved.chain_in_use != simulated_chain:
        paid_on = "the simulated chain" if saved.chain_in_use else "a real chain (evm)"
        raise ConfigError(
            f"{data_dir} pays on {paid_on}: its transfers and treasury belong there, so it"
            f" cannot be served with --rails {config.rails} (use another data dir)"
        )
    funded = await store.reader.fetchone(
        "SELECT count(*) FROM journal WHERE event_type = 'TreasuryFunded'"
    )
    if simulated_chain and funded is not None and funded[0] == 0:
        await saved.rails.book_treasury(store, ids, clock)
    saved.rails.pace(config.sim_speed)
    saving = world.saving(saved.rails)
    return Sim(saved.rails, saving.ports(), world.save, saving.webhook)


async def _instant_world(
    config: ServeConfig, store: Store, clock: SystemClock, ids: SystemIds
) -> Sim:
    rows = await store.reader.fetchone("SELECT count(*) FROM journal")
    if rows is not None and rows[0] > 0:
        raise ConfigError(
            f"--rails sim-instant keeps its world in memory only: {config.data_dir} already"
            " holds a journal, whose transfers that world would not know (use an empty data dir)"
        )
    faults = FaultLog(FaultPlan.none(), random.Random(f"{config.sim_seed}:faults"))
    rails = SimRails.build(config.sim_seed, faults, clock, ids)
    rails.answer_at_once()
    rails.pace(config.sim_speed)
    rails.chain.decode = decode_digest
    await rails.fund_treasury(store, ids, clock)
    ports = dataclasses.replace(rails.ports(), custody=DigestCustody(config.sim_seed))
    return Sim(rails, ports, lambda: None, lambda deliver: deliver)


@contextlib.asynccontextmanager
async def running(config: ServeConfig) -> AsyncIterator[tuple[Node, web.Application]]:
    """The whole service but its listener: store open, world loaded, transfers recovered,
    supervisors and the webhook dispatcher running; the app built. Leaving stops them all."""
    clock = SystemClock()
    ids = SystemIds(clock)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    async with (
        Store.open(config.data_dir, clock=clock, migrate=True) as store,
        contextlib.AsyncExitStack() as stack,
    ):
        world = await _open_world(config, store, clock, ids)
        rails = world.rails
        speed = config.sim_speed
        ports = world.ports
        chain_poll_s = block_time_s / speed
        session = await stack.enter_async_context(aiohttp.ClientSession())
        if config.evm is not None and config.rails == "evm":
            ports = await _evm_ports(config.evm, session, store, ports, ids, clock)
            chain_poll_s = config.evm_poll_s
        known = sorted(p.name for p in ports.quotes)
        for name, _ in config.pricing.terms:
            if name not in known:
                raise ConfigError(f"[providers.{name}]: no such provider (known: {known})")
        ctx = Context(
            journal=store,
            clock=clock,
            ids=ids,
            rails=ports,
            nonces=NonceBook(),
            tuning=_tuning(config, chain_poll_s),
        )
        _address_book(ctx.tuning, rails.offramp.addresses)
        _arm_drill(ctx, os.environ.get(DRILL_ENV))
        system = System(ctx, answer=create_answer)
        await _sanctions_at_start(ctx, system, config)
        metrics = Metrics()
        outbox = StoreOutbox(store)
        async with HttpSender(allow_private=config.webhooks_allow_private) as sender:
            dispatcher = WebhookDispatcher(outbox, sender, clock)
            system.supervisors.listeners.append(metrics.transfer_changed)
            system.supervisors.listeners.append(lambda _b, _a: dispatcher.nudge())
            node = Node(
                store, system, world, dispatcher, outbox, env=config.env, sanctions=config.sanctions
            )
            metrics.watch(node.metrics_snapshot)
            metrics.watch_providers(node.providers)
            app = build_app(
                node,
                clock=clock,
                ids=ids,
                config=HttpConfig(
                    allow_private_webhooks=config.webhooks_allow_private,
                    simulated=True,
                    inbound_secrets=dict(config.inbound_secrets),
                ),
                metrics_=metrics,
            )
            async with anyio.create_task_group() as tasks:
                rails.offramp.tasks = tasks
                rails.offramp.webhook = world.webhook(system.supervisors.settlements.on_webhook)
                if config.rails != "evm":
                    tasks.start_soon(rails.chain.run, block_time_s)
                rails.offramp.resume()
                await tasks.start(system.run)
                if config.sanctions_list is not None:
                    # The configured list may be newer than the one these transfers were
                    # screened against when they were created.
                    tasks.start_soon(rescreen_pending, ctx, system.registry)
                tasks.start_soon(statement_import, system, rails.bank, statement_poll_s / speed)
                tasks.start_soon(
                    provider_report_import, system, rails.offramp, provider_report_poll_s / speed
                )
                tasks.start_soon(dispatcher.run)
                tasks.start_soon(_anchor_every, store, config.data_dir, clock)
                metrics.up.set(1)
                try:
                    yield node, app
                finally:
                    node.stopping = True
                    metrics.up.set(0)
                    tasks.cancel_scope.cancel()
            # Every record written so far is anchored before the store closes.
            await anchor.anchor(store.reader, config.data_dir, clock.now_us())
        world.save()


def _tuning(config: ServeConfig, chain_poll_s: float) -> Tuning:
    tuning = Tuning(
        chain_poll_s=chain_poll_s,
        supervisor_poll_s=min(limits.timer_poll_s, 1 / config.sim_speed),
        rules_document=config.policy_document,
    )
    for field, seconds in config.reconciliation:  # [reconciliation], checked by the config
        setattr(tuning, field, seconds)
    tuning.quote_deadline_s = config.pricing.quote_deadline_s
    tuning.breaker = config.pricing.breaker
    tuning.provider_terms = dict(config.pricing.terms)
    tuning.liquidity = config.pricing.liquidity
    tuning.requote = config.pricing.requote
    tuning.requote_by_client = dict(config.pricing.requote_by_client)
    tuning.slippage_bps = config.pricing.slippage_bps
    tuning.slippage_by_corridor = dict(config.pricing.slippage_by_corridor)
    tuning.prefunded_corridors = config.pricing.prefunded_corridors
    if config.evm is not None and config.rails == "evm":
        tuning.confirmations_required = config.evm.confirmations
    return tuning


def _address_book(tuning: Tuning, addresses: dict[str, str]) -> None:
    """The simulated off-ramps' deposit addresses in the address book, for each provider whose
    `[providers.NAME]` section names none (a rebalancing move pays only a listed address)."""
    for name, address in sorted(addresses.items()):
        terms = tuning.provider_terms.get(name, OPEN_TERMS)
        if not terms.deposit_addresses:
            book = {RAIL_CHAIN: address}
            tuning.provider_terms[name] = msgspec.structs.replace(terms, deposit_addresses=book)


DRILL_ENV = "STABLERAIL_DRILL_FAILPOINT"


def _arm_drill(ctx: Context, spec: str | None) -> None:
    """A crash drill (`STABLERAIL_DRILL_FAILPOINT=chain.after_sign:1`): the process SIGKILLs
    itself on that pass through that failpoint (actors.drills), so the tests can stop a real
    `serve` between signing and journaling, or between broadcast and hearing back. Never set in
    production; a warning says so when it is."""
    if not spec:
        return
    name, _, count = spec.partition(":")
    if not (count or "1").isdigit():
        raise ConfigError(f"{DRILL_ENV}: NAME:PASS, the pass a whole number, not {spec!r}")
    target = int(count or "1")
    passes = 0

    def kill() -> None:
        nonlocal passes
        passes += 1
        if passes == target:
            logger.warning("drill: failpoint {name} pass {n}: SIGKILL", name=name, n=passes)
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        ctx.drills.arm(name, kill)
    except ValueError as e:
        raise ConfigError(f"{DRILL_ENV}: {e}") from None
    logger.warning("crash drill armed: {name} pass {n} kills this process", name=name, n=target)


async def _evm_ports(
    settings: EvmSettings,
    session: aiohttp.ClientSession,
    store: Store,
    simulated: Rails,
    ids: Ids,
    clock: Clock,
) -> Rails:
    """The real chain's ports (the node checked, the keystore unlocked), the treasury's opening
    balance booked once, and the indexer feed's first block after it (adapters.chain.rails)."""
    try:
        evm = await open_rails(settings, session)
    except (KeystoreError, NodeRefused) as e:
        raise ConfigError(str(e)) from None
    except RailError as e:
        raise ConfigError(
            f"the node at {redacted(settings.network.rpc_url)}: {e.message}"
        ) from None
    rows = await store.reader.fetchall(
        "SELECT payload FROM journal WHERE event_type = 'TreasuryFunded'"
    )
    booked = [decode_event(payload) for (payload,) in rows]
    opened = opening_block(
        f.reference
        for f in booked
        if isinstance(f, TreasuryFunded)
        and (f.chain, f.address) == (settings.network.chain, evm.treasury)
    )
    if opened is None:
        try:
            opened, fundings = await opening_funding(evm, ids, clock)
        except (RailError, RpcError, RpcUnreachable) as e:
            where = redacted(settings.network.rpc_url)
            raise ConfigError(f"the treasury's opening balance at {where}: {e}") from None
        for funded in fundings:
            outcome = await store.append(funded.funding_id, 0, [funded])
            if not isinstance(outcome, Committed):
                raise ConfigError(f"the treasury's opening balance was not booked: {outcome}")
        logger.info(
            "treasury {address}: opening balance booked at block {block}: {held}",
            address=evm.treasury, block=opened,
            held=", ".join(f"{f.amount} {f.currency} minor units" for f in fundings) or "none",
        )  # fmt: skip
    network = settings.network
    evm.node.network = dataclasses.replace(
        network, start_block=max(network.start_block, opened + 1)
    )
    return dataclasses.replace(
        simulated,
        custody=evm.custody,
        chain=evm.node,
        indexer=evm.node,
        quotes=tuple(WalletCorridors(provider, network) for provider in simulated.quotes),
    )


async def _sanctions_at_start(ctx: Context, system: System, config: ServeConfig) -> None:
    """The configured list in force (audited), or the shipped sample with a warning."""
    loaded = config.sanctions_list
    if loaded is None:
        logger.warning("screening against the shipped SAMPLE sanctions list (fictional"
                       " entries): configure [sanctions] files for a real one")  # fmt: skip
        return
    now = ctx.clock.now_us()
    in_force = loaded.in_force(config.sanctions, now)
    await bring_into_force(
        ctx, system.registry, loaded.listed, in_force,
        by="system", actor_type=ActorType.SYSTEM, reason="configured at start", rescreen=False,
    )  # fmt: skip
    h = in_force.holdings
    logger.info(
        "sanctions list in force: {entries} entries, {names} names, {addresses} wallet"
        " addresses, digest {digest}", entries=h.entries, names=h.names,
        addresses=h.addresses, digest=h.digest[:16],
    )  # fmt: skip
    if in_force.stale(now):
        logger.warning("the sanctions list is older than {days} days: load a current one",
                       days=config.sanctions.max_age_days)  # fmt: skip


async def _anchor_every(store: Store, data_dir: Path, clock: Clock) -> None:
    """Write the audit chain's head to the anchor file at intervals (when it moved)."""
    while True:
        await anchor.anchor(store.reader, data_dir, clock.now_us())
        await anyio.sleep(limits.audit_anchor_s)


async def serve(config: ServeConfig) -> None:
    async with running(config) as (node, app):
        _tune_gc()
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, shutdown_timeout=10)
        await site.start()
        logger.info(
            "serving on http://{host}:{port} (data dir {data}, recovered {n} transfers)",
            host=config.host,
            port=config.port,
            data=str(config.data_dir),
            n=node.system.recovered,
        )
        await _until_signalled()
        logger.info("stopping: closing the listener, finishing requests in flight")
        node.stopping = True
        await runner.cleanup()
    logger.info("stopped")


def _tune_gc() -> None:
    """What start-up built (modules, the route table, recovered state) lives as long as the
    process: freeze it out of the cyclic collector's scans, and let the youngest generation grow
    larger before a collection, since a request allocates many short-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _until_signalled() -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


async def migrate(data_dir: Path) -> None:
    await migrate_data_dir(data_dir, SystemClock())


async def transfer_counts(data_dir: Path) -> tuple[int, int]:
    """How many transfers a (stopped) data dir holds, and how many of them are RECONCILED."""
    async with Store.open(data_dir, clock=SystemClock()) as store:
        counts = await tables.status_counts(store.reader)
    return sum(counts.values()), counts.get("RECONCILED", 0)


def mint_key(
    clock: Clock, ids: Ids, *, client: str | None, role: Role, user: str, env: str
) -> tuple[ApiKey, str]:
    """A new key: the record to store (its secret's sha256 only) and the key's text."""
    secret = os.urandom(access.SECRET_BYTES)
    key_id = ids.new("ak")
    text = access.format_key(env, key_id, secret)
    parsed = access.parse_key(text)
    assert parsed is not None
    key = ApiKey(
        key_id=key_id,
        client_id=client,
        role=role,
        user=user,
        env=env,
        secret_sha256=access.secret_digest(parsed.secret),
        created_at=clock.now_us(),
    )
    return key, text


async def create_key(
    data_dir: Path, *, client: str | None, role: Role, user: str, env: str = "test"
) -> tuple[ApiKey, str]:
    """The stored key and the key's text (shown once). ValueError on unusable arguments."""
    why = access.key_refusal(client, role, user)
    if why is not None:
        raise ValueError(why)
    clock = SystemClock()
    key, text = mint_key(clock, SystemIds(clock), client=client, role=role, user=user, env=env)
    async with Store.open(data_dir, clock=clock) as store:
        await tables.insert_key(store, key)
        # An admin action on the machine itself: audited like one over the API.
        record = AuditRecord(
            at=clock.now_us(),
            actor_id=f"cli:{_os_user()}",
            actor_type=ActorType.ADMIN,
            action_type="create_key",
            resource_type="api-keys",
            resource_id=key.key_id,
            outcome="ok",
            diff_summary={"id": key.key_id, "role": role.value},
            metadata={"client_id": client or "", "user": user, "via": "stablerail keys create"},
        )
        assert isinstance(await store.audit([record]), Committed)
    return key, text


@dataclasses.dataclass(frozen=True)
class _Recorder:
    journal: Store
    clock: SystemClock
    ids: SystemIds


class StatementImport(msgspec.Struct, kw_only=True):
    """What `stablerail reconcile --statement` kept: totals, and statement by statement."""

    lines: int
    new: int
    explained: int
    # Cases opened for statements that do not add up (or disagree with the ledger).
    cases: list[str]
    statements: list[StatementRecorded]


async def import_statement(data_dir: Path, found: list[Statement]) -> StatementImport:
    """`stablerail reconcile --statement`: keep a bank statement file's booked lines as evidence
    (once: a file read twice adds nothing), judge each statement's balances (a case when one
    does not add up or disagrees with the ledger) and audit the import. The running service's
    reconciler pairs the lines with the ledger at its next full round and opens a case for
    what nothing explains."""
    clock = SystemClock()
    async with Store.open(data_dir, clock=clock) as store:
        recorder = _Recorder(store, clock, SystemIds(clock))
        recorded = await record_statements(recorder, found)
        report = StatementImport(
            lines=sum(r.lines for r in recorded),
            new=sum(r.new for r in recorded),
            explained=sum(r.explained for r in recorded),
            cases=[r.case_id for r in recorded if r.case_id],
            statements=recorded,
        )
        diff = {
            "statements": str(len(recorded)),
            "lines": str(report.lines),
            "new": str(report.new),
            "cases": ", ".join(report.cases) or "none",
        }
        source = ", ".join(sorted({f"{r.bank}/{r.account}".rstrip("/") for r in recorded}))
        await _audit_import(
            store, "import_statement", "statements", source or None, diff, "--statement"
        )
    return report


class ProviderReportImport(msgspec.Struct, kw_only=True):
    rows: int
    new: int
    # Rows that disagree with what the provider told us before about the same trade.
    differing: int
    evidence_ids: list[str]


async def import_provider_report(data_dir: Path, rows: list[ReportLine]) -> ProviderReportImport:
    """`stablerail reconcile --provider-report`: keep a provider's trade report rows as its payout
    reports (a row that agrees with what is stored adds nothing; one that disagrees is kept
    beside it) and audit the import."""
    clock = SystemClock()
    async with Store.open(data_dir, clock=clock) as store:
        recorder = _Recorder(store, clock, SystemIds(clock))
        ids, new, differing = await record_provider_report(recorder, rows)
        diff = {"rows": str(len(rows)), "new": str(new), "differing": str(differing)}
        source = rows[0].provider if rows else None
        await _audit_import(
            store, "import_provider_report", "provider_reports", source, diff, "--provider-report"
        )
    return ProviderReportImport(rows=len(rows), new=new, differing=differing, evidence_ids=ids)


# The bank's webhooks: a credit notice (no kind), or a statement line (this kind).
STATEMENT_LINE_KIND = "statement_line"


def _kind(raw: bytes) -> str | None:
    try:
        found = msgspec.json.decode(raw, type=dict[str, object])
    except msgspec.DecodeError:
        return None
    kind = found.get("kind")
    return kind if isinstance(kind, str) else None


async def _audit_import(
    store: Store, action: str, resource: str, source: str | None, diff: dict[str, str], flag: str
) -> None:
    """A file fed by hand is a command: audited under the operating-system user who ran it."""
    record = AuditRecord(
        at=store.clock.now_us(),
        actor_id=f"cli:{_os_user()}",
        actor_type=ActorType.ADMIN,
        action_type=action,
        resource_type=resource,
        resource_id=source,
        outcome="ok",
        diff_summary=diff,
        metadata={"via": f"stablerail reconcile {flag}"},
    )
    assert isinstance(await store.audit([record]), Committed)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def anchor_now(data_dir: Path) -> tuple[int, bytes] | None:
    """Write the audit chain's head to the anchor file (`stablerail audit anchor`)."""
    clock = SystemClock()
    async with Store.open(data_dir, clock=clock) as store:
        return await anchor.anchor(store.reader, data_dir, clock.now_us())
