"""The shape of the code, enforced: ARCHITECTURE.md's import table and the banned-call list.

Each package may import only the layers and third-party libraries its row allows; the engine may
import only pure standard-library modules; nothing outside adapters/ and sim/ reads the clock or
entropy. The checker is tested on small synthetic sources first, so these tests can fail.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("engine", "store", "actors", "adapters", "sim")

# layer -> (project layers it may import, third-party distributions it may import)
IMPORT_TABLE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "engine": (frozenset({"engine"}), frozenset({"msgspec"})),
    "store": (frozenset({"engine", "store"}), frozenset({"msgspec", "aiosqlite"})),
    "actors": (frozenset({"engine", "actors"}), frozenset({"msgspec", "anyio", "tenacity"})),
    "adapters": (
        frozenset({"engine", "adapters"}),
        frozenset(
            {"msgspec", "anyio", "aiohttp", "eth_account", "tenacity", "loguru"}
            | {"prometheus_client"}
            # Files from outside: XML without DTDs or entities, SWIFT MT940 statements.
            | {"defusedxml", "mt940"}
            # The real chain: ABI encoding, addresses and hashes, eth-account's types.
            | {"eth_abi", "eth_utils", "eth_typing"}
            # The console's server-rendered pages.
            | {"jinja2", "markupsafe"}
        ),
    ),
    "sim": (
        frozenset({"engine", "actors", "store", "sim"}),
        # eventsourcing: only as the reference the lifecycle benchmark measures itself against.
        frozenset(
            {"msgspec", "anyio", "eth_account", "eth_utils", "eth_typing", "hexbytes"}
            | {"eventsourcing"}
        ),
    ),
}
# The composition root wires every layer together.
COMPOSITION_ROOTS = frozenset({"adapters/cli.py", "adapters/main.py", "adapters/bench_evm.py"})

# The engine is pure: no I/O, no threads, no clock, no entropy. Standard-library allow-list.
ENGINE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "base64",
        "binascii",
        "bisect",
        "collections",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "fractions",
        "functools",
        "hashlib",
        "heapq",
        "hmac",
        "itertools",
        "math",
        "operator",
        "re",
        "string",
        "struct",
        # Parsers of text handed in (policy rule sets, sanctions lists, bank statements in CSV;
        # camt XML arrives parsed, as an element tree); they read no file.
        "tomllib",
        "csv",
        "xml",
        "io",
        "types",
        "typing",
        "unicodedata",
    }
)

# Calls that read the clock or entropy: allowed only in adapters/ (real) and sim/ (simulated).
BANNED_CALLS = tuple(
    re.compile(p)
    for p in (
        r"^time\.(time|time_ns|monotonic|monotonic_ns|perf_counter|perf_counter_ns|process_time)$",
        r"(^|\.)(datetime|date)\.(now|utcnow|today)$",
        r"^uuid\.uuid[14]$",
        r"^uuid[14]$",
        r"^os\.(urandom|getrandom)$",
        r"^random\.",
        r"^secrets\.",
        r"get_(running|event)_loop\(\)\.time$",
    )
)
BANNED_IMPORTS = {
    "random": None,
    "secrets": None,
    "uuid": None,
    "time": frozenset(
        {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}
    ),
    "os": frozenset({"urandom", "getrandom"}),
}
CLOCK_FREE_LAYERS = frozenset({"engine", "store", "actors"})


def _top(module: str) -> str:
    return module.split(".")[0]


def imports_of(tree: ast.AST) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, module, imported names) for every import statement."""
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, tuple(a.name for a in node.names)))
    return found


def import_violations(layer: str, relpath: str, source: str) -> list[str]:
    if relpath in COMPOSITION_ROOTS:
        return []
    layers_ok, third_party_ok = IMPORT_TABLE[layer]
    problems = []
    for line, module, _ in imports_of(ast.parse(source)):
        top = _top(module)
        if top in LAYERS:
            if top not in layers_ok:
                problems.append(f"{relpath}:{line} {layer} may not import {module}")
        elif top in sys.stdlib_module_names:
            if layer == "engine" and top not in ENGINE_STDLIB:
                problems.append(f"{relpath}:{line} engine is pure: no {module}")
        elif top not in third_party_ok:
            problems.append(f"{relpath}:{line} {layer} may not import {module}")
    return problems


def _dotted(node: ast.AST) -> str | None:
    match node:
        case ast.Name(id=name):
            return name
        case ast.Attribute(value=value, attr=attr):
            base = _dotted(value)
            return f"{base}.{attr}" if base else None
        case ast.Call(func=func):
            base = _dotted(func)
            return f"{base}()" if base else None
    return None


