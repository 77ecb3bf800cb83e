"""Our test stablecoin (contracts/StableToken.sol) as compiled, and how it was compiled.

The artifact (contracts/StableToken.json: ABI, creation bytecode, compiler and settings) is
committed beside its source so tests and a local network deploy it without a compiler;
`tests/adapters/chain/test_artifact.py` compiles the source again with solc-js (from npm, by the
Makefile) and checks the two agree. After changing the source: `python -m adapters.chain.artifact`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CONTRACTS = Path(__file__).resolve().parent / "contracts"
SOURCE = CONTRACTS / "StableToken.sol"
ARTIFACT = CONTRACTS / "StableToken.json"
SOLCJS = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "solcjs"
CONTRACT = "StableToken"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    # Cancun: what every current EVM chain and anvil run.
    "evmVersion": "cancun",
    "outputSelection": {SOURCE.name: {CONTRACT: ["abi", "evm.bytecode.object"]}},
}


def load() -> dict[str, Any]:
    artifact: dict[str, Any] = json.loads(ARTIFACT.read_text("utf-8"))
    return artifact


def compile_source(solcjs: Path = SOLCJS) -> dict[str, Any]:
    """The artifact compiled now from SOURCE with solc-js's standard JSON interface."""
    request = {
        "language": "Solidity",
        "sources": {SOURCE.name: {"content": SOURCE.read_text("utf-8")}},
        "settings": SETTINGS,
    }
    done = subprocess.run(
        [str(solcjs), "--standard-json"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # solc-js may print a notice line before the JSON.
    answer = json.loads(done.stdout[done.stdout.index("{") :])
    errors = [e for e in answer.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("; ".join(e["formattedMessage"] for e in errors))
    version = subprocess.run(
        [str(solcjs), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    output = answer["contracts"][SOURCE.name][CONTRACT]
    return {
        "contract": CONTRACT,
        "source": f"adapters/chain/contracts/{SOURCE.name}",
        "compiler": f"solc-js {version}",
        "settings": SETTINGS,
        "abi": output["abi"],
        "bytecode": "0x" + output["evm"]["bytecode"]["object"],
    }


def main() -> None:
    ARTIFACT.write_text(json.dumps(compile_source(), indent=2) + "\n", "utf-8")
    sys.stdout.write(f"wrote {ARTIFACT}\n")


if __name__ == "__main__":
    main()
