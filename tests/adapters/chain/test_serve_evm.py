"""`stablerail serve --rails evm` against a real node: anvil mining a block every 0.2 s, our test
stablecoin deployed, a treasury keystore made by `stablerail wallet new` and funded. A client's
USD -> USDC transfer to a wallet goes through the HTTP API to RECONCILED, and only once the node
calls its block finalized: the payee holds the tokens on chain, the treasury's ledger balance
equals its balanceOf, the wallet sent exactly one transaction, and the treasury key appears in
no log, journal byte or metric; `verify` passes, and the data dir cannot be served with the
simulated chain afterwards. A bank corridor is refused
(no off-ramp sees this chain). A restart books the opening balance only once. A node on another
chain id stops the start with its reason."""

from __future__ import annotations

import tomllib
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from adapters.chain import keystore
from adapters.chain.anvil import running
from tests.adapters.chain.harness import (
    PASSPHRASE,
    SLOW_FINALITY,
    TREASURY_USDC,
    EvmWorld,
    call,
    evm_world,
    wait_for,
)
from tests.adapters.test_serve import WALLET, cli, free_port, request


def test_wallet_new_writes_a_keystore_serve_can_unlock(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE + "\n")
    path = tmp_path / "keys" / "treasury.json"
    made = cli("wallet", "new", "--keystore", str(path), "--passphrase-file", str(secret))
    assert made.returncode == 0, made.stderr
    address = keystore.address_of(path)
    assert made.stdout.startswith(f"address: {address}")
    assert keystore.unlock(path, PASSPHRASE).address == address
    shown = cli("wallet", "address", "--keystore", str(path))
    assert shown.stdout.strip() == address
    again = cli("wallet", "new", "--keystore", str(path), "--passphrase-file", str(secret))
    assert again.returncode == 2 and "never overwritten" in again.stderr


def test_devnet_fund_makes_a_local_node_ready_to_pay_on(tmp_path: Path) -> None:
    address = "0x" + "5e" * 20
    with running(tmp_path / "anvil") as node:
        done = cli("devnet", "fund", "--rpc-url", node.url, "--address", address, "--usdc", "7")
        assert done.returncode == 0, done.stderr
        settings = tomllib.loads(done.stdout)
        assert settings["rails"]["kind"] == "evm" and "keystore" in settings["evm"]
        token = settings["evm"]["tokens"]["USDC"]
        assert (settings["evm"]["chain_id"], settings["evm"]["rpc_url"]) == (
            node.chain_id,
            node.url,
        )
        data = "0x70a08231" + address[2:].rjust(64, "0")
        held = anyio.run(call, node.url, "eth_call", {"to": token, "data": data}, "latest")
        assert int(held, 16) == 7 * 10**6
        gas = anyio.run(call, node.url, "eth_getBalance", address, "latest")
        assert int(gas, 16) == 100 * 10**18
        refused = cli("devnet", "fund", "--rpc-url", node.url, "--address", "0x12")
        assert refused.returncode == 2 and "not an address" in refused.stderr


def test_a_transfer_is_paid_on_a_real_node_and_reconciled(tmp_path: Path) -> None:
    with evm_world(tmp_path, SLOW_FINALITY) as world:
        world.start()
        world.fund()
        tid = world.create("evm-1")
        transfer = world.wait_status(tid, "RECONCILED")
        tx_hash = transfer["on_chain_tx_hash"]
        receipt = world.rpc("eth_getTransactionReceipt", tx_hash)
        final = world.rpc("eth_getBlockByNumber", "finalized", False)
        assert int(receipt["blockNumber"], 16) <= int(final["number"], 16)
        assert receipt["status"] == "0x1" and receipt["from"].lower() == world.treasury
        assert world.events(tid) == [
            "TransferCreated", "QuoteCaptured", "FundsLocked", "OnChainSubmitted",
            "OnChainConfirmed", "Reconciled",
        ]  # fmt: skip
        status, mxn = request(
            world.port, "POST", "/v1/transfers", world.alice,
            {"source_currency": "USD", "target_currency": "MXN", "amount": "25.00",
             "destination": {"kind": "bank", "country": "MX", "clabe": "032180000118359719",
                             "name": "Beneficiary"}},
            Idempotency_Key="evm-2",
        )  # fmt: skip
        assert status == 422 and mxn["code"] == "corridor_unsupported", mxn
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{world.port}/metrics", timeout=10)
        exposed = metrics.read().decode()
        world.stop()
        _key_never_shown(world, exposed)
        paid = world.balance_of(WALLET)
        assert paid == 24_980_000 and transfer["target_amount"] == "24.980000", transfer
        assert world.balance_of(world.treasury) == TREASURY_USDC - paid
        assert world.nonce() == 1
        # A restart finds the opening balance booked and books nothing more; the ledger's
        # treasury account holds what the chain holds.
        world.start()
        _, trial = request(world.port, "GET", "/v1/ops/ledger/trial-balance", world.oscar)
        world.stop()
        assert world.log().count("opening balance booked") == 1, world.log()[-3000:]
        _treasury_holds(world, trial, TREASURY_USDC - paid)
        checked = cli("verify", "--data-dir", str(world.data_dir))
        assert checked.returncode == 0, checked.stdout
        assert "payments go to a real chain" in checked.stdout
        # Its transfers and treasury are on the real chain: the simulated one cannot serve it.
        switched = cli(
            "serve", "--data-dir", str(world.data_dir), "--port", str(free_port()),
            "--rails", "sim",
        )  # fmt: skip
        assert switched.returncode == 2 and "pays on a real chain (evm)" in switched.stderr


