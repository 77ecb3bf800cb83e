"""Putting engine-built histories into a store."""

from __future__ import annotations

import hashlib

from engine import events as ev
from engine.ids import format_id
from engine.records import Committed
from store.store import Store
from tests.builders import T0, Walk, deposit_event


async def fund(store: Store, client: str = "acme", amount: str = "1000.00", n: int = 1) -> None:
    deposit = deposit_event(client, amount, n)
    outcome = await store.append(deposit.deposit_id, 0, [deposit])
    assert isinstance(outcome, Committed), outcome


async def persist(store: Store, walk: Walk, *, one_by_one: bool = True) -> None:
    """Append a walk's events as its actor would: one decision (here: one event) at a time."""
    stream = walk.s.transfer_id
    if not one_by_one:
        outcome = await store.append(stream, 0, walk.events)
        assert isinstance(outcome, Committed), outcome
        return
    for version, event in enumerate(walk.events):
        outcome = await store.append(stream, version, [event])
        assert isinstance(outcome, Committed), (ev.event_type(event), outcome)


def evidence(n: int, ref: str = "0xabc") -> tuple[ev.EvidenceRecorded, bytes]:
    """A chain indexer's report of a transfer log, raw and anchored."""
    raw = f'{{"tx":"{ref}","n":{n}}}'.encode()
    event = ev.EvidenceRecorded(
        at=T0,
        evidence_id=format_id("ex", 4_000 + n, n.to_bytes(10, "big")),
        provider="chain-indexer",
        event_type="transfer_log",
        external_ref=ref,
        occurred_at=T0 - 1_000,
        normalized={"amount": "1.00"},
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )
    return event, raw


async def record_evidence(store: Store, n: int, ref: str = "0xabc") -> ev.EvidenceRecorded:
    event, raw = evidence(n, ref)
    outcome = await store.append(
        event.evidence_id, 0, [event], evidence_raw={event.evidence_id: raw}
    )
    assert isinstance(outcome, Committed), outcome
    return event
