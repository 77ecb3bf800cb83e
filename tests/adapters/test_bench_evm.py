"""`stablerail bench evm` runs against a real anvil and prints every figure it promises: payments
per second through the real adapter and through the simulated rails, their ratio, the CPU per
payment on both sides of the JSON-RPC, and signing alone."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_small_run_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "bench", "evm", "--json",
         "--payments", "40", "--concurrency", "2", "--rounds", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in (
        "evm_payments_per_s", "sim_payments_per_s", "evm_vs_sim", "evm_cpu_us_per_payment",
        "sim_cpu_us_per_payment", "signing_cpu_us",
    ):  # fmt: skip
        assert report[key] > 0, (key, report)
    # The node's CPU is read from /proc in clock ticks (10 ms): a short run may read none.
    assert report["evm_node_cpu_us_per_payment"] >= 0
    # Fees (3 calls in a batch), the gas estimate, the broadcast, a receipt (2 in a batch).
    assert report["rpc_calls_per_payment"] >= 7
    assert len(report["evm_runs"]) == len(report["sim_runs"]) == 1
