"""The rule book over a real store: a new data dir starts with the shipped default, a rule set
loaded over the API survives a restart when no file is configured, a configured file that
differs becomes the next version at start (and the same file again is not a new one), and the
system's own loads are audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.rules import RuleBook
from engine import policy
from sim.clock import ManualClock
from store import anchor
from store.executor import ExecutorKind
from store.store import Store

pytestmark = pytest.mark.anyio

CUSTOM = (
    b'usd_rates = { EUR = "1.1", EURC = "1.1", MXN = "0.05" }\n'
    b'[[rules]]\nid = "all"\naction = "allow"\n'
)
FILE = CUSTOM.replace(b'"all"', b'"from-file"')


async def test_rule_sets_across_restarts(tmp_path: Path) -> None:
    clock = ManualClock(tick_us=1_000)
    async with Store.open(tmp_path, clock=clock, executor=ExecutorKind.INLINE, migrate=True) as s:
        book = RuleBook(s, clock)
        assert (await book.open(None, "system")).version == 1
        assert book.current.rules[0].rule_id == "block-over-250k"
        loaded = await book.load(CUSTOM, "ops", "loosen for the pilot")
        assert isinstance(loaded, policy.RuleSet) and loaded.version == 2
        again = RuleBook(s, clock)
        assert (await again.open(None, "system")).version == 2  # the API's change survives
        assert again.current.rules[0].rule_id == "all"
        configured = RuleBook(s, clock)
        assert (await configured.open(FILE, "system")).version == 3
        same = RuleBook(s, clock)
        assert (await same.open(FILE, "system")).version == 3
        rows = await anchor.all_rows(s.reader)
        assert [(r.record.action_type, r.record.resource_id) for r in rows] == [
            ("load_policy", "v1"),
            ("load_policy", "v3"),
        ]