def banned_call_violations(relpath: str, source: str) -> list[str]:
    tree = ast.parse(source)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name and any(p.search(name) for p in BANNED_CALLS):
                problems.append(f"{relpath}:{node.lineno} reads the clock or entropy: {name}()")
    for line, module, names in imports_of(tree):
        if module in BANNED_IMPORTS:
            banned = BANNED_IMPORTS[module]
            if banned is None:
                problems.append(f"{relpath}:{line} imports {module}")
            elif banned & set(names):
                problems.append(
                    f"{relpath}:{line} imports {sorted(banned & set(names))} from {module}"
                )
    return problems


def _sources() -> list[tuple[str, str, str]]:
    found = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            relpath = path.relative_to(ROOT).as_posix()
            found.append((layer, relpath, path.read_text("utf-8")))
    return found


# --- the checker, on synthetic sources (so the real checks below can fail) ----------------------


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("engine", "import sqlite3", "engine is pure: no sqlite3"),
        ("engine", "from store import schema", "engine may not import store"),
        ("engine", "import aiohttp", "engine may not import aiohttp"),
        ("actors", "from store.store import Store", "actors may not import store.store"),
        ("store", "import anyio", "store may not import anyio"),
        ("sim", "from adapters import cli", "sim may not import adapters"),
        ("adapters", "from store import schema", "adapters may not import store"),
    ],
)
def test_import_checker_catches(layer: str, source: str, expected: str) -> None:
    problems = import_violations(layer, f"{layer}/x.py", source)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "source",
    [
        "import engine.money\nimport msgspec\nimport re",
        "from __future__ import annotations\nfrom engine.results import Result",
    ],
)
def test_import_checker_allows_the_engine_its_own(source: str) -> None:
    assert import_violations("engine", "engine/x.py", source) == []


def test_composition_root_may_import_everything() -> None:
    source = "from store import schema\nfrom sim import demo\nimport aiohttp"
    assert import_violations("adapters", "adapters/cli.py", source) == []


@pytest.mark.parametrize(
    "source",
    [
        "import time\ntime.time()",
        "import time\ntime.monotonic()",
        "import datetime as dt\ndt.datetime.now(dt.UTC)",
        "from datetime import datetime\ndatetime.utcnow()",
        "from datetime import date\ndate.today()",
        "import uuid\nuuid.uuid4()",
        "from uuid import uuid4\nuuid4()",
        "import os\nos.urandom(8)",
        "import random\nrandom.random()",
        "import secrets\nsecrets.token_hex()",
        "import asyncio\nasyncio.get_running_loop().time()",
        "from time import perf_counter",
    ],
)
def test_banned_call_checker_catches(source: str) -> None:
    assert banned_call_violations("engine/x.py", source), source


def test_banned_call_checker_allows_pure_time_arithmetic() -> None:
    source = "import datetime as dt\ndt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(1)"
    assert banned_call_violations("engine/x.py", source) == []


# --- the real tree ------------------------------------------------------------------------------


def test_every_layer_exists() -> None:
    for layer in LAYERS:
        assert (ROOT / layer / "__init__.py").is_file(), layer


def test_imports_follow_the_table() -> None:
    problems = [p for layer, rel, src in _sources() for p in import_violations(layer, rel, src)]
    assert problems == []


def test_no_clock_or_entropy_outside_adapters_and_sim() -> None:
    problems = [
        p
        for layer, rel, src in _sources()
        if layer in CLOCK_FREE_LAYERS
        for p in banned_call_violations(rel, src)
    ]
    assert problems == []


def test_no_async_in_the_engine() -> None:
    problems = []
    for layer, rel, src in _sources():
        if layer != "engine":
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)):
                problems.append(f"{rel}:{node.lineno}")
    assert problems == []


def test_no_float_literals_in_money_code() -> None:
    """Money is integers: no float literal in the engine or the store."""
    problems = []
    for layer, rel, src in _sources():
        if layer not in ("engine", "store"):
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                problems.append(f"{rel}:{node.lineno} {node.value!r}")
    assert problems == []


def test_status_strings_are_compared_only_through_the_table() -> None:
    """A status name in a comparison outside engine/states.py is a second state machine."""
    statuses = {
        "CREATED", "QUOTED", "FUNDS_LOCKED", "SENT_ON_CHAIN", "CONFIRMED", "FIAT_SETTLED",
        "RECONCILED", "FAILED", "CANCELLED", "EXPIRED",
    }  # fmt: skip
    problems = []
    for _, rel, src in _sources():
        if rel == "engine/states.py":
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Compare):
                for operand in (node.left, *node.comparators):
                    if isinstance(operand, ast.Constant) and operand.value in statuses:
                        problems.append(f"{rel}:{node.lineno} compares {operand.value!r}")
    assert problems == []
