"""`stablerail serve` as an operator runs it: a subprocess on 127.0.0.1 with keys made by
`stablerail keys create`. SIGTERM stops it cleanly (exit 0). SIGKILL in the middle of traffic and a
restart lose nothing: every transfer ever answered 201 is still there, and every one of them
finishes."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters import affinity

TERMINAL = {"RECONCILED", "FAILED", "CANCELLED", "EXPIRED"}
WALLET = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
ONE_DOLLAR = {
    "source_currency": "USD",
    "target_currency": "USDC",
    "amount": "1.00",
    "destination": {"kind": "wallet", "chain": "ethereum", "address": WALLET},
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    port: int, method: str, path: str, key: str | None = None, body: Any = None, **headers: str
) -> tuple[int, Any]:
    sent = {"Content-Type": "application/json"}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=sent
        )
        r = conn.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None
    finally:
        conn.close()


class Serve:
    def __init__(
        self,
        data_dir: Path,
        port: int,
        args: tuple[str, ...] = ("--sim-speed", "50"),
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.args = args
        self.env = env
        self.log = data_dir.parent / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "adapters.cli",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if request(self.port, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not ready: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def keys(data_dir: Path) -> tuple[str, str]:
    made = []
    for args in (
        ("--client", "acme", "--role", "initiator", "--user", "alice"),
        ("--role", "operator", "--user", "oscar"),
    ):
        out = cli("keys", "create", "--data-dir", str(data_dir), *args, "--json")
        assert out.returncode == 0, out.stderr
        found = json.loads(out.stdout)
        assert found["key"].startswith("sk_test_") and found["id"].startswith("ak_")
        made.append(found["key"])
    stored = cli("verify", "--data-dir", str(data_dir))
    assert made[0] not in stored.stdout
    return made[0], made[1]


def test_keys_create_refuses_a_client_on_a_staff_role_and_the_reverse(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli("migrate", "--data-dir", str(data_dir)).returncode == 0
    staff = cli(
        "keys",
        "create",
        "--data-dir",
        str(data_dir),
        "--client",
        "acme",
        "--role",
        "operator",
        "--user",
        "o",
    )
    assert staff.returncode == 2 and "takes no client" in staff.stderr
    client = cli("keys", "create", "--data-dir", str(data_dir), "--role", "viewer", "--user", "v")
    assert client.returncode == 2 and "a client is required" in client.stderr
    missing = cli(
        "keys", "create", "--data-dir", str(tmp_path / "nope"), "--role", "operator", "--user", "o"
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


@pytest.mark.skipif(affinity.usable_cpus() is None, reason="keeping to one core is Linux's")
def test_a_server_kept_on_one_core_runs_every_thread_there(tmp_path: Path) -> None:
    """`serve --cpu N`: every thread of the running server (its event loop's, the store's
    connection threads, any other) may run on core N only, and it answers a create there (a
    refusal, no funds: decided by the transfer's actor and stored by the writer, as any). A core
    the process may not use is refused before anything starts."""
    usable = affinity.usable_cpus()
    assert usable is not None
    core = max(usable)  # on a machine of several, not the first: not what the kernel defaults to
    data_dir = tmp_path / "data"
    assert cli("migrate", "--data-dir", str(data_dir)).returncode == 0
    alice, _ = keys(data_dir)
    serve = Serve(data_dir, free_port(), ("--sim-speed", "50", "--cpu", str(core)))
    serve.start()
    try:
        status, body = request(
            serve.port, "POST", "/v1/transfers", alice, ONE_DOLLAR, Idempotency_Key="pinned-1"
        )
        assert status == 422 and body["type"].endswith("/insufficient_funds"), body
        assert serve.proc is not None
        tasks = list(Path(f"/proc/{serve.proc.pid}/task").iterdir())
        assert len(tasks) > 1  # the store's connection threads at least
        for task in tasks:
            allowed = re.search(r"Cpus_allowed_list:\s*(\S+)", (task / "status").read_text())
            assert allowed is not None and allowed.group(1) == str(core), task
    finally:
        assert serve.stop(signal.SIGTERM) == 0
    refused = cli("serve", "--data-dir", str(data_dir), "--cpu", str(max(usable) + 1000))
    assert refused.returncode == 2 and "is not one this process may run on" in refused.stderr


def test_sigkill_mid_traffic_loses_no_answered_transfer(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli("migrate", "--data-dir", str(data_dir)).returncode == 0
    alice, oscar = keys(data_dir)
    serve = Serve(data_dir, free_port())
    serve.start()
    status, _ = request(
        serve.port,
        "POST",
        "/v1/sim/deposits",
        oscar,
        {"client_id": "acme", "currency": "USD", "amount": "100000.00"},
    )
    assert status == 202
    deadline = time.monotonic() + 30
    while True:
        _, balances = request(serve.port, "GET", "/v1/balances", alice)
        if balances["data"] and balances["data"][0]["available"] == "100000.00":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)

    answered: dict[str, str] = {}  # idempotency key -> transfer id, for every 201
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            key = str(uuid.uuid4())
            try:
                status, body = request(
                    serve.port,
                    "POST",
                    "/v1/transfers",
                    alice,
                    ONE_DOLLAR,
                    Idempotency_Key=key,
                )
            except OSError:
                return
            if status == 201:
                answered[key] = body["id"]

    workers = [threading.Thread(target=client) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(3)
    os.kill(serve.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    serve.proc.wait(timeout=10)  # type: ignore[union-attr]
    stop.set()
    for w in workers:
        w.join(timeout=60)
    assert len(answered) >= 10, len(answered)

    serve.start()
    try:
        deadline = time.monotonic() + 120
        pending = dict(answered)
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} transfers never finished"
            for key, tid in list(pending.items()):
                status, transfer = request(serve.port, "GET", f"/v1/transfers/{tid}", alice)
                assert status == 200, (tid, status, transfer)
                if transfer["status"] in TERMINAL:
                    assert transfer["status"] == "RECONCILED", transfer
                    del pending[key]
            time.sleep(0.5)
        # A retry of any answered request names the same transfer.
        for key, tid in list(answered.items())[:5]:
            status, body = request(
                serve.port,
                "POST",
                "/v1/transfers",
                alice,
                ONE_DOLLAR,
                Idempotency_Key=key,
            )
            assert status == 201 and body["id"] == tid
    finally:
        assert serve.stop(signal.SIGTERM) == 0, serve.log.read_text()[-3000:]
    checked = cli("verify", "--data-dir", str(data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # No key's secret is in the server's log or anywhere in the data dir's files.
    for key in (alice, oscar):
        secret = key.rsplit("_", 1)[1].encode()
        assert secret not in serve.log.read_bytes()
        for file in data_dir.iterdir():
            assert secret not in file.read_bytes(), file
