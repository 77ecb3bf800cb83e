"""A local EVM node: anvil (Foundry), from the npm package the Makefile installs (`make
evm-tools`), for the tests and `stablerail bench evm`. Never a production node.

Each node runs on 127.0.0.1 on a free port, with HOME pointed at its own directory (anvil keeps
state under $HOME/.foundry), and is stopped by its PID: SIGTERM, then SIGKILL if it has not gone
within a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
start_wait_s = 15.0
stop_wait_s = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Anvil:
    def __init__(self, home: Path, *, chain_id: int = 31337, args: tuple[str, ...] = ()) -> None:
        if not ANVIL.exists():
            raise RuntimeError(
                f"no anvil at {ANVIL}: `make evm-tools` installs it (npm ci, package.json)"
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = chain_id
        home.mkdir(parents=True, exist_ok=True)
        self.log = (home / "anvil.log").open("wb")
        command = [
            str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(chain_id), *args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "HOME": str(home)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + start_wait_s
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.process.returncode} at start")
            request = urllib.request.Request(
                self.url, data=body, headers={"Content-Type": "application/json"}
            )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(request, timeout=1) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"anvil did not answer within {start_wait_s} s")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(stop_wait_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(stop_wait_s)
        self.log.close()


@contextlib.contextmanager
def running(home: Path, *, chain_id: int = 31337, args: tuple[str, ...] = ()) -> Iterator[Anvil]:
    node = Anvil(home, chain_id=chain_id, args=args)
    try:
        yield node
    finally:
        node.stop()