def test_tokens_from_a_stranger_are_a_drift_against_the_chain(tmp_path: Path) -> None:
    """Value that arrives in the treasury with no transfer behind it: the chain indexer's log of
    it is an external_only case, and the treasury's balanceOf read from the node against the
    ledger is a balance_drift case naming both sides."""
    quick = (
        "[reconciliation]\nround_s = 0.5\nexternal_only_grace_s = 1\n"
        "balance_check_s = 0.5\nbalance_drift_persist_s = 1\n"
    )
    with evm_world(tmp_path, sections=quick) as world:
        world.start()
        world.mint(world.treasury, 5_000_000)

        def both() -> dict[str, dict[str, Any]] | None:
            found = {c["type"]: c for c in world.open_cases() if c["source"] == "chain"}
            return found if {"external_only", "balance_drift"} <= found.keys() else None

        cases = wait_for(both, 60, "the cases")
        drift = cases["balance_drift"]
        assert drift["expected"]["account"] == f"treasury:ethereum:{world.treasury}"
        assert int(drift["observed"]["amount"]) - int(drift["expected"]["amount"]) == 5_000_000
        assert cases["external_only"]["observed"]["amount"] == "5000000"
        world.stop()


def _key_never_shown(world: EvmWorld, metrics: str) -> None:
    """The treasury key, in any spelling, is in no log line, journal or WAL byte, or metric."""
    key = bytes(keystore.unlock(world.tmp / "treasury.json", PASSPHRASE).key).hex()
    stored = b"".join(p.read_bytes() for p in world.data_dir.iterdir() if p.is_file())
    for text in (world.log(), metrics, stored.decode("latin-1")):
        assert key not in text.lower()
        assert PASSPHRASE not in text
    assert world.treasury in world.log()  # the address is what the log names


def _treasury_holds(world: EvmWorld, trial: dict[str, object], expected: int) -> None:
    accounts = trial["accounts"]
    assert isinstance(accounts, list) and trial["balanced"], trial
    rows = [r for r in accounts if r["account"] == f"treasury:ethereum:{world.treasury}"]
    assert len(rows) == 1 and rows[0]["currency"] == "USDC", trial
    assert (Decimal(rows[0]["debits"]) - Decimal(rows[0]["credits"])) * 10**6 == expected


def test_a_node_on_the_wrong_chain_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "treasury.pass").write_text(PASSPHRASE + "\n")
    keystore.create(tmp_path / "treasury.json", PASSPHRASE, scrypt_n=1 << 12)
    config = tmp_path / "stablerail.toml"
    with running(tmp_path / "anvil", chain_id=5) as node:
        config.write_text(
            f'[rails]\nkind = "evm"\n[evm]\nrpc_url = "{node.url}"\nchain_id = 1\n'
            f'keystore = "{tmp_path / "treasury.json"}"\n'
            f'passphrase_file = "{tmp_path / "treasury.pass"}"\n'
            f'[evm.tokens]\nUSDC = "0x{"22" * 20}"\n'
        )
        started = cli(
            "serve", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
            "--config", str(config),
        )  # fmt: skip
    assert started.returncode == 2, started.stdout + started.stderr
    assert "chain id 5, the configuration says 1" in started.stderr
