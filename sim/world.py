"""`stablerail simulate`: the whole engine against a simulated chain, bank and off-ramp, in virtual
time, with a seeded workload and fault plan, checked after every step.

Phases: clients are funded by bank deposits; a workload creates transfers on both corridors
(USD -> USDC to a wallet, USD -> MXN over SPEI), re-sends some creates with the same idempotency
key and cancels some; faults fire per the plan. Then the liveness phase: faults off, and every
transfer must end terminal within a virtual deadline. Then the end checks (sim.checker). The
store runs with the in-loop executor on a real SQLite file, so the same seed gives the same
journal byte for byte; the digest is the journal's head hash.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec

from actors.context import Context, Rails, Tuning
from actors.drills import Drills
from actors.system import System
from engine import commands as c
from engine import events as ev
from engine import money
from engine.destinations import BankDestination, Destination, WalletDestination
from engine.events import Event, ProviderFunded, TreasuryFunded
from engine.funding import decide_provider_funding, decide_treasury_funding, deposit_id_for
from engine.hashing import request_hash
from engine.liquidity import Threshold
from engine.nonces import NonceBook
from engine.ports import Clock, Ids, Journal
from engine.pricing import ProviderTerms
from engine.records import Committed
from engine.results import Result
from engine.statements import StatementLine
from engine.states import Status
from engine.transfer import RAIL_CHAIN, TransferState, evolve
from sim.chain import SimChain
from sim.checker import Checker
from sim.clock import SeededIds, VirtualClock, run_virtual
from sim.custody import SimCustody
from sim.faults import FaultLog, FaultPlan
from sim.ops import OpsDesk
from sim.providers import BANK, OFFRAMPS, SimBank, SimOffRamp, SimQuotes
from store.executor import ExecutorKind
from store.store import Store

block_time_s = 2.0
treasury_float_usdc = 10**9 * 10**6  # one billion USDC of inventory
prefunding_usdc = 10**6 * 10**6  # one million USDC placed with each off-ramp
# Each off-ramp's floor a little under its prefunding (a couple of payouts rerouted to it break
# it: the liquidity watch must notice, the operators refill it), its ceiling a little over (a
# few deposits it kept after refusing payouts: the operators sweep them back).
LIQUIDITY = tuple(
    Threshold(
        account=f"provider:{name}",
        currency="USDC",
        min_amount=prefunding_usdc - 2_000 * 10**6,
        max_amount=prefunding_usdc + 5_000 * 10**6,
    )
    for name in sorted(OFFRAMPS)
)
# Each client is funded for about 80% of what its share of the workload spends (the average
# transfer is 2,505.00 USD), so some transfers meet insufficient funds, as in life.
transfer_usd_minor_low = 10_00
transfer_usd_minor_high = 5_000_00
liveness_deadline_s = 6 * 3600
statement_poll_s = 60
provider_report_poll_s = 5 * 60
# A simulated day is short: unclaimed statement lines wait ten minutes, not an hour, before
# they are external_only cases (the operators in sim.ops are as quick).
EXTERNAL_ONLY_GRACE_S = 600
CLABES = ("032180000118359719", "002010077777777771", "014027000000000008")


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    seed: int
    transfers: int = 100
    clients: int = 5
    faults: str = "default"
    # Bugs planted on purpose (actors.drills.CANARIES): a run with one must fail a check.
    canaries: tuple[str, ...] = ()


class SimReport(msgspec.Struct, kw_only=True):
    seed: int
    transfers: int
    clients: int
    faults: str
    ok: bool
    final_status: dict[str, int]
    failure_codes: dict[str, int]
    invariants: dict[str, str]
    faults_fired: dict[str, int]
    digest: str
    journal_rows: int
    virtual_s: float
    time_in_state_s: dict[str, dict[str, float]]
    alerts: int
    # Reconciliation: transfers reconciled, and cases by type, opened and closed.
    reconciled: int
    discrepancies: dict[str, dict[str, int]]
    crashes: int
    reorgs: int
    reproduce: str
    # Rebalancing moves the simulated operators proposed, by outcome when approved.
    rebalances: dict[str, int] = {}


def simulate(
    config: SimConfig,
    data_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimReport:
    """`progress` hears how many transfers have ended, each time one does."""
    if data_dir is None:
        with tempfile.TemporaryDirectory(prefix="stablerail-sim-") as tmp:
            return simulate(config, Path(tmp) / "data", progress)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    clock = VirtualClock()
    return run_virtual(lambda: _run(config, data_dir, clock, progress), clock)


def _rng(seed: int, part: str) -> random.Random:
    return random.Random(f"{seed}:{part}")


async def _run(
    config: SimConfig,
    data_dir: Path,
    clock: VirtualClock,
    progress: Callable[[int], None] | None = None,
) -> SimReport:
    seed = config.seed
    plan = FaultPlan.named(config.faults, _rng(seed, "plan"))
    faults = FaultLog(plan, _rng(seed, "faults"))
    ids = SeededIds(seed, clock)
    # Not flushed to the disk (schema.configure): a simulated world cannot lose power.
    async with Store.open(
        data_dir, clock=clock, executor=ExecutorKind.INLINE, migrate=True, durable=False
    ) as store:
        checker = Checker(store)
        checker.on_ended = progress
        rails = SimRails.build(seed, faults, clock, ids)
        chain, bank, offramp, treasury = rails.chain, rails.bank, rails.offramp, rails.treasury
        await rails.fund_treasury(checker, ids, clock)
        ctx = Context(
            journal=checker,
            clock=clock,
            ids=ids,
            rails=rails.ports(),
            nonces=NonceBook(),
            drills=Drills(canaries=frozenset(config.canaries)),
            tuning=Tuning(
                external_only_grace_s=EXTERNAL_ONLY_GRACE_S,
                liquidity=LIQUIDITY,
                provider_terms=address_book(offramp),
                # Odd seeds pay USD-MXN from prefunding at broadcast, even ones just in time.
                prefunded_corridors=frozenset({"USD-MXN"} if seed % 2 else ()),
            ),
        )
        system = System(ctx)
        async with anyio.create_task_group() as world:
            offramp.tasks = world
            offramp.webhook = system.supervisors.settlements.on_webhook
            world.start_soon(chain.run, block_time_s)
            await world.start(system.run)
            world.start_soon(statement_import, system, bank)
            world.start_soon(provider_report_import, system, offramp)
            ops = OpsDesk(system, BANK)
            world.start_soon(ops.run)
            workload = Workload(config, system, bank, checker, faults, _rng(seed, "workload"), ids)
            await workload.run()
            checker.check_chain(chain, treasury)
            faults.enabled = False
            ops.rebalancing = False  # what is under way finishes; nothing new is proposed
            with anyio.move_on_after(liveness_deadline_s):
                while not await settled(system, store, config.transfers):  # noqa: ASYNC110
                    await anyio.sleep(30)
            # Let the last confirmations sink past any reorg the chain could still do.
            await anyio.sleep(block_time_s * 4)
            # One more liquidity judgement of the books as they ended (the checker then asks
            # that every balance past a bound has its episode and its alert).
            now = clock.now_us()
            await system.supervisors.reconciler.liquidity.check(await store.held_balances(), now)
            world.cancel_scope.cancel()
        await checker.check_end(chain, treasury, "USDC", data_dir, (bank, offramp))
        await checker.check_liquidity(LIQUIDITY)
        head_seq, head_hash = await store.head()
        statuses = await store.reader.fetchall(
            "SELECT status, count(*) FROM transactions GROUP BY status ORDER BY status"
        )
        failures = await store.reader.fetchall(
            "SELECT failure_code, count(*) FROM transactions WHERE failure_code IS NOT NULL"
            " GROUP BY failure_code ORDER BY failure_code"
        )
        alerts = await store.reader.fetchone(
            "SELECT count(*) FROM journal WHERE event_type = 'AlertRaised'"
        )
        tis = await _time_in_state(store)
        cases = await store.reader.fetchall(
            "SELECT discrepancy_type, count(*), sum(status NOT IN ('OPEN', 'INVESTIGATING'))"
            " FROM discrepancies GROUP BY discrepancy_type ORDER BY discrepancy_type"
        )
    assert alerts is not None
    return SimReport(
        seed=seed,
        transfers=config.transfers,
        clients=config.clients,
        faults=config.faults,
        ok=checker.ok,
        final_status={s: n for s, n in statuses},
        failure_codes={code: n for code, n in failures},
        invariants=checker.results,
        faults_fired=dict(sorted(faults.fired.items())),
        digest=head_hash.hex(),
        journal_rows=head_seq,
        virtual_s=round(clock.elapsed_us / 1e6, 3),
        time_in_state_s=tis,
        alerts=alerts[0],
        reconciled=next((n for s, n in statuses if s == Status.RECONCILED.value), 0),
        discrepancies={k: {"opened": n, "resolved": r} for k, n, r in cases},
        crashes=system.registry.crashes,
        reorgs=chain.reorgs,
        rebalances={k: n for k, n in sorted(ops.done.items()) if k.startswith("rebalance_")},
        reproduce=(
            f"stablerail simulate --seed {seed} --transfers {config.transfers}"
            f" --clients {config.clients} --faults {config.faults}"
            + "".join(f" --plant {name}" for name in config.canaries)
        ),
    )


@dataclasses.dataclass(slots=True)
class SimRails:
    """The simulated chain, custody, bank, off-ramp and quote providers of one seed."""

    chain: SimChain
    custody: SimCustody
    bank: SimBank
    offramp: SimOffRamp
    quotes: SimQuotes
    treasury: str

    @classmethod
    def build(cls, seed: int, faults: FaultLog, clock: Clock, ids: Ids) -> SimRails:
        chain = SimChain(_rng(seed, "chain"), faults)
        custody = SimCustody(seed)
        treasury = custody.address(chain.chain)
        bank = SimBank(_rng(seed, "bank"), faults, clock.now_us)
        offramp = SimOffRamp(seed, _rng(seed, "offramp"), faults, chain, bank, treasury)
        quotes = SimQuotes(_rng(seed, "quotes"), faults, clock.now_us, offramp.addresses)
        return cls(chain, custody, bank, offramp, quotes, treasury)

    def answer_at_once(self) -> None:
        """No latency on the node's and the quote provider's answers (the lifecycle benchmark:
        what is measured is the engine, not the simulated world's waits)."""
        self.chain.rpc_latency_s = 0.0
        self.quotes.answer_at_once()

    def pace(self, speed: float) -> None:
        """Run the world `speed` times faster than real time (`serve --sim-speed`)."""
        assert speed > 0
        for part in (self.chain, self.bank, self.offramp, self.quotes):
            part.speed = speed

    def ports(self) -> Rails:
        return Rails(
            quotes=self.quotes.providers,
            custody=self.custody,
            chain=self.chain,
            indexer=self.chain,
            offramp=self.offramp,
            bank=self.bank,
        )

    async def fund_treasury(self, journal: Journal, ids: Ids, clock: Clock) -> None:
        """Mint the treasury's stablecoin on the chain and book it from capital in the ledger."""
        self.mint_treasury()
        await self.book_treasury(journal, ids, clock)

    def mint_treasury(self) -> None:
        """The treasury's inventory, and each off-ramp's prefunding at its deposit address."""
        self.chain.mint("USDC", self.treasury, treasury_float_usdc)
        for address in self.offramp.addresses.values():
            self.chain.mint("USDC", address, prefunding_usdc)

    async def book_treasury(self, journal: Journal, ids: Ids, clock: Clock) -> None:
        """Both, booked from capital in one commit (a crash leaves both or neither)."""
        funded = decide_treasury_funding(
            funding_id=ids.new("tf"),
            chain=self.chain.chain,
            address=self.treasury,
            currency="USDC",
            amount=treasury_float_usdc,
            reference="genesis inventory",
            now=clock.now_us(),
        )
        assert isinstance(funded, TreasuryFunded), funded
        events: list[Event] = [funded]
        for provider in sorted(self.offramp.addresses):
            prefunded = decide_provider_funding(
                funding_id=funded.funding_id,
                provider=provider,
                currency="USDC",
                amount=prefunding_usdc,
                reference="genesis prefunding",
                now=clock.now_us(),
            )
            assert isinstance(prefunded, ProviderFunded), prefunded
            events.append(prefunded)
        assert isinstance(await journal.append(funded.funding_id, 0, events), Committed)


def address_book(offramp: SimOffRamp) -> dict[str, ProviderTerms]:
    """The off-ramps' deposit addresses, where rebalancing moves pay their prefunding."""
    return {
        name: ProviderTerms(deposit_addresses={RAIL_CHAIN: address})
        for name, address in sorted(offramp.addresses.items())
    }


async def statement_import(system: System, bank: SimBank, poll_s: float = statement_poll_s) -> None:
    """Reading the bank statement: every line is kept as evidence (reconciliation pairs it with
    the ledger and flags what nothing explains), and a deposit whose notice was lost is credited
    from its line."""
    seen = 0
    while True:
        await anyio.sleep(poll_s)
        lines = bank.statement[seen:]
        for booked, reference, client, amount in lines:
            line = StatementLine(
                bank=BANK, line_id=reference, booked_at=booked, amount=amount, currency="USD",
                direction="credit", reference=reference, counterparty=client,
            )  # fmt: skip
            [evidence_id], _ = await system.record_statement([line])
            if client:
                await system.credit_from_statement(
                    deposit_command(booked, reference, client, amount), evidence_id
                )
        seen += len(lines)


async def provider_report_import(
    system: System, offramp: SimOffRamp, poll_s: float = provider_report_poll_s
) -> None:
    """Reading the off-ramp's trade report: each row is kept as the provider's payout report
    (one that agrees with its webhook adds nothing; one that disagrees is kept beside it and
    the reconciler opens a case)."""
    while True:
        await anyio.sleep(poll_s)
        rows = offramp.trade_report()
        if rows:
            await system.record_provider_report(rows)


def deposit_command(booked: int, reference: str, client: str, amount: int) -> c.CreditDeposit:
    return c.CreditDeposit(
        deposit_id=deposit_id_for(BANK, reference, booked),
        client_id=client,
        currency="USD",
        amount=money.format_amount(amount, money.ASSETS["USD"]),
        bank=BANK,
        bank_reference=reference,
    )


class Workload:
    def __init__(
        self,
        config: SimConfig,
        system: System,
        bank: SimBank,
        checker: Checker,
        faults: FaultLog,
        rng: random.Random,
        ids: SeededIds,
    ) -> None:
        self.config = config
        self.system = system
        self.bank = bank
        self.checker = checker
        self.faults = faults
        self.rng = rng
        self.ids = ids
        self.clients = [f"client-{n}" for n in range(1, config.clients + 1)]

    async def run(self) -> None:
        average = (transfer_usd_minor_low + transfer_usd_minor_high) // 2
        funding = max(average, self.config.transfers * average * 8 // (10 * len(self.clients)))
        for client in self.clients:
            _, reference, booked = self.bank.book_deposit(client, funding)
            if not self.faults.fire("webhook_lost"):
                await self.system.credit_deposit(
                    deposit_command(booked, reference, client, funding)
                )
        await anyio.sleep(statement_poll_s + 1)
        async with anyio.create_task_group() as tasks:
            for number in range(self.config.transfers):
                await anyio.sleep(self.rng.expovariate(1 / 2.0))
                tasks.start_soon(self.transfer, number)

    async def transfer(self, number: int) -> None:
        client = self.rng.choice(self.clients)
        bank = self.rng.random() < 0.5
        destination: Destination
        if bank:
            target = "MXN"
            destination = BankDestination(
                country="MX", clabe=self.rng.choice(CLABES), name=f"Beneficiary {number}"
            )
        else:
            target = "USDC"
            destination = WalletDestination(
                chain="ethereum", address="0x" + self.rng.randbytes(20).hex()
            )
        cents = self.rng.randint(transfer_usd_minor_low, transfer_usd_minor_high)
        amount = money.format_amount(cents, money.ASSETS["USD"])
        key = f"order-{number}"
        body = {"target": target, "amount": amount, "n": number}
        retry = self.faults.fire("retry_request")
        cancel = self.faults.fire("cancel")
        attempts = 2 if retry else 1
        for _ in range(attempts):
            create = c.CreateTransfer(
                transfer_id=self.ids.new("tr"),
                client_id=client,
                initiator=f"user-{client}",
                idempotency_key=key,
                request_hash=request_hash("POST /v1/transfers", body),
                source_currency="USD",
                target_currency=target,
                amount=amount,
                destination=destination,
                reference=f"invoice {number}",
            )
            result, holder = await self.system.create_transfer(create)
            if result is Result.ok:
                await self.checker.acknowledged(client, key, holder)
            if result is not Result.ok and not result.transient:
                self.checker.fail("idempotency_key_one_transfer", f"{key}: {result.code}")
            if attempts > 1:
                await anyio.sleep(self.rng.uniform(0, 3))
        if cancel and holder is not None:
            await anyio.sleep(self.rng.uniform(0, 0.5))
            await self.system.registry.ask(holder, c.CancelTransfer(by=f"user-{client}"))


async def settled(system: System, store: Store, expected: int) -> bool:
    """Every transfer ended, every rebalancing move booked or ended, every case closed and every
    unclaimed report classified."""
    if not await all_terminal(store, expected):
        return False
    if system.supervisors.rebalancer.pending():
        return False
    if system.supervisors.reconciler.unclassified:
        return False
    return not await system.ctx.journal.discrepancies(open_only=True)


async def all_terminal(store: Store, expected: int) -> bool:
    row = await store.reader.fetchone(
        "SELECT count(*), sum(status IN ('RECONCILED', 'FAILED', 'CANCELLED', 'EXPIRED'))"
        " FROM transactions"
    )
    assert row is not None
    return bool(row[0] >= expected and row[0] == row[1])


async def _time_in_state(store: Store) -> dict[str, dict[str, float]]:
    """Seconds spent in each status, p50/p90/p99 over every transfer that left it."""
    spent: dict[str, list[float]] = defaultdict(list)
    rows = await store.reader.fetchall("SELECT transaction_id FROM transactions")
    for (tid,) in rows:
        state: TransferState | None = None
        since = 0
        for rec in await store.load_stream(tid):
            assert ev.is_transfer_event(rec.event)
            before = state.status if state is not None else None
            state = evolve(state, rec.event)
            if state.status is not before:
                if before is not None:
                    spent[before.value].append((rec.event.at - since) / 1e6)
                since = rec.event.at
    found: dict[str, dict[str, float]] = {}
    for name, values in sorted(spent.items()):
        values.sort()
        found[name] = {
            "p50": round(statistics.median(values), 3),
            "p90": round(values[int(0.9 * (len(values) - 1))], 3),
            "p99": round(values[int(0.99 * (len(values) - 1))], 3),
            "n": len(values),
        }
    return found
