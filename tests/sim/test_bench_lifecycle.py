"""The lifecycle benchmark runs end to end and its parts measure what they claim: the engine
drives every transfer to RECONCILED, the raw reference writes exactly the engine's journal and
ledger rows, the eventsourcing reference persists eight events per transfer, and the memory
child reports a store of passivated transfers with no live actor. (Its figures come from
`stablerail bench lifecycle`; no test asserts a speed.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import Application

from engine.rails import RailError, SignRequest
from sim.bench_lifecycle import (
    EVENTS_PER_LIFECYCLE,
    Engine,
    _lifecycle_payloads,
    _raw_round,
    bench_lifecycle,
)
from sim.instant import DigestCustody, decode_digest
from sim.reference_eventsourcing import EventsourcingReference
from store.bench import RawRows
from store.schema import db_path

pytestmark = pytest.mark.anyio


async def test_a_small_run_reports_every_figure() -> None:
    report = await bench_lifecycle(
        transfers=16, eventsourcing_transfers=4, concurrency=4, rounds=2, passivated=0
    )
    assert report.events_per_lifecycle == EVENTS_PER_LIFECYCLE
    for runs in (
        report.engine_runs,
        report.engine_signed_runs,
        report.raw_runs,
        report.eventsourcing_runs,
    ):
        assert len(runs) == 2 and all(r > 0 for r in runs)
    engine, es, raw = (
        report.engine_lifecycles_per_s,
        report.eventsourcing_lifecycles_per_s,
        report.raw_lifecycles_per_s,
    )
    assert abs(report.vs_eventsourcing - engine / es) < 0.01
    assert abs(report.vs_raw - engine / raw) < 0.001
    # Journal rows plus ledger lines: more than the eight journal rows alone.
    assert report.raw_rows_per_lifecycle > EVENTS_PER_LIFECYCLE
    assert report.memory is None


@pytest.mark.parametrize("signatures", [False, True])
async def test_the_engine_round_reconciles_every_transfer_and_raw_rewrites_its_rows(
    tmp_path: Path, signatures: bool
) -> None:
    async with Engine.open(tmp_path / "engine", signatures=signatures) as engine:
        first, _ = await engine.store.head()
        await engine.lifecycles(10, 3)
        rows = await engine.store.reader.fetchall(
            "SELECT status, count(*) FROM transactions GROUP BY status"
        )
    assert rows == [("RECONCILED", 10)]
    found = RawRows.read(db_path(tmp_path / "engine"), after_seq=first)
    payloads = _lifecycle_payloads(found)
    assert len(payloads) == 10 and {len(p) for p in payloads} == {EVENTS_PER_LIFECYCLE}
    assert await _raw_round(tmp_path / "raw", found, 10, 3) > 0
    copy = sqlite3.connect(db_path(tmp_path / "raw"))
    original = sqlite3.connect(db_path(tmp_path / "engine"))
    try:
        for sql in (
            "SELECT * FROM journal WHERE seq > ? ORDER BY seq",
            "SELECT * FROM ledger_entries WHERE journal_seq > ? ORDER BY journal_seq, leg",
        ):
            assert (
                copy.execute(sql, (first,)).fetchall() == original.execute(sql, (first,)).fetchall()
            )
    finally:
        copy.close()
        original.close()


def test_the_eventsourcing_reference_persists_eight_events_per_transfer(tmp_path: Path) -> None:
    path = tmp_path / "es.sqlite3"
    reference = EventsourcingReference(path)
    payloads = [
        [f'{{"step": {n}, "of": {t}}}' for n in range(EVENTS_PER_LIFECYCLE)] for t in range(3)
    ]
    for lifecycle in payloads:
        reference.lifecycle(lifecycle)
    reference.close()
    again: Application[UUID] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        notifications = again.recorder.select_notifications(start=None, limit=100)
        assert len(notifications) == 3 * EVENTS_PER_LIFECYCLE
        assert notifications[0].topic.endswith("Transfer.TransferCreated")
        last = notifications[EVENTS_PER_LIFECYCLE - 1]
        assert last.topic.endswith("Transfer.Reconciled")
    finally:
        again.close()


async def test_digest_custody_round_trips_through_the_node() -> None:
    custody = DigestCustody(1)
    request = SignRequest(
        chain="ethereum",
        to_address="0x" + "B0" * 20,
        currency="USDC",
        amount=1_000,
        nonce=4,
        max_fee_per_gas=30 * 10**9,
    )
    signed = await custody.sign(request)
    on_chain = decode_digest(signed.raw)
    assert (on_chain.tx_hash, on_chain.sender, on_chain.nonce) == (
        signed.tx_hash,
        custody.address("ethereum"),
        4,
    )
    assert (on_chain.to_address, on_chain.amount, on_chain.currency) == (
        "0x" + "b0" * 20,
        1_000,
        "USDC",
    )
    for bad in (signed.raw[:-4], "0xdeadbeef"):
        with pytest.raises(RailError):
            decode_digest(bad)
