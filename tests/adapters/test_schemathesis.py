"""Schemathesis drives a live `stablerail serve` from its own OpenAPI document, as each role: every
check (no server error, statuses, content types, headers and bodies as declared, schema-violating
requests refused, schema-valid ones accepted or refused only as API.md allows, auth not ignored,
deleted objects gone), positive and negative data, stateful links, with a fixed seed so a failure
reproduces. The settings are in tests/adapters/schemathesis.toml.

Freezes and halts run last, on their own (they refuse everything after them), with every check.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.test_serve import Serve, cli, free_port, request

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261129
EXAMPLES = 12
CONTROLS = r"^/v1/ops/(clients/[^/]+/(freeze|unfreeze)|corridors/[^/]+/(halt|resume)|halt|resume)$"
# Each key runs the routes its role may use (the others answer 403, which the role matrix checks).
RUNS = [
    (
        "initiator",
        "acme",
        r"^/v1/(quotes|transfers(/[^/]+(/(events|cancel))?)?|balances|ledger|events)$",
    ),
    ("approver", "acme", r"^/v1/transfers/[^/]+/(approve|reject)$"),
    ("admin", "acme", r"^/v1/(webhook-endpoints|api-keys)"),
    (
        "viewer",
        "acme",
        r"^/v1/(transfers(/[^/]+(/events)?)?|balances|ledger/entries|events|webhook-endpoints(/[^/]+(/deliveries)?)?)$",
    ),
    ("operator", None, r"^/v1/(ops|sim|api-keys|transfers|balances|ledger|events)"),
    ("auditor", None, r"^/v1/ops/audit$"),
]


def schemathesis(url: str, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe is not None, "schemathesis is in the test extra"
    headers = ["-H", f"Authorization: Bearer {key}"] if key else []
    return subprocess.run(
        [exe, "--no-color", "--config-file", str(CONFIG), "run", url, "--seed", str(SEED),
         "--max-examples", str(EXAMPLES), "--mode", "all", *headers, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip


def new_key(data_dir: Path, role: str, client: str | None) -> str:
    made = cli(
        "keys", "create", "--data-dir", str(data_dir), "--role", role, "--user", f"st-{role}",
        *(("--client", client) if client else ()), "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["key"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, dict[str, str]]]:
    root = tmp_path_factory.mktemp("schemathesis")
    data_dir = root / "data"
    assert cli("migrate", "--data-dir", str(data_dir)).returncode == 0
    keys = {role: new_key(data_dir, role, client) for role, client, _ in RUNS}
    serve = Serve(data_dir, free_port())
    serve.start()
    status, _ = request(
        serve.port,
        "POST",
        "/v1/sim/deposits",
        keys["operator"],
        {"client_id": "acme", "currency": "USD", "amount": "1000000.00"},
    )
    assert status == 202
    yield serve, keys
    assert serve.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize(("role", "paths"), [(role, paths) for role, _, paths in RUNS])
def test_every_check_passes_for_each_role(
    served: tuple[Serve, dict[str, str]], role: str, paths: str
) -> None:
    serve, keys = served
    url = f"http://127.0.0.1:{serve.port}/v1/openapi.json"
    done = schemathesis(
        url, keys[role], "--checks", "all", "--include-path-regex", paths,
        "--exclude-path-regex", CONTROLS,
    )  # fmt: skip
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-8000:]
    assert " passed" in done.stdout and "generated" in done.stdout


def test_controls_and_inbound_webhooks(served: tuple[Serve, dict[str, str]]) -> None:
    serve, keys = served
    url = f"http://127.0.0.1:{serve.port}/v1/openapi.json"
    controls = schemathesis(
        url, keys["operator"], "--checks", "all", "--include-path-regex", CONTROLS,
    )  # fmt: skip
    assert controls.returncode == 0, controls.stdout[-8000:]
    # No API key: inbound webhooks are signed instead (bad signatures are 401 by design).
    inbound = schemathesis(
        url, None, "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--include-path-regex", r"^/v1/inbound/",
    )  # fmt: skip
    assert inbound.returncode == 0, inbound.stdout[-8000:]
