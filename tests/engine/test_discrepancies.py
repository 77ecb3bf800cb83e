"""Discrepancy cases (engine.discrepancies): the life of a case, the two-person rule for a
resolution that moves money, what a correction may post, aging and SLAs."""

from __future__ import annotations

import pytest

from engine import discrepancies as dc
from engine import events as ev
from engine import ledger
from engine.reconciliation import CERTAIN, Finding, Kind, Severity, Source
from engine.results import Result

T0 = 1_800_000_000_000_000
HOUR = 3_600_000_000

FINDING = Finding(
    kind=Kind.EXTERNAL_ONLY, severity=Severity.HIGH, confidence=CERTAIN, source=Source.BANK,
    transfer_id=None, evidence_ids=("ex_1",), expected={},
    actual={"amount": "50000", "currency": "USD"},
)  # fmt: skip
WRITE_OFF = (
    dc.correction_entry(ledger.bank("bank-us"), "USD", 500_00, 0),
    dc.correction_entry(ledger.SUSPENSE, "USD", 0, 500_00),
)


def opened() -> dc.Discrepancy:
    return dc.evolve(None, dc.open_case("dc_1", FINDING, T0))


def step(case: dc.Discrepancy, event: object) -> dc.Discrepancy:
    assert not isinstance(event, Result), event
    return dc.evolve(case, event)  # type: ignore[arg-type]


def test_a_case_opens_with_its_sla_and_is_worked_to_a_close() -> None:
    case = opened()
    assert (case.status, case.severity, case.sla_deadline) == (
        dc.Status.OPEN, "HIGH", T0 + 24 * HOUR,
    )  # fmt: skip
    case = step(case, dc.assign(case, "ana", "ana", T0 + 1))
    case = step(case, dc.note(case, "asked the bank for the wire details", "ana", T0 + 2))
    assert (case.status, case.owner, len(case.notes)) == (dc.Status.INVESTIGATING, "ana", 1)
    case = step(
        case, dc.resolve(case, dc.Resolution.FALSE_POSITIVE, "test wire", (), "ana", T0 + 3)
    )
    assert (case.status, case.resolved_at, case.version) == (dc.Status.FALSE_POSITIVE, T0 + 3, 4)
    assert dc.note(case, "late", "ana", T0 + 4) is Result.discrepancy_closed
    assert dc.resolve(case, dc.Resolution.RESOLVED, "x", (), "bo", T0 + 4) is (
        Result.discrepancy_closed
    )


def test_a_correction_waits_for_a_second_operator_and_posts_when_approved() -> None:
    case = opened()
    proposed = dc.resolve(case, dc.Resolution.WRITTEN_OFF, "unknown payer", WRITE_OFF, "ana", T0)
    assert isinstance(proposed, ev.DiscrepancyResolutionProposed)
    assert ev.entries_of(proposed) == ()  # nothing is posted by a proposal
    case = step(case, proposed)
    assert case.status is dc.Status.OPEN and case.proposal is not None
    assert dc.resolve(case, dc.Resolution.RESOLVED, "again", (), "bo", T0) is (
        Result.discrepancy_proposal_pending
    )
    assert dc.decide_proposal(case, True, "", "ana", T0 + 1) is Result.maker_cannot_approve
    done = dc.decide_proposal(case, True, "", "bo", T0 + 1)
    assert isinstance(done, ev.DiscrepancyResolved)
    assert (done.by, done.approved_by, ev.entries_of(done)) == ("ana", "bo", WRITE_OFF)
    assert done.transfer_id == case.transfer_id
    case = step(case, done)
    assert (case.status, case.correction) == (dc.Status.WRITTEN_OFF, WRITE_OFF)


def test_a_rejected_proposal_leaves_the_case_open_with_a_note() -> None:
    case = step(
        opened(), dc.resolve(opened(), dc.Resolution.WRITTEN_OFF, "x", WRITE_OFF, "ana", T0)
    )
    assert dc.decide_proposal(case, False, "", "bo", T0) is Result.command_malformed
    case = step(case, dc.decide_proposal(case, False, "wrong account", "bo", T0 + 1))
    assert case.proposal is None and not case.closed
    assert case.notes[-1].text == "proposal rejected: wrong account"
    assert dc.decide_proposal(case, True, "", "bo", T0 + 2) is Result.discrepancy_no_proposal


@pytest.mark.parametrize(
    ("resolution", "entries", "problem"),
    [
        (dc.Resolution.FALSE_POSITIVE, WRITE_OFF, "a false positive moves no money"),
        (dc.Resolution.WRITTEN_OFF, (), "a write-off posts the difference to suspense"),
        (
            dc.Resolution.RESOLVED,
            (
                dc.correction_entry(ledger.client_held("acme"), "USD", 1, 0),
                dc.correction_entry(ledger.SUSPENSE, "USD", 0, 1),
            ),
            "client:acme:held cannot be corrected by hand",
        ),
        (dc.Resolution.RESOLVED, WRITE_OFF[:1], "do not balance"),
    ],
)
def test_a_correction_that_cannot_be_posted_is_refused(
    resolution: dc.Resolution, entries: ledger.Entries, problem: str
) -> None:
    found = dc.correction_problem(resolution, entries)
    assert found is not None and problem in found
    assert dc.resolve(opened(), resolution, "n", entries, "ana", T0) is Result.correction_invalid


def test_the_pipeline_closes_without_money_and_aging_buckets_follow_series_2() -> None:
    closed = step(opened(), dc.close_by_pipeline(opened(), "the bank report arrived", T0 + 5))
    assert (closed.status, closed.resolved_by, closed.correction) == (
        dc.Status.RESOLVED, dc.SYSTEM_ACTOR, (),
    )  # fmt: skip
    assert [dc.bucket(h * HOUR) for h in (0, 23, 24, 71, 72, 500)] == [
        dc.Bucket.UNDER_24H, dc.Bucket.UNDER_24H, dc.Bucket.UNDER_72H, dc.Bucket.UNDER_72H,
        dc.Bucket.OVER_72H, dc.Bucket.OVER_72H,
    ]  # fmt: skip
    case = opened()
    assert not dc.breached(case, case.sla_deadline - 1) and dc.breached(case, case.sla_deadline)
    assert not dc.breached(closed, closed.sla_deadline + 1)
