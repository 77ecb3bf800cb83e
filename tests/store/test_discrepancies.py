"""A correcting resolution is posted as the closing event's ledger lines, and those lines name the
transfer the case is about (a trial balance or an auditor following the transfer finds them);
`verify` rebuilds the same rows from the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import discrepancies as dc
from engine import events as ev
from engine import ledger
from engine.reconciliation import CERTAIN, Finding, Kind, Severity, Source
from engine.records import Committed
from engine.states import Route
from store.store import Store
from store.verify import verify
from tests.builders import T0, walk_to
from tests.store.helpers import fund, persist

pytestmark = pytest.mark.anyio


def fee_finding(transfer_id: str) -> Finding:
    return Finding(
        kind=Kind.FEE_MISMATCH, severity=Severity.MEDIUM, confidence=CERTAIN,
        source=Source.PROVIDER, transfer_id=transfer_id, evidence_ids=("ex_1",),
        expected={"fee": "0"}, actual={"fee": "500"},
    )  # fmt: skip


ADJUSTMENT = (
    dc.correction_entry(ledger.FX_POSITION, "USDC", 5_000000, 0),
    dc.correction_entry(ledger.SUSPENSE, "USDC", 0, 5_000000),
)


async def test_correction_lines_name_the_cases_transfer(store: Store, data_dir: Path) -> None:
    await fund(store, amount="5000.00")
    walk = walk_to("FIAT_SETTLED", n=1, route=Route.BANK)
    await persist(store, walk)
    tid = walk.s.transfer_id
    opened = dc.open_case("dc_fee", fee_finding(tid), T0)
    case = dc.evolve(None, opened)
    proposed = dc.resolve(case, dc.Resolution.RESOLVED, "fee per contract", ADJUSTMENT, "ana", T0)
    assert isinstance(proposed, ev.DiscrepancyResolutionProposed)
    case = dc.evolve(case, proposed)
    done = dc.decide_proposal(case, True, "", "bo", T0 + 1)
    assert isinstance(done, ev.DiscrepancyResolved)
    outcome = await store.append("dc_fee", 0, [opened, proposed, done])
    assert isinstance(outcome, Committed), outcome
    rows = await store.reader.fetchall(
        "SELECT transaction_id, account_id, debit_amount, credit_amount, entry_type"
        " FROM ledger_entries WHERE entry_type = 'ADJUSTMENT' ORDER BY leg"
    )
    assert rows == [
        (tid, ledger.FX_POSITION, 5_000000, 0, "ADJUSTMENT"),
        (tid, ledger.SUSPENSE, 0, 5_000000, "ADJUSTMENT"),
    ]
    assert (await verify(data_dir)).ok
