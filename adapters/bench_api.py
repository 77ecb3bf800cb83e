"""`stablerail bench api`: durable transfer creations per second through the HTTP API, against a
bare aiohttp JSON echo handler measured in the same run.

    server   `stablerail serve --rails sim-instant` on loopback, a subprocess: the production
             store (aiosqlite, WAL, synchronous=FULL), actors and supervisors, with the simulated
             world answering at once and its custody signing with a digest (sim.instant). The
             lifecycles the creations start keep running, and competing, during the rounds.
             `server_cpu` keeps it on one core (`serve --cpu`).
    echo     a bare aiohttp application in another subprocess whose one handler decodes the JSON
             body and answers it back with 201: the ceiling for this HTTP stack on this machine.
    load     a third process per round: `concurrency` connections, each posting
             `POST /v1/transfers` (a unique Idempotency-Key every time, keys spread over a pool
             of funded clients) back to back for `warmup_s + round_s`; only answers to requests
             started after the warm-up count. The same requests go to the echo handler.

The machine's CPU speed jumps between two levels every few seconds, so api and echo rounds
interleave (their order alternating) and the report gives medians of the rounds. After the last
round the server stops (SIGTERM, which must exit 0) and the journal is read back: every 201 the
load processes counted must be a transfer there.

Where the kernel shows it (Linux's /proc), each round also reports the CPU time the server spent in
the measured window, read by the load process at its start and end: all its threads, and the
event loop's own thread (the process's first). It tells how much of the machine the server can
use (one interpreter lock runs Python on one thread at a time), and per create, the CPU a create
costs with the part of the lifecycles that ran meanwhile, against the echo's CPU per request.

    python -m adapters.bench_api echo --port P
    python -m adapters.bench_api load --url U --keys FILE --concurrency C --warmup S --seconds S
        [--watch-pid PID]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

from adapters import proc
from engine.access import Role

TRANSFER = {
    "source_currency": "USD",
    "target_currency": "USDC",
    "amount": "1.00",
    "destination": {
        "kind": "wallet",
        "chain": "ethereum",
        "address": "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1",
    },
}
FUNDING = "100000000.00"  # per client: far more than any run spends
SIM_SPEED = 400  # 5 ms blocks; the supervisors look for work every 2.5 ms
READY_WAIT_S = 60


class Round(msgspec.Struct, frozen=True, kw_only=True):
    """One load process's answers in its measured window."""

    target: str
    ok: int  # started and answered 201 in the measured window
    ok_total: int  # including the warm-up: these are durable too
    answered: int = 0  # answered 201 in the measured window, whenever started
    errors: dict[str, int]
    seconds: float
    p50_ms: float
    p99_ms: float
    # The watched server's CPU seconds in the measured window, all threads and its event loop's
    # thread; the load process's own. None where the kernel does not show them (no /proc).
    server_cpu_s: float | None = None
    server_loop_cpu_s: float | None = None
    load_cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds

    @property
    def server_cores(self) -> float | None:
        return None if self.server_cpu_s is None else self.server_cpu_s / self.seconds

    @property
    def server_loop_cores(self) -> float | None:
        return None if self.server_loop_cpu_s is None else self.server_loop_cpu_s / self.seconds

    @property
    def cpu_ms_per_answer(self) -> float | None:
        if self.server_cpu_s is None or not self.answered:
            return None
        return self.server_cpu_s * 1000 / self.answered


