"""The rule book: the policy rule set in force, journaled whole, swapped whole.

Every rule set that ever came into force is a `RuleSetLoaded` event in the journal's "policy"
stream, its version the stream version, so the journal alone answers "which rules decided this
transfer" (TransferCreated.policy names the version). At start the book takes the latest
journaled version; a configured document that differs from it (by digest) is journaled as the
next version. An operator's change goes through `load`: the whole document is compiled first,
a document with any problem changes nothing, and two concurrent changes cannot both claim a
version (the journal's optimistic version check).
"""

from __future__ import annotations

import msgspec

from engine import events as ev
from engine import policy
from engine.audit import ActorType, AuditRecord
from engine.ports import Clock, Journal
from engine.records import Committed, Rejected
from engine.results import Result


class RuleBook:
    def __init__(self, journal: Journal, clock: Clock) -> None:
        self.journal = journal
        self.clock = clock
        self.current: policy.RuleSet = policy.default_rules()
        self.history: list[ev.RuleSetLoaded] = []

    async def open(self, document: bytes | None, by: str) -> policy.RuleSet:
        """The latest journaled rule set. A configured `document` that differs from it is
        journaled as the next version (the file an operator points `serve` at wins at start);
        with none configured, the journal's latest stays in force (a rule set loaded over the
        API survives restarts), and a new data dir starts with the shipped default."""
        self.history = [r.event for r in await self.journal.stream(ev.POLICY_STREAM)]  # type: ignore[misc]
        if self.history:
            self.current = _compiled(self.history[-1])
            if document is None:
                return self.current
        before = len(self.history)
        loaded = await self.load(document or policy.DEFAULT_DOCUMENT, by, "configured at start")
        if isinstance(loaded, list):
            raise ValueError("the configured policy rule set is invalid: " + "; ".join(loaded))
        if len(self.history) > before:
            # The system brought a rule set into force itself: audited like an operator's load.
            change = self.history[-1]
            record = AuditRecord(
                at=change.at,
                actor_id=by,
                actor_type=ActorType.SYSTEM,
                action_type="load_policy",
                resource_type="policy",
                resource_id=f"v{change.version}",
                outcome="ok",
                diff_summary={"version": str(change.version), "digest": change.digest},
                metadata={"reason": change.reason},
            )
            assert isinstance(await self.journal.audit([record]), Committed)
        return self.current

    async def load(self, document: bytes, by: str, reason: str) -> policy.RuleSet | list[str]:
        """Bring `document` into force as the next version (nothing changes if it is the one in
        force); its problems if it cannot be."""
        parsed = policy.parse_document(document)
        if isinstance(parsed, list):
            return parsed
        version = len(self.history) + 1
        compiled = policy.compile_rules(parsed, version)
        if isinstance(compiled, list):
            return compiled
        if self.history and self.history[-1].digest == compiled.digest:
            return self.current
        loaded = ev.RuleSetLoaded(
            at=self.clock.now_us(),
            version=version,
            digest=compiled.digest,
            document=policy.canonical(parsed).decode(),
            by=by,
            reason=reason,
        )
        outcome = await self.journal.append(ev.POLICY_STREAM, version - 1, [loaded])
        if isinstance(outcome, Rejected):
            assert outcome.result in (Result.version_conflict, Result.stream_exists), outcome
            return [f"another change took version {version} first: reload and retry"]
        assert isinstance(outcome, Committed), outcome
        self.history.append(loaded)
        self.current = compiled
        return compiled

    def version(self, number: int) -> ev.RuleSetLoaded | None:
        if 1 <= number <= len(self.history):
            return self.history[number - 1]
        return None


def _compiled(loaded: ev.RuleSetLoaded) -> policy.RuleSet:
    doc = msgspec.json.decode(loaded.document, type=policy.RuleSetDoc)
    compiled = policy.compile_rules(doc, loaded.version)
    assert isinstance(compiled, policy.RuleSet), compiled  # it compiled when it was loaded
    return compiled
