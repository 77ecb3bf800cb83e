"""Lookups the supervisors make for every report they keep (store/queries.py): they find what
they look for, and they search an index rather than read every row, so their cost does not grow
with the evidence kept."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from engine import events as ev
from engine import matching
from engine.ids import format_id
from engine.records import Committed
from store import queries, schema
from store.store import Store
from tests.builders import T0, walk_to
from tests.store.helpers import fund, persist

pytestmark = pytest.mark.anyio

RETURN_TX = "0x" + "ab" * 32


async def report_return(store: Store, n: int, transfer_id: str, return_tx: str) -> None:
    """A provider's report that it sent a payout's stablecoin back, in transaction `return_tx`."""
    raw = f'{{"trade":"t-{n}","return_tx_hash":"{return_tx}"}}'.encode()
    event = ev.EvidenceRecorded(
        at=T0,
        evidence_id=format_id("ex", 7_000 + n, n.to_bytes(10, "big")),
        provider="sim-provider-a",
        event_type=matching.PAYOUT_RETURNED,
        external_ref=f"t-{n}",
        occurred_at=T0,
        transfer_id=transfer_id,
        normalized={"return_tx_hash": return_tx},
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )
    outcome = await store.append(
        event.evidence_id, 0, [event], evidence_raw={event.evidence_id: raw}
    )
    assert isinstance(outcome, Committed), outcome


async def test_a_returned_payouts_transaction_names_its_transfer(store: Store) -> None:
    for n in range(5):
        await report_return(store, n, f"tr_{n}", "0x" + f"{n:02x}" * 32)
    await report_return(store, 9, "tr_9", RETURN_TX)
    assert await store.transfer_paid_by(RETURN_TX) == "tr_9"
    assert await store.transfer_paid_by("0x" + "cd" * 32) is None


async def test_many_transactions_are_looked_up_in_one_call_a_payment_before_a_return(
    store: Store,
) -> None:
    """The indexer asks once per answer of the node: each hash maps to its payment's transfer,
    or else to the transfer whose return it is; a hash of neither is absent."""
    await fund(store)
    walk = walk_to("RECONCILED", n=1)
    await persist(store, walk)
    payment = walk.s.txs[-1].tx_hash
    await report_return(store, 1, "tr_returned", RETURN_TX)
    # A report naming our own payment as a return does not take the payment from its transfer.
    await report_return(store, 2, "tr_other", payment)
    unknown = "0x" + "cd" * 32
    found = await store.transfers_paid_by([payment, RETURN_TX, unknown, payment])
    assert found == {payment: walk.s.transfer_id, RETURN_TX: "tr_returned"}
    assert await store.transfers_paid_by([]) == {}


@pytest.mark.parametrize("hashes", [1, 3])
async def test_the_lookup_by_transaction_searches_indexes_and_scans_no_table(
    store: Store, data_dir: Path, hashes: int
) -> None:
    db = sqlite3.connect(schema.db_path(data_dir))
    try:
        sql = queries.paid_by_sql(hashes)
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ["x"] * hashes)]
    finally:
        db.close()
    assert any("external_events_payout_return" in step for step in plan), plan
    assert any("transactions_on_chain_hash" in step for step in plan), plan
    assert not [step for step in plan if step.startswith("SCAN")], plan
