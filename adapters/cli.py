"""The `stablerail` command line: the composition root for offline work on a data dir.

    stablerail migrate --data-dir DIR             create or upgrade a data dir
    stablerail verify  --data-dir DIR [--json]    recompute the hash chain, ledger and projections
                                                  (and the simulated world, when there is one)
    stablerail demo    --data-dir DIR [--fresh]   a first walk: fund a client, run four transfers
    stablerail simulate --seed N [--transfers N] [--clients N] [--faults none|default|swarm]
                                                  the engine against the simulated world
    stablerail soak --first N --count N [--jobs N] many seeds in parallel, each failure reproducible
    stablerail bench store [--json] ...           durable appends vs raw sqlite3, same run
    stablerail bench api [--json] ...             POST /v1/transfers over loopback vs echo
    stablerail bench growth [--sizes N,N,...]     lifecycles, start-up and memory as the store grows
    stablerail reconcile --data-dir DIR --statement FILE [--config FILE] [--bank NAME] [--json]
                                                  keep a bank statement (camt.052/053/054, MT940,
                                                  CSV) as evidence; judge its balances
    stablerail statements check FILE [--config FILE] [--json]
                                                  read a statement file and say what it holds
    stablerail reconcile --data-dir DIR --provider-report FILE [--provider NAME] [--json]
    stablerail bench reconcile [--json] ...       the matcher over 100k noisy rows vs a key join
    stablerail bench evm [--json] ...             payments to a real node (anvil) vs the sim rails
    stablerail keys create --data-dir DIR [--client ID] --role ROLE --user NAME [--json]
                                                  an API key, printed once (only its hash is kept)
    stablerail wallet new --keystore FILE [--passphrase-file F]
                                                  the treasury key, written encrypted (scrypt v3)
    stablerail wallet address --keystore FILE     the keystore's address (no passphrase needed)
    stablerail devnet fund (--keystore FILE | --address 0x...) [--rpc-url URL] [--usdc N]
                                                  a local anvil made ready: the test token deployed,
                                                  the address given gas money and USDC
    stablerail serve --data-dir DIR [--host H] [--port P] [--rails sim|sim-instant|evm]
                     [--sim-speed X] [--policy FILE] [--config FILE]  the HTTP API, until SIGTERM
    stablerail audit verify --data-dir DIR [--json]  recompute the audit chain and its anchors
    stablerail audit anchor --data-dir DIR        write the audit chain's head to the anchor file
    stablerail policy default                     print the shipped policy rule set (TOML)
    stablerail policy check FILE                  check a rule set document (exit 1: its problems)
    stablerail sanctions check PATH... [--published YYYY-MM-DD] [--json]
                                                  read OFAC's CSV files (or a directory of them)
                                                  as serve would: what they hold, or why not

Exit codes: 0 success; 1 verify found a problem; 2 the data dir or the arguments are unusable
(with a one-line reason on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import msgspec

from actors.drills import CANARIES
from adapters import evm_cli
from adapters.clock import SystemClock
from adapters.config import RAILS, ConfigError
from engine.access import Role
from sim.scripted import Step
from store.errors import StoreOpenError
from store.executor import ExecutorKind

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_UNUSABLE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stablerail", description="Enterprise stablecoin payments and treasury engine."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="create or upgrade a data dir")
    migrate.add_argument("--data-dir", type=Path, required=True)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--data-dir", type=Path, required=True)
    create.add_argument("--client", help="the client the key acts for; none: a staff key")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--user", required=True, help="the person the key belongs to")
    create.add_argument("--json", action="store_true", help="print one JSON object")

    evm_cli.add_commands(commands)

    serve = commands.add_parser("serve", help="run the HTTP API over a data dir")
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--cpu", type=int, help="run every thread on this core (Linux): measured faster under load"
    )
    serve.add_argument("--rails", choices=RAILS)
    serve.add_argument("--sim-speed", type=float)
    serve.add_argument(
        "--policy", dest="policy_file", help="a policy rule set (TOML or JSON) to bring into force"
    )
    serve.add_argument("--config", type=Path, help="a TOML file (see adapters/config.py)")

    audit = commands.add_parser("audit", help="the hash-chained audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_verify = audit_commands.add_parser(
        "verify", help="recompute the chain and check the anchors; stop at the first broken link"
    )
    audit_verify.add_argument("--data-dir", type=Path, required=True)
    audit_verify.add_argument("--json", action="store_true")
    audit_anchor = audit_commands.add_parser(
        "anchor", help="append the chain's head to the anchor file now"
    )
    audit_anchor.add_argument("--data-dir", type=Path, required=True)
    rules = commands.add_parser("policy", help="policy rule sets")
    rule_commands = rules.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    rule_commands.add_parser("default", help="print the shipped rule set (TOML)")
    check = rule_commands.add_parser("check", help="check a rule set document (TOML or JSON)")
    check.add_argument("file", type=Path)
    listed = commands.add_parser("sanctions", help="the sanctions list")
    list_commands = listed.add_subparsers(dest="sanctions_command", required=True, metavar="ACTION")
    list_check = list_commands.add_parser(
        "check",
        help="read OFAC's CSV files as serve would and say what they hold (exit 1: why not)",
    )
    list_check.add_argument("paths", type=Path, nargs="+", help="files, or directories of them")
    list_check.add_argument("--published", help="the list's publication date (YYYY-MM-DD)")
    list_check.add_argument("--json", action="store_true", help="print one JSON object")
    statement = commands.add_parser("statements", help="bank statement files")
    statement_commands = statement.add_subparsers(
        dest="statements_command", required=True, metavar="ACTION"
    )
    statement_check = statement_commands.add_parser(
        "check", help="read a statement file as reconcile would and say what it holds"
    )
    statement_check.add_argument("file", type=Path)
    statement_check.add_argument(
        "--config", type=Path, help="read only for the [[bank_accounts]] of this config file"
    )
    statement_check.add_argument("--json", action="store_true", help="print one JSON object")
    recon = commands.add_parser(
        "reconcile",
        help="feed a bank statement (camt.052/053/054, MT940 or CSV) or a provider's trade"
        " report (CSV)"
        " to reconciliation by hand",
    )
    recon.add_argument("--data-dir", type=Path, required=True)
    fed = recon.add_mutually_exclusive_group(required=True)
    fed.add_argument("--statement", type=Path, help="a bank statement file (camt, MT940, CSV)")
    fed.add_argument("--provider-report", type=Path, help="an off-ramp's trade report (.csv)")
    recon.add_argument(
        "--bank",
        default="bank-sim",
        help="the bank of a CSV statement (camt and MT940 files"
        " name their account, which [[bank_accounts]] in the config maps to its bank)",
    )
    recon.add_argument(
        "--config", type=Path, help="the config file whose [[bank_accounts]] are ours"
    )
    recon.add_argument(
        "--provider", default="bitso-sim", help="the off-ramp provider the report is from"
    )
    recon.add_argument("--json", action="store_true", help="print one JSON object")
    verify = commands.add_parser("verify", help="check a data dir end to end")
    verify.add_argument("--data-dir", type=Path, required=True)
    verify.add_argument("--json", action="store_true", help="print one JSON object")

    demo = commands.add_parser("demo", help="run a deterministic first walk into a data dir")
    demo.add_argument("--data-dir", type=Path, required=True)
    demo.add_argument("--fresh", action="store_true", help="delete the data dir first")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--json", action="store_true")

    simulate = commands.add_parser(
        "simulate", help="run the engine against the simulated world, seeded, in virtual time"
    )
    simulate.add_argument("--seed", type=int, required=True)
    simulate.add_argument("--transfers", type=_positive, default=100)
    simulate.add_argument("--clients", type=_positive, default=5)
    simulate.add_argument("--faults", choices=("none", "default", "swarm"), default="default")
    simulate.add_argument(
        "--plant",
        action="append",
        default=[],
        choices=sorted(CANARIES),
        metavar="CANARY",
        help="plant a known bug, to see the checks catch it: " + ", ".join(sorted(CANARIES)),
    )
    simulate.add_argument("--data-dir", type=Path, help="keep the run's data dir here")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")

    soak = commands.add_parser("soak", help="many seeds of the simulated world, in parallel")
    soak.add_argument("--first", type=int, default=0, help="the first seed")
    soak.add_argument("--count", type=_positive, default=1000, help="how many seeds")
    soak.add_argument("--transfers", type=_positive, default=100)
    soak.add_argument("--faults", choices=("none", "default", "swarm"), default="swarm")
    soak.add_argument("--jobs", type=_positive, default=2, help="processes")
    soak.add_argument("--json", action="store_true", help="print one JSON object")

    bench = commands.add_parser("bench", help="benchmarks (medians, against a same-run reference)")
    suites = bench.add_subparsers(dest="suite", required=True, metavar="SUITE")
    store = suites.add_parser("store", help="durable journal appends vs raw sqlite3 inserts")
    store.add_argument("--transfers", type=int, default=2000, help="lifecycles of 6 events each")
    store.add_argument("--concurrency", type=int, default=256)
    store.add_argument("--repeats", type=int, default=5)
    store.add_argument(
        "--executor", choices=[k.value for k in ExecutorKind], default=ExecutorKind.AIOSQLITE
    )
    store.add_argument("--json", action="store_true")
    lifecycle = suites.add_parser(
        "lifecycle", help="whole transfer lifecycles vs the eventsourcing library and raw sqlite3"
    )
    lifecycle.add_argument(
        "--transfers", type=_positive, default=1000, help="engine lifecycles per round"
    )
    lifecycle.add_argument(
        "--eventsourcing-transfers",
        type=_positive,
        default=100,
        help="eventsourcing lifecycles per round (it is slower; rates are per second)",
    )
    lifecycle.add_argument("--concurrency", type=_positive, default=256, help="clients")
    lifecycle.add_argument("--rounds", type=_positive, default=5)
    lifecycle.add_argument(
        "--passivated",
        type=int,
        default=100_000,
        help="transfers run through one engine before its resident memory is read (0: skip)",
    )
    growth = suites.add_parser(
        "growth", help="lifecycles, start-up and memory with 10k, 100k, 1M transfers stored"
    )
    growth.add_argument(
        "--sizes",
        type=_sizes,
        default=[0, 10_000, 100_000, 1_000_000],
        help="transfers stored before each measurement, ascending; the first is the reference",
    )
    growth.add_argument(
        "--transfers", type=_positive, default=1000, help="engine lifecycles per round"
    )
    growth.add_argument("--rounds", type=_positive, default=3)
    growth.add_argument("--concurrency", type=_positive, default=256, help="clients")
    growth.add_argument(
        "--data-dir", type=Path, help="where the growing store is kept (default: a temp dir)"
    )
    growth.add_argument("--json", action="store_true")
    evm = suites.add_parser(
        "evm", help="payments through the real chain adapter to anvil vs the simulated rails"
    )
    evm.add_argument("--payments", type=_positive, default=300, help="payments per round")
    evm.add_argument("--concurrency", type=_positive, default=8, help="payers")
    evm.add_argument("--rounds", type=_positive, default=5)
    evm.add_argument("--json", action="store_true")
    api = suites.add_parser(
        "api", help="POST /v1/transfers over loopback vs a bare aiohttp JSON echo handler"
    )
    api.add_argument("--concurrency", type=_positive, default=32, help="connections")
    api.add_argument("--clients", type=_positive, default=8, help="funded clients, one key each")
    api.add_argument("--rounds", type=_positive, default=5)
    api.add_argument("--seconds", type=float, default=3.0, help="measured seconds per round")
    api.add_argument(
        "--server-cpu", type=int, default=None, help="serve --cpu: keep the server on this core"
    )
    api.add_argument("--json", action="store_true")
    recon = suites.add_parser(
        "reconcile", help="three-way matching of noisy evidence vs a primary-key join"
    )
    recon.add_argument(
        "--transfers", type=_positive, default=50_000, help="transfers (2 ledger rows each)"
    )
    recon.add_argument("--noise", type=float, default=0.05, help="share of damaged transfers")
    recon.add_argument("--repeats", type=_positive, default=3)
    recon.add_argument("--seed", type=int, default=1)
    recon.add_argument("--json", action="store_true")
    lifecycle.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        match args.command:
            case "migrate":
                return _migrate(args)
            case "verify":
                return _verify(args)
            case "demo":
                return _demo(args)
            case "simulate":
                return _simulate(args)
            case "soak":
                return _soak(args)
            case "bench":
                return _bench(args)
            case "reconcile":
                return _reconcile(args)
            case "keys":
                return _keys_create(args)
            case "wallet" | "devnet":
                return evm_cli.run(args)
            case "serve":
                return _serve(args)
            case "policy":
                return _policy(args)
            case "sanctions":
                return _sanctions(args)
            case "statements":
                from adapters import statement_cli

                return statement_cli.check(args)
            case "audit":
                return _audit(args)
    except (StoreOpenError, ConfigError) as e:
        print(f"stablerail: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    raise AssertionError(args.command)


def _audit(args: argparse.Namespace) -> int:
    from store.verify import verify_audit

    if args.audit_command == "anchor":
        from adapters.main import anchor_now

        head = asyncio.run(anchor_now(args.data_dir))
        print(f"anchored row {head[0]} {head[1].hex()}" if head else "the audit log is empty")
        return EXIT_OK
    rows, problem = asyncio.run(verify_audit(args.data_dir))
    if args.json:
        print(
            msgspec.json.encode({"ok": problem is None, "rows": rows, "problem": problem}).decode()
        )
    elif problem is None:
        print(f"audit log: {rows} rows chained; every anchor agrees")
    else:
        print(f"audit log BROKEN: {problem}")
    return EXIT_OK if problem is None else EXIT_CHECK_FAILED


def _reconcile(args: argparse.Namespace) -> int:
    from adapters import statement_cli

    if args.provider_report is not None:
        return _provider_report(args)
    return statement_cli.reconcile(args)


def _provider_report(args: argparse.Namespace) -> int:
    from adapters.main import import_provider_report
    from engine import ledger, provider_reports

    if not ledger.is_name(args.provider):
        print(f"stablerail: --provider {args.provider!r} is not a provider name", file=sys.stderr)
        return EXIT_UNUSABLE
    parsed = read_rows(
        args.provider_report, lambda data: provider_reports.parse_csv(args.provider, data)
    )
    if isinstance(parsed, int):
        return parsed
    rows = [row for row in parsed if isinstance(row, provider_reports.ReportLine)]
    report = asyncio.run(import_provider_report(args.data_dir, rows))
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(
            f"{args.provider_report}: {report.rows} rows, {report.new} new"
            f" ({report.rows - report.new} already recorded as the provider reported them);"
            f" {report.differing} disagree with an earlier report of the same trade. The"
            " service's reconciler matches them and opens a case for each disagreement"
            " (GET /v1/ops/discrepancies)."
        )
    return EXIT_OK


def read_rows(path: Path, parse: Callable[[bytes], Sequence[object]]) -> Sequence[object] | int:
    """A fed file's rows, or (after saying why on stderr) the exit code: a file that cannot be
    read, or one with any problem (every problem is named; nothing is imported)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        print(f"stablerail: cannot read {path}: {e.strerror}", file=sys.stderr)
        return EXIT_UNUSABLE
    parsed = parse(data)
    if not parsed or isinstance(parsed[0], str):
        for problem in parsed:
            print(f"{path}: {problem}", file=sys.stderr)
        print("stablerail: nothing was imported", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return parsed


def _sanctions(args: argparse.Namespace) -> int:
    from adapters.sanctions_files import ListUnusable, SanctionsSource, load_list
    from engine.timefmt import rfc3339

    source = SanctionsSource(paths=tuple(args.paths), published=args.published)
    try:
        loaded = load_list(source)
    except ListUnusable as e:
        if args.json:
            print(msgspec.json.encode({"ok": False, "problem": str(e)}).decode())
        else:
            print(f"refused: {e}")
        return EXIT_CHECK_FAILED
    h = loaded.listed.holdings
    if args.json:
        found = msgspec.to_builtins(h)
        found.update(ok=True, sources=list(loaded.sources), file_date=rfc3339(loaded.file_date))
        print(msgspec.json.encode(found).decode())
        return EXIT_OK
    lists = ", ".join(f"{name} {n}" for name, n in h.lists.items())
    assets = ", ".join(f"{tag} {n}" for tag, n in h.address_assets.items()) or "none"
    print(f"sanctions list {h.digest[:16]} dated {rfc3339(loaded.file_date)}")
    for f in h.files:
        print(f"  {f.name:<18} {f.list:<4} {f.role.value:<9} {f.rows:>7} rows")
    print(f"  {h.entries} entries ({lists}); {h.names} names, {h.aliases} of them aliases")
    print(
        f"  {h.addresses} wallet addresses screened ({assets}); {h.other_addresses} of other"
        f" chains; {h.accounts} bank accounts; {h.postal_addresses} postal addresses"
    )
    print(f"  {h.wallet_program_entries} entries under cyber or North Korea programs")
    if h.orphan_rows:
        print(
            f"  WARNING: {h.orphan_rows} alias or comment rows name entries no list file holds"
            " (files of different publications?): screened all the same"
        )
    if h.truncated_addresses:
        print(f"  WARNING: {h.truncated_addresses} addresses cut short: add SDN_COMMENTS.CSV")
    return EXIT_OK


def _policy(args: argparse.Namespace) -> int:
    from engine import policy

    if args.policy_command == "default":
        sys.stdout.write(policy.DEFAULT_DOCUMENT.decode())
        return EXIT_OK
    try:
        document = args.file.read_bytes()
    except OSError as e:
        print(f"stablerail: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return EXIT_UNUSABLE
    parsed = policy.parse_document(document)
    compiled = parsed if isinstance(parsed, list) else policy.compile_rules(parsed, 1)
    if isinstance(compiled, list):
        for problem in compiled:
            print(f"{args.file}: {problem}")
        return EXIT_CHECK_FAILED
    print(
        f"{args.file}: {len(compiled.rules)} rules, {len(compiled.limits)} limits,"
        f" digest {compiled.digest}"
    )
    return EXIT_OK


def _keys_create(args: argparse.Namespace) -> int:
    from adapters.main import create_key

    try:
        key, text = asyncio.run(
            create_key(args.data_dir, client=args.client, role=Role(args.role), user=args.user)
        )
    except ValueError as e:
        print(f"stablerail: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.json:
        print(
            msgspec.json.encode(
                {
                    "id": key.key_id,
                    "key": text,
                    "client_id": key.client_id,
                    "role": key.role.value,
                    "user": key.user,
                }
            ).decode()
        )
    else:
        scope = f"client {key.client_id}" if key.client_id else "staff"
        print(f"{key.key_id} ({scope}, role {key.role.value}, user {key.user})")
        print(f"key: {text}")
        print("This is the only time the key is shown; only its hash is stored.")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from adapters import affinity, config, logs
    from adapters.main import serve

    settings = config.load(
        {
            "data_dir": args.data_dir,
            "host": args.host,
            "port": args.port,
            "cpu": args.cpu,
            "rails": args.rails,
            "sim_speed": args.sim_speed,
            "policy_file": args.policy_file,
        },
        args.config,
    )
    if settings.cpu is not None:
        affinity.keep_on(settings.cpu)
    logs.configure(settings.log_level)
    try:
        # uvloop: the same asyncio API on libuv, measurably faster under load (README, issue 19).
        anyio.run(serve, settings, backend_options={"use_uvloop": True})
    except BaseExceptionGroup as group:
        # A refusal at start-up arrives through the task groups: report it as itself.
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if isinstance(inner, (ConfigError, StoreOpenError)):
            raise inner from None
        raise
    return EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    from store.store import migrate_data_dir

    before, after = asyncio.run(migrate_data_dir(args.data_dir, SystemClock()))
    if before == after:
        print(f"{args.data_dir}: schema version {after}, up to date")
    else:
        print(f"{args.data_dir}: schema version {before} -> {after}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from sim.durable import WORLD_FILE, verify_world
    from store.verify import verify

    report = asyncio.run(verify(args.data_dir))
    # A data dir the simulated rails ran in also holds their world: check it against the ledger
    # (one that paid on a real chain has no simulated chain to hold the books against).
    world: list[str] | None = None
    if (args.data_dir / WORLD_FILE).exists():
        world = asyncio.run(verify_world(args.data_dir))
    ok = report.ok and not world
    if args.json:
        found = msgspec.to_builtins(report)
        found.update(ok=ok, world=None if world is None else {"ok": not world, "problems": world})
        print(msgspec.json.encode(found).decode())
    else:
        print(f"verify {report.data_dir} (schema {report.schema_version})")
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            print(f"  {mark} {check.name:<12} {check.detail}")
        if world is not None:
            detail = "; ".join(world) if world else "the simulated chain agrees with the ledger"
            print(f"  {'FAIL' if world else 'ok  '} {'world':<12} {detail}")
        elif (args.data_dir / WORLD_FILE).exists():
            print(f"  n/a  {'world':<12} payments go to a real chain (--rails evm): the running"
                  " reconciler holds the books against its node")  # fmt: skip
        print(f"  journal head: seq {report.head_seq} {report.head_hash}")
        print("verified: every check holds" if ok else "verification FAILED")
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def _progress(command: str, done: int, total: int, what: str) -> None:
    """A bar on a terminal; otherwise a plain line every 5%."""
    if sys.stderr.isatty():
        filled = 40 * min(done, total) // total
        bar = "#" * filled + "." * (40 - filled)
        print(f"\r[{bar}] {done}/{total} {what}", end="", file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 20) == 0:
        print(f"{command}: {done}/{total} {what}", file=sys.stderr)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _simulate(args: argparse.Namespace) -> int:
    from sim.world import SimConfig, simulate

    config = SimConfig(
        seed=args.seed,
        transfers=args.transfers,
        clients=args.clients,
        faults=args.faults,
        canaries=tuple(args.plant),
    )

    def progress(ended: int) -> None:
        _progress("simulate", ended, args.transfers, "transfers ended")

    report = simulate(config, args.data_dir, progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(
            f"simulate seed {report.seed}: {report.transfers} transfers, {report.clients} clients,"
            f" faults {report.faults}; {report.virtual_s:.0f} s of virtual time"
        )
        statuses = ", ".join(f"{s} {n}" for s, n in report.final_status.items())
        print(f"  final status: {statuses}")
        if report.failure_codes:
            print("  failures: " + ", ".join(f"{c} {n}" for c, n in report.failure_codes.items()))
        print("  time in state (s)    p50      p90      p99")
        for status, q in report.time_in_state_s.items():
            print(f"    {status:<16} {q['p50']:>8.1f} {q['p90']:>8.1f} {q['p99']:>8.1f}")
        fired = ", ".join(f"{k} {n}" for k, n in report.faults_fired.items()) or "none"
        print(f"  faults fired: {fired}")
        print(f"  alerts {report.alerts}, actor crashes {report.crashes}, reorgs {report.reorgs}")
        cases = ", ".join(
            f"{kind} {n['opened']} opened/{n['resolved']} closed"
            for kind, n in report.discrepancies.items()
        )
        print(f"  reconciled {report.reconciled}; discrepancies: {cases or 'none'}")
        for name, verdict in report.invariants.items():
            print(f"  {'ok  ' if verdict == 'ok' else 'FAIL'} {name:<32} {verdict}")
        print(f"  digest {report.digest} ({report.journal_rows} journal rows)")
    if not report.ok:
        print(
            f"stablerail: seed {report.seed} broke an invariant; reproduce: {report.reproduce}",
            file=sys.stderr,
        )
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _soak(args: argparse.Namespace) -> int:
    from sim.soak import soak

    def progress(done: int, failed: int) -> None:
        _progress("soak", done, args.count, f"seeds, {failed} failed")
        if done == args.count and sys.stderr.isatty():
            print(file=sys.stderr)

    report = soak(
        args.first,
        args.count,
        transfers=args.transfers,
        faults=args.faults,
        jobs=args.jobs,
        progress=None if args.json else progress,
    )
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        last = args.first + args.count - 1
        print(
            f"soak seeds {args.first}..{last}: {report.transfers_run} transfers,"
            f" faults {args.faults}: {len(report.failures)} seeds failed"
        )
        for failure in report.failures:
            print(f"  seed {failure.seed}: {failure.failed}")
            print(f"    reproduce: {failure.reproduce}")
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _demo(args: argparse.Namespace) -> int:
    from sim.demo import run_demo

    result = asyncio.run(run_demo(args.data_dir, seed=args.seed, fresh=args.fresh))
    if args.json:
        print(msgspec.json.encode(result).decode())
        return EXIT_OK
    print(f"demo data dir: {result.data_dir} ({result.journal_rows} journal rows)")
    for t in result.transfers:
        print(f"  {t.transfer_id}  {t.label:<32} {t.status:<11} {_path(t.steps)}")
    for currency, b in result.balances.items():
        print(f"  balance {currency}: available {b['available']}, held {b['held']}")
    print(f"next: stablerail verify --data-dir {result.data_dir}")
    return EXIT_OK


def _path(steps: Sequence[Step]) -> str:
    """CREATED -> QUOTED -> ...; a step that keeps the status shows its command, a refused one
    its result."""
    shown: list[str] = []
    status = None
    for step in steps:
        if step.result.name != "ok":
            shown.append(f"[{step.command}: {step.result.name}]")
        elif step.status == status:
            shown.append(f"({step.command})")
        elif step.status:
            shown.append(step.status)
        status = step.status
    return " -> ".join(shown)


def _bench(args: argparse.Namespace) -> int:
    if args.suite == "lifecycle":
        return _bench_lifecycle(args)
    if args.suite == "growth":
        return _bench_growth(args)
    if args.suite == "api":
        return _bench_api(args)
    if args.suite == "reconcile":
        return _bench_reconcile(args)
    if args.suite == "evm":
        return _bench_evm(args)
    from sim.bench import bench_store

    report = asyncio.run(
        bench_store(
            transfers=args.transfers,
            concurrency=args.concurrency,
            repeats=args.repeats,
            executor=ExecutorKind(args.executor),
        )
    )
    if args.json:
        print(msgspec.json.encode(report).decode())
        return EXIT_OK
    print(
        f"bench store: {report.appends} appends, {report.concurrency} concurrent appenders,"
        f" {report.repeats} runs each, executor {report.executor}"
    )
    print(
        f"  store        {report.store_rows_per_s:>9.0f} appends/s, median, mean batch"
        f" {report.mean_batch}"
    )
    print(
        f"  raw          {report.raw_rows_per_s:>9.0f} rows/s, median, journal-shaped rows in"
        f" batches of {report.concurrency}"
    )
    print(
        f"  same writes  {report.same_writes_rows_per_s:>9.0f} appends/s, median, the store's own"
        f" statements replayed ({report.rows_per_append} rows per append)"
    )
    print(f"  ratio {report.ratio:.3f} vs raw, {report.ratio_same_writes:.3f} vs same writes")
    return EXIT_OK


def _bench_evm(args: argparse.Namespace) -> int:
    from adapters.bench_evm import bench_evm

    r = bench_evm(args.payments, args.concurrency, args.rounds)
    if args.json:
        print(msgspec.json.encode(r).decode())
        return EXIT_OK
    print(
        f"bench evm: {r.payments} payments per round, {r.concurrency} payers, {r.rounds} rounds"
        " (fees, estimate and sign, broadcast, receipt)"
    )
    print(
        f"  evm  {r.evm_payments_per_s:>8.1f} payments/s, median, to anvil (automine) over"
        f" JSON-RPC; {r.rpc_calls_per_payment} calls each; CPU {r.evm_cpu_us_per_payment:.0f} us"
        f" here + {r.evm_node_cpu_us_per_payment:.0f} us in the node per payment"
    )
    print(
        f"  sim  {r.sim_payments_per_s:>8.1f} payments/s, median, the simulated node and custody"
        f" in process; CPU {r.sim_cpu_us_per_payment:.0f} us per payment"
    )
    print(
        f"  ratio evm/sim {r.evm_vs_sim:.3f}; eth-account signing alone {r.signing_cpu_us:.0f} us"
    )
    return EXIT_OK


def _bench_api(args: argparse.Namespace) -> int:
    from adapters import affinity
    from adapters.bench_api import bench_api

    if args.server_cpu is not None and (refused := affinity.refusal(args.server_cpu)):
        print(f"stablerail: --server-cpu: {refused}", file=sys.stderr)
        return EXIT_UNUSABLE
    r = bench_api(
        concurrency=args.concurrency,
        clients=args.clients,
        rounds=args.rounds,
        round_s=args.seconds,
        server_cpu=args.server_cpu,
        progress=not args.json,
    )
    if args.json:
        print(msgspec.json.encode(r).decode())
    else:
        print(
            f"bench api: POST /v1/transfers, {r.concurrency} connections, {r.clients} clients,"
            f" {r.rounds} rounds of {r.round_s:g} s each, medians"
            + ("" if r.server_cpu is None else f"; the server kept on core {r.server_cpu}")
        )
        print(
            f"  api    {r.creates_per_s:>8.0f} creates/s  p50 {r.p50_ms:6.1f} ms"
            f"  p99 {r.p99_ms:6.1f} ms  (durable, 201)"
        )
        print(
            f"  echo   {r.echo_per_s:>8.0f} req/s     p50 {r.echo_p50_ms:6.1f} ms"
            f"  p99 {r.echo_p99_ms:6.1f} ms  (bare aiohttp JSON echo)"
        )
        print(f"  ratio  {r.vs_echo:.3f} of echo")
        if None not in (
            r.server_cores,
            r.server_loop_cores,
            r.cpu_ms_per_create,
            r.echo_cpu_ms_per_request,
        ):
            print(
                f"  cpu    server {r.server_cores:.2f} of {r.machine_cores} cores (its event loop's"
                f" thread {r.server_loop_cores:.2f}), load {r.load_cores:.2f};"
                f" {r.cpu_ms_per_create:.2f} ms per create vs {r.echo_cpu_ms_per_request:.3f} ms"
                " per echo"
            )
        print(
            f"  {r.created} transfers answered 201, {r.journaled} in the journal,"
            f" {r.reconciled_at_stop} RECONCILED when the server stopped (exit {r.server_exit});"
            f" other answers {r.errors or 'none'}"
        )
    ok = r.server_exit == 0 and r.created == r.journaled and not r.errors
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def _bench_reconcile(args: argparse.Namespace) -> int:
    from sim.bench_reconcile import bench_reconcile

    if not 0 <= args.noise <= 1:
        print("--noise is a share between 0 and 1", file=sys.stderr)
        return EXIT_UNUSABLE
    r = bench_reconcile(args.transfers, args.noise, args.repeats, args.seed)
    if args.json:
        print(msgspec.json.encode(r).decode())
    else:
        print(
            f"bench reconcile: {r.expected_rows} ledger expectations vs {r.evidence_rows} reports,"
            f" {r.noise:.0%} of transfers damaged, median of {r.repeats}"
        )
        print(f"  matcher    {r.rows_per_s:>9.0f} rows/s  ({r.seconds:.2f} s for every row)")
        print(f"  reference  {r.reference_rows_per_s:>9.0f} rows/s  (one primary-key dict join)")
        print(f"  ratio {r.ratio:.3f} of the reference; peak memory {r.peak_memory_mb} MB")
        print(f"  found {r.findings}; every injected difference found: {r.injected_found}")
    return EXIT_OK if r.injected_found else EXIT_CHECK_FAILED


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not sizes or sizes != sorted(sizes) or sizes[0] < 0 or len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError("sizes ascend, each at least 0: e.g. 0,10000,100000")
    return sizes


def _needs_bench_extra(suite: str, error: ModuleNotFoundError) -> int:
    print(
        f"bench {suite} needs the bench extra (pip install -e '.[bench]'): {error}", file=sys.stderr
    )
    return EXIT_UNUSABLE


def _bench_growth(args: argparse.Namespace) -> int:
    try:
        from sim.bench_growth import bench_growth
    except ModuleNotFoundError as e:
        return _needs_bench_extra("growth", e)
    report = bench_growth(
        sizes=args.sizes,
        transfers=args.transfers,
        rounds=args.rounds,
        concurrency=args.concurrency,
        data_dir=args.data_dir,
        progress=not args.json,
    )
    if args.json:
        print(msgspec.json.encode(report).decode())
        return EXIT_OK
    print(
        f"bench growth: {report.transfers} lifecycles per round, {report.rounds} rounds,"
        f" {report.concurrency} clients, on a store already holding N reconciled transfers"
    )
    print("        stored  lifecycles/s  vs first  start s  RSS MB  database MB  filled/s")
    for size in report.sizes:
        print(
            f"  {size.stored:>12,}  {size.lifecycles_per_s:>12.0f}  {size.vs_reference:>8.2f}"
            f"  {size.start_s:>7.2f}  {size.rss_mb:>6.0f}  {size.database_mb:>11.0f}"
            f"  {size.fill_per_s:>8.0f}"
        )
    return EXIT_OK


def _bench_lifecycle(args: argparse.Namespace) -> int:
    try:
        from sim.bench_lifecycle import bench_lifecycle
    except ModuleNotFoundError as e:
        return _needs_bench_extra("lifecycle", e)
    report = asyncio.run(
        bench_lifecycle(
            transfers=args.transfers,
            eventsourcing_transfers=args.eventsourcing_transfers,
            concurrency=args.concurrency,
            rounds=args.rounds,
            passivated=max(0, args.passivated),
        )
    )
    if args.json:
        print(msgspec.json.encode(report).decode())
        return EXIT_OK
    r = report
    print(
        f"bench lifecycle: USD->USDC wallet transfers, create to RECONCILED, {r.rounds} rounds,"
        f" {r.concurrency} clients ({r.events_per_lifecycle} journal rows per lifecycle)"
    )
    print(
        f"  engine         {r.engine_lifecycles_per_s:>9.0f} lifecycles/s, median of"
        f" {r.transfers} per round, custody without signatures (sim.instant)"
    )
    print(
        f"  engine signed  {r.engine_signed_lifecycles_per_s:>9.0f} lifecycles/s, eth-account"
        " signing and node-side recovery in this process"
    )
    print(
        f"  eventsourcing  {r.eventsourcing_lifecycles_per_s:>9.0f} lifecycles/s,"
        f" {r.eventsourcing_transfers} per round, same eight events and payloads, SQLite"
    )
    print(
        f"  raw sqlite3    {r.raw_lifecycles_per_s:>9.0f} lifecycles/s, the engine's journal"
        f" and ledger rows ({r.raw_rows_per_lifecycle} per lifecycle) in batches"
    )
    print(f"  ratio {r.vs_eventsourcing:.2f}x eventsourcing, {r.vs_raw:.3f} of raw")
    if r.memory is not None:
        m = r.memory
        print(
            f"  memory: {m.rss_mb} MB resident after {m.passivated} transfers, all passivated"
            f" ({m.live_actors} live actors); {m.rss_mb_after_first_chunk} MB after the first"
            f" {min(m.passivated, 2000)}, {m.rss_mb_at_half} MB at half way,"
            f" {m.growth_bytes_per_transfer:.0f} B per transfer over the second half;"
            f" database {m.database_mb} MB"
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
