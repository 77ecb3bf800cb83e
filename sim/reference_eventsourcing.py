"""The `eventsourcing` library persisting a transfer's eight-event lifecycle to SQLite: the
reference `stablerail bench lifecycle` sets the engine against.

One aggregate per transfer, one event per step, each carrying the payload the engine journaled for
that step, and `save` after every step, as a command handler does: each step is durable before
the next. The library's SQLite recorder runs in WAL mode with synchronous=FULL (checked here), the
engine's durability. Nothing is read back between steps (the aggregate stays in memory, as the
engine's actor keeps its state), which spares the library work the engine does not skip."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.sqlite import SQLiteApplicationRecorder


class Transfer(Aggregate):
    @event("TransferCreated")
    def __init__(self, payload: str) -> None:
        self.steps = [payload]

    @event("QuoteCaptured")
    def capture_quote(self, payload: str) -> None:
        self.steps.append(payload)

    @event("FundsLocked")
    def lock_funds(self, payload: str) -> None:
        self.steps.append(payload)

    @event("OnChainSubmitted")
    def submit(self, payload: str) -> None:
        self.steps.append(payload)

    @event("EvidenceRecorded")
    def record_evidence(self, payload: str) -> None:
        self.steps.append(payload)

    @event("OnChainConfirmed")
    def confirm(self, payload: str) -> None:
        self.steps.append(payload)

    @event("Reconciled")
    def reconcile(self, payload: str) -> None:
        self.steps.append(payload)


STEPS = (
    Transfer.capture_quote,
    Transfer.lock_funds,
    Transfer.submit,
    Transfer.record_evidence,
    Transfer.confirm,
    Transfer.record_evidence,  # the chain indexer's log
    Transfer.reconcile,
)


class EventsourcingReference:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.app: Application[UUID] = Application(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
        )
        recorder = self.app.recorder
        assert isinstance(recorder, SQLiteApplicationRecorder)
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 2, "synchronous=FULL, as the engine's store"

    def lifecycle(self, payloads: list[str]) -> None:
        """Create the transfer with the first payload, then one saved step per further one."""
        assert len(payloads) == len(STEPS) + 1
        transfer = Transfer(payloads[0])
        self.app.save(transfer)
        for step, payload in zip(STEPS, payloads[1:], strict=True):
            step(transfer, payload)
            self.app.save(transfer)

    def close(self) -> None:
        self.app.close()
