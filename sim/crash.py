"""Crash drills: the engine in a real process on a real SQLite file, killed with SIGKILL, restarted.

    python -m sim.crash --data-dir DIR --seed N --transfers N [--incarnation I]
                        [--failpoint NAME --failpoint-pass K]

runs one incarnation of a drill world (the child): it opens the data dir, loads the simulated
world the last incarnation left (sim.durable) or makes a new one, recovers every transfer from
the journal, and goes on with the workload. The workload re-sends every create that was not yet
acknowledged, with the same idempotency key and body, as a client whose request timed out does;
an acknowledged create is written to `acks` (transfer number, transfer id) the moment it is
answered, so the drill knows exactly what the engine promised. Every fourth transfer needs an
approval, given 20 minutes after it was created, so the time-in-state timer fires first. When
every transfer is terminal the child runs the simulation's end checks and prints one JSON line.
With `--failpoint` it SIGKILLs itself on the K-th pass through that failpoint (actors.drills).

`drill()` (the parent) starts incarnation after incarnation: each is killed at a random moment
after it reported ready, or at its failpoint, until the kills are done; the last one runs to the
end. Then it checks from the outside: every acknowledged transfer is present, each transfer
number is held by exactly one transfer, all are terminal, and `stablerail verify` (the journal
replay and the world against the ledger) is clean.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import msgspec

from actors.context import Context, Tuning
from actors.drills import FAILPOINTS, Drills
from actors.system import System
from engine import commands as c
from engine import money
from engine.destinations import BankDestination, Destination, WalletDestination
from engine.hashing import request_hash
from engine.nonces import NonceBook
from engine.results import Result
from engine.states import TERMINAL, Status
from engine.timefmt import parse_rfc3339
from engine.transfer import approval_state
from sim.checker import Checker
from sim.clock import SeededIds, VirtualClock, run_virtual
from sim.durable import SavedWorld, WorldFile, verify_world
from sim.faults import FaultLog, FaultPlan
from sim.ops import OpsDesk
from sim.providers import BANK
from sim.world import (
    CLABES,
    EXTERNAL_ONLY_GRACE_S,
    SimRails,
    block_time_s,
    deposit_command,
    liveness_deadline_s,
    settled,
    statement_import,
)
from store import verify
from store.executor import ExecutorKind
from store.store import Store

ACKS_FILE = "acks"
CLIENTS = ("client-1", "client-2", "client-3")
APPROVER = "user-approver"
# Every fourth transfer is initiated by a maker whose transfers policy sends to a checker.
MAKERS = tuple(f"maker-{client}" for client in CLIENTS)
RULES = f"""
[usd_rates]
EUR = "1.08"
EURC = "1.08"
MXN = "0.058"

[[rules]]
id = "makers-need-a-checker"
action = "approve"
approvers = 1
when = {{ initiators = [{", ".join(f'"{m}"' for m in MAKERS)}] }}

[[rules]]
id = "allow"
action = "allow"
""".encode()
approve_after_us = 20 * 60 * 1_000_000  # past CREATED's 15-minute time-in-state threshold
approver_poll_s = 60
# A client re-sends a create answered "busy" or "in progress" at most this often, 5 s apart.
create_attempts_max = 60
# An incarnation that runs this long (real time) without finishing is stuck.
incarnation_timeout_s = 120
# A share of the random kills lands during start-up (imports, opening, recovery) instead.
early_kill_share = 0.25
early_kill_window_s = 1.0


class ChildReport(msgspec.Struct, kw_only=True):
    incarnation: int
    ok: bool
    invariants: dict[str, str]
    final_status: dict[str, int]
    acked: int
    world_saves: int


class DrillReport(msgspec.Struct, kw_only=True):
    seed: int
    transfers: int
    failpoint: str | None
    kills: int
    incarnations: int
    acked: int
    final_status: dict[str, int]
    invariants: dict[str, str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the child: one incarnation ---------------------------------------------------------------


def _transfer_command(seed: int, number: int, transfer_id: str) -> c.CreateTransfer:
    """Transfer `number`'s create, the same in every incarnation (same key, same body)."""
    rng = random.Random(f"{seed}:transfer:{number}")
    client = rng.choice(CLIENTS)
    destination: Destination
    if rng.random() < 0.5:
        target = "MXN"
        destination = BankDestination(
            country="MX", clabe=rng.choice(CLABES), name=f"Beneficiary {number}"
        )
    else:
        target = "USDC"
        destination = WalletDestination(chain="ethereum", address="0x" + rng.randbytes(20).hex())
    amount = money.format_amount(rng.randint(10_00, 5_000_00), money.ASSETS["USD"])
    return c.CreateTransfer(
        transfer_id=transfer_id,
        client_id=client,
        initiator=f"maker-{client}" if number % 4 == 0 else f"user-{client}",
        idempotency_key=f"order-{number}",
        request_hash=request_hash("POST /v1/transfers", {"n": number, "amount": amount}),
        source_currency="USD",
        target_currency=target,
        amount=amount,
        destination=destination,
        reference=f"invoice {number}",
    )