class ApiReport(msgspec.Struct, frozen=True, kw_only=True):
    creates_per_s: float
    p50_ms: float
    p99_ms: float
    echo_per_s: float
    echo_p50_ms: float
    echo_p99_ms: float
    vs_echo: float
    rounds: int
    round_s: float
    # The core the server was kept on (`serve --cpu`), or None: any.
    server_cpu: int | None
    concurrency: int
    clients: int
    created: int
    journaled: int
    reconciled_at_stop: int
    errors: dict[str, int]
    server_exit: int
    api_rounds: list[float]
    echo_rounds: list[float]
    # CPU (medians of the rounds; None without /proc): the cores the server used, and its event
    # loop's thread of them; the server's CPU per create and the echo's per request; the cores
    # the load process used in the api rounds; the machine's cores.
    server_cores: float | None
    server_loop_cores: float | None
    cpu_ms_per_create: float | None
    echo_cpu_ms_per_request: float | None
    load_cores: float
    machine_cores: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> tuple[float, float] | None:
    """CPU seconds of process `pid`, all its threads and its first thread; None where the kernel
    does not show them."""
    try:
        return proc.cpu_s(pid), proc.cpu_s(pid, thread=pid)
    except OSError:
        return None


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def _load(
    url: str,
    keys: list[str],
    concurrency: int,
    warmup_s: float,
    seconds: float,
    tag: str,
    watch_pid: int | None = None,
) -> Round:
    body = msgspec.json.encode(TRANSFER)
    counter = itertools.count()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    ok_total = answered = 0
    start = time.perf_counter()
    measure_from = start + warmup_s
    end = measure_from + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    # (server CPU, its loop thread's, the load's own) at the window's start and end.
    samples: list[tuple[tuple[float, float] | None, float]] = []

    async def sample_cpu() -> None:
        for at in (measure_from, end):
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            server = None if watch_pid is None else _cpu_s(watch_pid)
            samples.append((server, time.process_time()))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok_total, answered
        while (began := time.perf_counter()) < end:
            n = next(counter)
            headers = {
                "Authorization": f"Bearer {keys[n % len(keys)]}",
                "Idempotency-Key": f"{tag}-{n}",
                "Content-Type": "application/json",
            }
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError as e:
                status = 0
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            done = time.perf_counter()
            if status == 201:
                ok_total += 1
                answered += measure_from <= done <= end
                if began >= measure_from and done <= end:
                    latencies.append((done - began) * 1000)
            elif status:
                errors[str(status)] = errors.get(str(status), 0) + 1

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(sample_cpu(), *(worker(session) for _ in range(concurrency)))
    latencies.sort()
    (server_from, load_from), (server_to, load_to) = samples
    server_cpu_s = loop_cpu_s = None
    if server_from is not None and server_to is not None:
        server_cpu_s = round(server_to[0] - server_from[0], 3)
        loop_cpu_s = round(server_to[1] - server_from[1], 3)
    return Round(
        target=url,
        ok=len(latencies),
        ok_total=ok_total,
        answered=answered,
        errors=errors,
        seconds=seconds,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        server_cpu_s=server_cpu_s,
        server_loop_cpu_s=loop_cpu_s,
        load_cpu_s=round(load_to - load_from, 3),
    )


