"""The control book: the freezes and halts in force, folded from the journal's "controls" stream
and switched by operators (`System.control`). The folded value lives in the context
(`ControlState`) so every actor's pre-chain gate reads the same one."""

from __future__ import annotations

import dataclasses

from engine import controls
from engine import events as ev
from engine.ports import Clock, Journal
from engine.records import Committed, Rejected
from engine.results import Result


@dataclasses.dataclass(slots=True)
class ControlState:
    current: controls.Controls = dataclasses.field(default_factory=controls.Controls)


class ControlBook:
    def __init__(self, journal: Journal, clock: Clock, state: ControlState) -> None:
        self.journal = journal
        self.clock = clock
        self.state = state
        self.version = 0
        # The latest change per (scope, target), for answering what is in force and since when.
        self.latest: dict[tuple[str, str], ev.ControlChanged] = {}

    async def open(self) -> None:
        records = await self.journal.stream(ev.CONTROLS_STREAM)
        folded = controls.Controls()
        for record in records:
            change = record.event
            assert isinstance(change, ev.ControlChanged)
            folded = controls.applied(
                folded, controls.Scope(change.scope), change.target, change.on
            )
            self.latest[(change.scope, change.target)] = change
        self.state.current = folded
        self.version = len(records)

    async def switch(
        self, scope: controls.Scope, target: str, on: bool, by: str, reason: str
    ) -> ev.ControlChanged:
        """Journal the change, then put it in force; switching to the state already in force
        changes nothing and answers the change that put it there (or this one, unjournaled, if
        it never was)."""
        for _ in range(3):
            if controls.active(self.state.current, scope, target) == on:
                found = self.latest.get((scope.value, target))
                return found or self._change(scope, target, on, by, reason)
            change = self._change(scope, target, on, by, reason)
            outcome = await self.journal.append(ev.CONTROLS_STREAM, self.version, [change])
            if isinstance(outcome, Committed):
                self.version += 1
                self.latest[(scope.value, target)] = change
                self.state.current = controls.applied(self.state.current, scope, target, on)
                return change
            assert isinstance(outcome, Rejected), outcome
            assert outcome.result in (Result.version_conflict, Result.stream_exists), outcome
            await self.open()  # someone else switched something: fold again and retry
        raise RuntimeError("the controls stream kept changing under this switch")

    def _change(
        self, scope: controls.Scope, target: str, on: bool, by: str, reason: str
    ) -> ev.ControlChanged:
        return ev.ControlChanged(
            at=self.clock.now_us(), scope=scope.value, target=target, on=on, by=by, reason=reason
        )
