"""`stablerail serve --rails evm` on a real anvil node, as the drills drive it: the node started
on 127.0.0.1, our test stablecoin deployed, a treasury keystore written and funded, the config
file, API keys, and a client funded in USD through the simulated bank. The test talks to the
node directly (to drop, stall or reorg what the engine sent) and to serve over HTTP."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from adapters.chain import keystore
from adapters.chain.anvil import Anvil, running
from adapters.chain.devnet import Devnet
from adapters.chain.rpc import JsonRpc
from tests.adapters.test_serve import WALLET, Serve, cli, free_port, keys, request

TREASURY_USDC = 1_000 * 10**6
PASSPHRASE = "a long enough passphrase"
TERMINAL = {"RECONCILED", "FAILED", "CANCELLED", "EXPIRED"}


async def call(url: str, method: str, *params: Any) -> Any:
    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(url, session)
        if len(params) == 1 and isinstance(params[0], dict) and method.startswith("anvil_"):
            return await rpc.call_named(method, params[0])
        return await rpc.call(method, *params)


async def _prepare(url: str, treasury: str) -> str:
    async with aiohttp.ClientSession() as session:
        devnet = await Devnet.open(JsonRpc(url, session))
        token = await devnet.deploy_token()
        await devnet.give_gas_money(treasury, 10**18)
        await devnet.mint(token, treasury, TREASURY_USDC)
        return token


def wait_for(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


class EvmWorld:
    def __init__(
        self,
        tmp_path: Path,
        node: Anvil,
        evm_extra: str = "",
        rpc_url: str | None = None,
        sections: str = "",
    ) -> None:
        self.tmp = tmp_path
        self.node = node
        self.data_dir = tmp_path / "data"
        secret = tmp_path / "treasury.pass"
        secret.write_text(PASSPHRASE + "\n")
        keystore.create(tmp_path / "treasury.json", PASSPHRASE, scrypt_n=1 << 12)
        self.treasury = keystore.address_of(tmp_path / "treasury.json").lower()
        self.token = anyio.run(_prepare, node.url, self.treasury)
        self.config = tmp_path / "stablerail.toml"
        self.config.write_text(
            f"""
[rails]
kind = "evm"
sim_speed = 50

[evm]
rpc_url = "{rpc_url or node.url}"
chain_id = {node.chain_id}
keystore = "{tmp_path / "treasury.json"}"
passphrase_file = "{secret}"
poll_s = 0.2
{evm_extra}

[evm.tokens]
USDC = "{self.token}"

{sections}
"""
        )
        assert cli("migrate", "--data-dir", str(self.data_dir)).returncode == 0
        self.alice, self.oscar = keys(self.data_dir)
        self.port = free_port()
        self.serve: Serve | None = None

    def rpc(self, method: str, *params: Any) -> Any:
        return anyio.run(call, self.node.url, method, *params)

    def balance_of(self, address: str) -> int:
        data = "0x70a08231" + address.lower()[2:].rjust(64, "0")
        return int(self.rpc("eth_call", {"to": self.token, "data": data}, "latest"), 16)

    def nonce(self) -> int:
        return int(self.rpc("eth_getTransactionCount", self.treasury, "latest"), 16)

    def start(self, env: dict[str, str] | None = None) -> Serve:
        self.serve = Serve(self.data_dir, self.port, ("--config", str(self.config)), env)
        self.serve.start()
        return self.serve

    def stop(self) -> None:
        assert self.serve is not None
        assert self.serve.stop(signal.SIGTERM) == 0, self.log()[-3000:]

    def log(self) -> str:
        assert self.serve is not None
        return self.serve.log.read_text()

    def fund(self, amount: str = "1000.00") -> None:
        status, _ = request(
            self.port, "POST", "/v1/sim/deposits", self.oscar,
            {"client_id": "acme", "currency": "USD", "amount": amount},
        )  # fmt: skip
        assert status == 202

        def funded() -> bool:
            _, balances = request(self.port, "GET", "/v1/balances", self.alice)
            return bool(balances["data"]) and balances["data"][0]["available"] == amount

        wait_for(funded, 30, "the deposit credited")

    def create(self, key: str, amount: str = "25.00", to: str = WALLET) -> str:
        body = {
            "source_currency": "USD", "target_currency": "USDC", "amount": amount,
            "destination": {"kind": "wallet", "chain": "ethereum", "address": to},
        }  # fmt: skip
        status, created = request(
            self.port, "POST", "/v1/transfers", self.alice, body, Idempotency_Key=key
        )
        assert status == 201, created
        return str(created["id"])

    def transfer(self, tid: str) -> dict[str, Any]:
        status, found = request(self.port, "GET", f"/v1/transfers/{tid}", self.alice)
        assert status == 200, found
        return dict(found)

    def events(self, tid: str) -> list[str]:
        _, history = request(self.port, "GET", f"/v1/transfers/{tid}/events", self.alice)
        return [e["type"] for e in history["data"]]

    def wait_status(self, tid: str, status: str, seconds: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            found = self.transfer(tid)
            if found["status"] in TERMINAL and found["status"] != status:
                raise AssertionError(f"{tid} ended {found['status']}: {found}")
            return found if found["status"] == status else None

        return dict(wait_for(reached, seconds, f"{tid} {status}"))

    def mint(self, to: str, amount: int) -> None:
        """Tokens from outside the engine (the test token's minter is anvil's first account)."""

        async def minted() -> None:
            async with aiohttp.ClientSession() as session:
                devnet = await Devnet.open(JsonRpc(self.node.url, session))
                await devnet.mint(self.token, to, amount)

        anyio.run(minted)

    def open_cases(self) -> list[dict[str, Any]]:
        _, cases = request(self.port, "GET", "/v1/ops/discrepancies?status=OPEN", self.oscar)
        return list(cases["data"])


# A block every 0.2 s, finalized two blocks under the head (anvil's default is 64): the drills
# that are not about finality finish sooner.
QUICK_FINALITY = ("--block-time", "0.2", "--slots-in-an-epoch", "1")
SLOW_FINALITY = ("--block-time", "0.2")


@contextlib.contextmanager
def evm_world(
    tmp_path: Path,
    anvil_args: tuple[str, ...] = QUICK_FINALITY,
    evm_extra: str = "",
    through: Callable[[str], str] | None = None,
    sections: str = "",
) -> Iterator[EvmWorld]:
    """`evm_extra`: more [evm] settings; `sections`: more tables of the config file;
    `through`: given the node's URL, the URL serve should use instead (a proxy)."""
    with running(tmp_path / "anvil", args=anvil_args) as node:
        world = EvmWorld(
            tmp_path, node, evm_extra, through(node.url) if through else None, sections
        )
        try:
            yield world
        finally:
            proc = world.serve.proc if world.serve is not None else None
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(30)