async def _echo_handler(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(body, status=201)


def _echo_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/transfers", _echo_handler)
    app.router.add_get("/healthz", _ok)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@contextlib.contextmanager
def _process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_WAIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited {process.returncode}:\n{log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(_host_port(url), timeout=1) as s,
        ):
            s.sendall(b"GET /" + url.split("/", 3)[3].encode() + b" HTTP/1.0\r\n\r\n")
            if b" 200 " in s.recv(64):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready after {READY_WAIT_S} s")


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("/")[2].split(":")
    return host, int(port)


async def _fund(base: str, operator: str, clients: list[str], keys: list[str]) -> None:
    """A deposit per client, then wait until each balance shows it."""
    async with aiohttp.ClientSession() as session:
        for client in clients:
            deposit = {"client_id": client, "currency": "USD", "amount": FUNDING}
            headers = {"Authorization": f"Bearer {operator}"}
            async with session.post(f"{base}/v1/sim/deposits", json=deposit, headers=headers) as r:
                if r.status != 202:
                    raise RuntimeError(f"funding {client}: {r.status} {await r.text()}")
        deadline = time.monotonic() + READY_WAIT_S
        for client, key in zip(clients, keys, strict=True):
            headers = {"Authorization": f"Bearer {key}"}
            while True:
                async with session.get(f"{base}/v1/balances", headers=headers) as r:
                    balances = (await r.json())["data"]
                if any(b["currency"] == "USD" and b["available"] == FUNDING for b in balances):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{client}'s deposit never showed: {balances}")
                await asyncio.sleep(0.05)


def _run_load(url: str, keys_file: Path, concurrency: int, warmup_s: float, seconds: float,
              tag: str, watch_pid: int) -> Round:  # fmt: skip
    argv = [sys.executable, "-m", "adapters.bench_api", "load", "--url", url, "--keys",
            str(keys_file), "--concurrency", str(concurrency), "--warmup", str(warmup_s),
            "--seconds", str(seconds), "--tag", tag, "--watch-pid", str(watch_pid)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, check=True, timeout=warmup_s + seconds + 120)
    return msgspec.json.decode(done.stdout, type=Round)


def bench_api(
    *,
    concurrency: int = 32,
    clients: int = 8,
    rounds: int = 5,
    round_s: float = 3.0,
    warmup_s: float = 0.5,
    server_cpu: int | None = None,
    progress: bool = False,
) -> ApiReport:
    from adapters.main import create_key, migrate, transfer_counts

    with tempfile.TemporaryDirectory(prefix="stablerail-bench-api-") as tmp:
        root = Path(tmp)
        data = root / "data"
        asyncio.run(migrate(data))
        operator = asyncio.run(create_key(data, client=None, role=Role.OPERATOR, user="bench"))[1]
        names = [f"bench{i}" for i in range(clients)]
        keys = [
            asyncio.run(create_key(data, client=name, role=Role.INITIATOR, user="bench"))[1]
            for name in names
        ]
        keys_file = root / "keys.json"
        keys_file.write_text(json.dumps(keys))
        api_port, echo_port = _free_port(), _free_port()
        api = f"http://127.0.0.1:{api_port}"
        echo = f"http://127.0.0.1:{echo_port}"
        env = {**os.environ, "STABLERAIL_LOG_LEVEL": "INFO"}
        serve = [sys.executable, "-m", "adapters.cli", "serve", "--data-dir", str(data),
                 "--host", "127.0.0.1", "--port", str(api_port), "--rails", "sim-instant",
                 "--sim-speed", str(SIM_SPEED)]  # fmt: skip
        if server_cpu is not None:
            serve += ["--cpu", str(server_cpu)]
        echo_argv = [sys.executable, "-m", "adapters.bench_api", "echo", "--port", str(echo_port)]
        api_rounds: list[Round] = []
        echo_rounds: list[Round] = []
        with (
            _process(serve, root / "serve.log", env) as server,
            _process(echo_argv, root / "echo.log") as echoer,
        ):
            _wait_ready(f"{api}/readyz", server, root / "serve.log")
            _wait_ready(f"{echo}/healthz", echoer, root / "echo.log")
            asyncio.run(_fund(api, operator, names, keys))
            for n in range(rounds):
                order = [("api", api, server.pid), ("echo", echo, echoer.pid)]
                for target, base, pid in order if n % 2 == 0 else reversed(order):
                    result = _run_load(f"{base}/v1/transfers", keys_file, concurrency, warmup_s,
                                       round_s, f"r{n}-{target}", pid)  # fmt: skip
                    (api_rounds if target == "api" else echo_rounds).append(result)
                    if progress:
                        print(f"  round {n + 1} {target:4}: {result.per_s:8.0f}/s"
                              f"  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms"
                              f"{_cpu_text(result)}  errors {result.errors}",
                              file=sys.stderr)  # fmt: skip
            server.send_signal(signal.SIGTERM)
            try:
                server_exit = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server_exit = -1
        journaled, reconciled = asyncio.run(transfer_counts(data))
    errors: dict[str, int] = {}
    for r in api_rounds:
        for code, count in r.errors.items():
            errors[code] = errors.get(code, 0) + count
    creates = statistics.median(r.per_s for r in api_rounds)
    echo_rate = statistics.median(r.per_s for r in echo_rounds)
    loads = [r.load_cpu_s / r.seconds for r in api_rounds]
    return ApiReport(
        creates_per_s=round(creates, 1),
        p50_ms=round(statistics.median(r.p50_ms for r in api_rounds), 2),
        p99_ms=round(statistics.median(r.p99_ms for r in api_rounds), 2),
        echo_per_s=round(echo_rate, 1),
        echo_p50_ms=round(statistics.median(r.p50_ms for r in echo_rounds), 2),
        echo_p99_ms=round(statistics.median(r.p99_ms for r in echo_rounds), 2),
        vs_echo=round(creates / echo_rate, 3),
        rounds=rounds,
        round_s=round_s,
        server_cpu=server_cpu,
        concurrency=concurrency,
        clients=clients,
        created=sum(r.ok_total for r in api_rounds),
        journaled=journaled,
        reconciled_at_stop=reconciled,
        errors=errors,
        server_exit=server_exit,
        api_rounds=[round(r.per_s, 1) for r in api_rounds],
        echo_rounds=[round(r.per_s, 1) for r in echo_rounds],
        server_cores=_median(r.server_cores for r in api_rounds),
        server_loop_cores=_median(r.server_loop_cores for r in api_rounds),
        cpu_ms_per_create=_median(r.cpu_ms_per_answer for r in api_rounds),
        echo_cpu_ms_per_request=_median(r.cpu_ms_per_answer for r in echo_rounds),
        load_cores=round(statistics.median(loads), 3),
        machine_cores=os.cpu_count() or 1,
    )


def _median(values: Iterable[float | None]) -> float | None:
    """The median, rounded; None if any round has no figure (no /proc)."""
    found = list(values)
    if not found or any(v is None for v in found):
        return None
    return round(statistics.median(v for v in found if v is not None), 3)


def _cpu_text(r: Round) -> str:
    if r.server_cores is None or r.cpu_ms_per_answer is None:
        return ""
    return f"  server {r.server_cores:.2f} cores, {r.cpu_ms_per_answer:.2f} ms CPU per answer"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.bench_api")
    sub = parser.add_subparsers(dest="part", required=True)
    echo = sub.add_parser("echo")
    echo.add_argument("--port", type=int, required=True)
    load = sub.add_parser("load")
    load.add_argument("--url", required=True)
    load.add_argument("--keys", type=Path, required=True)
    load.add_argument("--concurrency", type=int, required=True)
    load.add_argument("--warmup", type=float, required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--tag", required=True)
    load.add_argument("--watch-pid", type=int, default=None)
    args = parser.parse_args(argv)
    if args.part == "echo":
        web.run_app(_echo_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
        return 0
    keys = json.loads(args.keys.read_text())
    result = asyncio.run(
        _load(args.url, keys, args.concurrency, args.warmup, args.seconds, args.tag, args.watch_pid)
    )
    sys.stdout.buffer.write(msgspec.json.encode(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