def read_acks(data_dir: Path) -> dict[int, set[str]]:
    """Transfer number -> every transfer id an acknowledgement named (one, if all is well)."""
    found: dict[int, set[str]] = defaultdict(set)
    path = data_dir / ACKS_FILE
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():  # A torn last line is no ack.
                found[int(parts[0])].add(parts[1])
    return found


def _ack(data_dir: Path, number: int, transfer_id: str) -> None:
    fd = os.open(data_dir / ACKS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{number} {transfer_id}\n".encode())
    finally:
        os.close(fd)


def _kill_on_pass(name: str, target: int) -> Callable[[], None]:
    passes = 0

    def action() -> None:
        nonlocal passes
        passes += 1
        if passes == target:
            print(f"failpoint {name} pass {passes}: SIGKILL", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    return action


async def _incarnation(args: argparse.Namespace, clock: VirtualClock) -> ChildReport:
    data_dir: Path = args.data_dir
    seed: int = args.seed
    ids = SeededIds(seed * 1_000_003 + args.incarnation, clock)
    saved = WorldFile.load(data_dir, clock, ids)
    fresh = saved is None
    if saved is None:
        faults = FaultLog(FaultPlan.default(), random.Random(f"{seed}:faults"))
        saved = SavedWorld(SimRails.build(seed, faults, clock, ids), faults, clock.now_us())
    clock.start_us = saved.now_us
    async with Store.open(
        data_dir, clock=clock, executor=ExecutorKind.INLINE, migrate=True
    ) as store:
        # Time never runs backwards across a restart: go on after the last thing recorded.
        last = await store.reader.fetchone(
            "SELECT recorded_at FROM journal ORDER BY seq DESC LIMIT 1"
        )
        if last is not None:
            recorded = parse_rfc3339(last[0])
            assert recorded is not None
            clock.start_us = max(clock.now_us(), recorded + 1) - clock.elapsed_us
        world = WorldFile(data_dir, saved, clock, ids)
        rails = saved.rails
        if fresh:
            rails.mint_treasury()
            world.save()
        checker = Checker(store)
        await checker.resume()
        funded = await store.reader.fetchone(
            "SELECT count(*) FROM journal WHERE event_type = 'TreasuryFunded'"
        )
        if funded is not None and funded[0] == 0:
            await rails.book_treasury(checker, ids, clock)
        drills = Drills()
        if args.failpoint is not None:
            drills.arm(args.failpoint, _kill_on_pass(args.failpoint, args.failpoint_pass))
        saving = world.saving(rails)
        ctx = Context(
            journal=checker,
            clock=clock,
            ids=ids,
            rails=saving.ports(),
            nonces=NonceBook(),
            tuning=Tuning(rules_document=RULES, external_only_grace_s=EXTERNAL_ONLY_GRACE_S),
            drills=drills,
        )
        system = System(ctx)
        async with anyio.create_task_group() as tasks:
            rails.offramp.tasks = tasks
            rails.offramp.webhook = saving.webhook(system.supervisors.settlements.on_webhook)
            tasks.start_soon(rails.chain.run, block_time_s)
            rails.offramp.resume()
            await tasks.start(system.run)
            print("ready", flush=True)
            tasks.start_soon(statement_import, system, rails.bank)
            tasks.start_soon(_approver, system, store, data_dir)
            tasks.start_soon(OpsDesk(system, BANK).run)
            await _workload(args, system, world, checker, ids)
            with anyio.move_on_after(liveness_deadline_s):
                while not await settled(system, store, args.transfers):  # noqa: ASYNC110
                    await anyio.sleep(30)
            await anyio.sleep(block_time_s * 4)
            tasks.cancel_scope.cancel()
        for number, holders in read_acks(data_dir).items():
            create = _transfer_command(seed, number, "")
            checker.key_holders[(create.client_id, create.idempotency_key)] |= holders
        bank_and_offramp = (rails.bank, rails.offramp)
        await checker.check_end(rails.chain, rails.treasury, "USDC", data_dir, bank_and_offramp)
        statuses = await store.reader.fetchall(
            "SELECT status, count(*) FROM transactions GROUP BY status ORDER BY status"
        )
    return ChildReport(
        incarnation=args.incarnation,
        ok=checker.ok,
        invariants=checker.results,
        final_status={s: n for s, n in statuses},
        acked=len(read_acks(data_dir)),
        world_saves=world.saves,
    )


async def _workload(
    args: argparse.Namespace, system: System, world: WorldFile, checker: Checker, ids: SeededIds
) -> None:
    bank = world.world.rails.bank
    if not bank.statement:
        # About 40% over the average spend, so most transfers go through and a few do not.
        funding = args.transfers * 3_500_00 // len(CLIENTS)
        for client in CLIENTS:
            _, reference, booked = bank.book_deposit(client, funding)
            world.save()  # The bank booked it before anyone hears of it.
            await system.credit_deposit(deposit_command(booked, reference, client, funding))
    acked = read_acks(args.data_dir)
    rng = random.Random(f"{args.seed}:workload:{args.incarnation}")
    for number in range(args.transfers):
        if number in acked:
            continue
        await anyio.sleep(rng.expovariate(1 / 2.0))
        for _ in range(create_attempts_max):
            create = _transfer_command(args.seed, number, ids.new("tr"))
            result, holder = await system.create_transfer(create)
            if result is Result.ok:
                await checker.acknowledged(create.client_id, create.idempotency_key, holder)
                if holder is not None:
                    _ack(args.data_dir, number, holder)
                break
            if not result.transient:
                checker.fail("idempotency_key_one_transfer", f"order-{number}: {result.code}")
                break
            await anyio.sleep(5)
        else:
            checker.fail("acknowledged_durable", f"order-{number}: still {result.code}, gave up")


async def _approver(system: System, store: Store, data_dir: Path) -> None:
    """A second person approves each transfer that needs it, 20 minutes after it was created."""
    while True:
        await anyio.sleep(approver_poll_s)
        now = system.ctx.clock.now_us()
        for holders in read_acks(data_dir).values():
            for tid in holders:
                state = await store.transfer(tid)
                if (
                    state is not None
                    and state.status is Status.CREATED
                    and approval_state(state) == "pending"
                    and now - state.created_at >= approve_after_us
                ):
                    await system.registry.ask(tid, c.ApproveTransfer(by=APPROVER))


def child_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.crash")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--transfers", type=int, required=True)
    parser.add_argument("--incarnation", type=int, default=0)
    parser.add_argument("--failpoint", choices=sorted(FAILPOINTS))
    parser.add_argument("--failpoint-pass", type=int, default=1)
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    clock = VirtualClock()
    report = run_virtual(lambda: _incarnation(args, clock), clock)
    print(msgspec.json.encode(report).decode(), flush=True)
    return 0 if report.ok else 1


# --- the parent: kill, restart, check ---------------------------------------------------------


def drill(
    data_dir: Path,
    *,
    seed: int,
    transfers: int,
    kills: int = 0,
    failpoint: str | None = None,
    failpoint_pass: int = 1,
    kill_window_s: float = 1.5,
) -> DrillReport:
    """Run a drill world to the end through `kills` random SIGKILLs (and, first, one at
    `failpoint`), then check it from the outside."""
    rng = random.Random(f"{seed}:kills")
    problems: list[str] = []
    killed = 0
    incarnation = 0
    final: ChildReport | None = None
    while final is None:
        command = [
            sys.executable,
            "-m",
            "sim.crash",
            f"--data-dir={data_dir}",
            f"--seed={seed}",
            f"--transfers={transfers}",
            f"--incarnation={incarnation}",
        ]
        armed = failpoint is not None and incarnation == 0
        if armed:
            command += [f"--failpoint={failpoint}", f"--failpoint-pass={failpoint_pass}"]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        incarnation += 1
        try:
            if killed < kills and not armed:
                if rng.random() < early_kill_share:
                    # Somewhere in start-up: opening the store, loading the world, recovering.
                    time.sleep(rng.uniform(0, early_kill_window_s))
                else:
                    assert child.stdout is not None
                    child.stdout.readline()  # "ready": recovered and serving.
                    time.sleep(rng.uniform(0, kill_window_s))
                if child.poll() is None:
                    child.send_signal(signal.SIGKILL)
                    killed += 1
            out, err = child.communicate(timeout=incarnation_timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            problems.append(f"incarnation {incarnation - 1} did not finish in time")
            break
        if child.returncode == -signal.SIGKILL:
            if armed:
                if f"failpoint {failpoint}" not in err:
                    problems.append(f"incarnation 0 was killed before failpoint {failpoint}")
                killed += 1
            continue
        if armed:
            problems.append(f"failpoint {failpoint} was never reached (pass {failpoint_pass})")
        lines = out.strip().splitlines()
        try:
            final = msgspec.json.decode(lines[-1] if lines else "", type=ChildReport)
        except msgspec.DecodeError:
            problems.append(
                f"incarnation {incarnation - 1} exited {child.returncode}: {err[-800:]}"
            )
            break
    if final is not None:
        problems += [f"{k}: {v}" for k, v in final.invariants.items() if v != "ok"]
        problems += _outside_checks(data_dir, transfers)
    return DrillReport(
        seed=seed,
        transfers=transfers,
        failpoint=failpoint,
        kills=killed,
        incarnations=incarnation,
        acked=len(read_acks(data_dir)),
        final_status=final.final_status if final else {},
        invariants=final.invariants if final else {},
        problems=problems,
    )


def _outside_checks(data_dir: Path, transfers: int) -> list[str]:
    """What the client and an auditor can check with the process gone: the promises kept."""
    import sqlite3

    problems: list[str] = []
    acks = read_acks(data_dir)
    db = sqlite3.connect(f"file:{data_dir / 'stablerail.sqlite3'}?mode=ro", uri=True)
    try:
        rows = dict(db.execute("SELECT transaction_id, status FROM transactions").fetchall())
        keys = db.execute(
            "SELECT idempotency_key, count(*) FROM transactions GROUP BY client_id,"
            " idempotency_key HAVING count(*) > 1"
        ).fetchall()
    finally:
        db.close()
    if len(acks) != transfers:
        problems.append(f"{len(acks)} of {transfers} transfers acknowledged")
    for number, holders in sorted(acks.items()):
        if len(holders) != 1:
            problems.append(f"order-{number} acknowledged as {sorted(holders)}")
        missing = [h for h in holders if h not in rows]
        if missing:
            problems.append(f"order-{number}: acknowledged {missing} is not in the store")
    if len(rows) != transfers:
        problems.append(f"{len(rows)} transfers in the store for {transfers} orders")
    if keys:
        problems.append(f"idempotency keys held twice: {keys[:3]}")
    open_ = {t: s for t, s in rows.items() if s not in {x.value for x in TERMINAL}}
    if open_:
        problems.append(f"{len(open_)} transfers not terminal: {sorted(open_.items())[:3]}")
    report = asyncio.run(verify.verify(data_dir))
    problems += [f"verify {ch.name}: {ch.detail}" for ch in report.checks if not ch.ok]
    problems += [f"verify world: {p}" for p in asyncio.run(verify_world(data_dir)) or []]
    return problems


if __name__ == "__main__":
    sys.exit(child_main())
