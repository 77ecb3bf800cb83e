"""The matcher (engine.reconciliation): each stage and each kind of Series 5's taxonomy, decided
on small hand-made cases, then a seeded noisy workload whose every injected difference must be
found, with the right kind, and nothing else."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from engine.reconciliation import (
    CERTAIN,
    FUZZY_CONFIDENCE,
    FUZZY_EXACT_CONFIDENCE,
    SECONDARY_CONFIDENCE,
    Expected,
    Finding,
    Kind,
    Method,
    Observed,
    Severity,
    Source,
    format_confidence,
    parse_confidence,
    reconcile,
)
from sim.recon_noise import FINDING_OF, generate

T0 = 1_800_000_000_000_000
HOUR = 3_600_000_000

PAYOUT = Expected(
    transfer_id="tr_1", source=Source.PROVIDER, key="trade-1", amount=1_725_00, currency="MXN",
    at=T0, due=T0 + HOUR, fee=0, rate=17_25000000, memo="tr_1",
)  # fmt: skip
CREDIT = Expected(
    transfer_id="tr_1", source=Source.BANK, key="SPEI1", amount=1_725_00, currency="MXN", at=T0,
    due=T0 + HOUR, counterparty="032180000118359719", memo="invoice 7",
)  # fmt: skip


def report(e: Expected, evidence_id: str = "ex_1", **changes: Any) -> Observed:
    seen = Observed(
        evidence_id=evidence_id, source=e.source, key=e.key, amount=e.amount,
        currency=e.currency, at=e.at + 5_000_000, counterparty=e.counterparty, fee=e.fee,
        rate=e.rate,
    )  # fmt: skip
    return msgspec.structs.replace(seen, **changes)


def only_finding(expected: list[Expected], observed: list[Observed], now: int = T0) -> Finding:
    outcome = reconcile(expected, observed, now)
    assert len(outcome.findings) == 1, outcome.findings
    return outcome.findings[0]


def test_a_primary_key_match_that_agrees_is_certain_and_nothing_else() -> None:
    outcome = reconcile([PAYOUT], [report(PAYOUT)], T0)
    assert outcome.findings == [] and outcome.waiting == []
    [match] = outcome.matches
    assert (match.method, match.confidence, match.evidence_id) == (Method.PRIMARY, CERTAIN, "ex_1")


@pytest.mark.parametrize(
    ("changes", "kind", "severity"),
    [
        ({"amount": 1_724_00}, Kind.AMOUNT_MISMATCH, Severity.HIGH),
        ({"currency": "USD"}, Kind.AMOUNT_MISMATCH, Severity.HIGH),
        ({"fee": 15_00, "amount": 1_710_00}, Kind.FEE_MISMATCH, Severity.MEDIUM),
        # 1% off the quoted rate: beyond the 50 bp slippage tolerance, inside ten times it.
        ({"rate": 17_07750000, "amount": 1_707_75}, Kind.FX_MISMATCH, Severity.MEDIUM),
        # 6% off: beyond ten times the tolerance.
        ({"rate": 16_21500000}, Kind.FX_MISMATCH, Severity.HIGH),
    ],
)
def test_a_difference_under_a_primary_key_is_classified_never_matched(
    changes: dict[str, Any], kind: Kind, severity: Severity
) -> None:
    outcome = reconcile([PAYOUT], [report(PAYOUT, **changes)], T0)
    assert outcome.matches == []
    [finding] = outcome.findings
    assert (finding.kind, finding.severity, finding.confidence) == (kind, severity, CERTAIN)
    assert finding.transfer_id == "tr_1" and finding.evidence_ids == ("ex_1",)
    assert finding.expected["amount"] == "172500"


def test_slippage_inside_the_tolerance_is_expected() -> None:
    inside = report(PAYOUT, rate=17_25000000 * 9951 // 10000)  # 49 bp off
    assert [m.method for m in reconcile([PAYOUT], [inside], T0).matches] == [Method.PRIMARY]


def test_the_tolerance_the_ledger_judged_the_fill_by_is_the_one_reconciliation_uses() -> None:
    """A corridor configured tighter than the currency's default: the ledger booked a 40 bp fill
    to suspense under 30 bp, so reconciliation calls it an fx_mismatch, not expected slippage."""
    seen = report(PAYOUT, rate=17_25000000 * 9960 // 10000)  # 40 bp off
    assert reconcile([PAYOUT], [seen], T0).findings == [], "under the default 50 bp"
    tight = msgspec.structs.replace(PAYOUT, fx_bps=30)
    assert only_finding([tight], [seen]).kind is Kind.FX_MISMATCH


def test_the_same_event_reported_twice_is_a_low_duplicate_and_the_first_still_matches() -> None:
    first, again = report(CREDIT, "ex_1"), report(CREDIT, "ex_2")
    outcome = reconcile([CREDIT], [first, again], T0)
    assert [m.evidence_id for m in outcome.matches] == ["ex_1"]
    [dup] = outcome.findings
    assert (dup.kind, dup.severity, dup.evidence_ids) == (
        Kind.DUPLICATE_EXTERNAL_EVENT, Severity.LOW, ("ex_1", "ex_2"),
    )  # fmt: skip


def test_a_second_different_report_under_the_same_key_is_a_high_duplicate() -> None:
    outcome = reconcile(
        [CREDIT], [report(CREDIT, "ex_1"), report(CREDIT, "ex_2", amount=99_00)], T0
    )
    assert [m.evidence_id for m in outcome.matches] == ["ex_1"]
    [dup] = outcome.findings
    assert (dup.kind, dup.severity) == (Kind.DUPLICATE_EXTERNAL_EVENT, Severity.HIGH)


def test_without_a_key_an_exact_amount_in_the_window_is_a_secondary_match_for_review() -> None:
    unkeyed = report(CREDIT, key="", at=T0 + 2 * HOUR)
    finding = only_finding([CREDIT], [unkeyed])
    assert (finding.kind, finding.confidence) == (Kind.UNCONFIRMED_MATCH, SECONDARY_CONFIDENCE)
    assert format_confidence(finding.confidence) == "0.80"


def test_a_secondary_candidate_outside_the_window_or_for_another_account_is_not_taken() -> None:
    # A day and an hour late, same account: too late for a secondary match, so only the fuzzy
    # stage takes it, with less confidence. Another account, no memo: nothing pairs it.
    late = report(CREDIT, key="", at=T0 + 25 * HOUR)
    other = report(CREDIT, "ex_2", key="", counterparty="002010077777777771")
    outcome = reconcile([CREDIT], [late, other], T0)
    assert {(f.kind, f.confidence, f.evidence_ids) for f in outcome.findings} == {
        (Kind.UNCONFIRMED_MATCH, FUZZY_EXACT_CONFIDENCE, ("ex_1",)),
        (Kind.EXTERNAL_ONLY, CERTAIN, ("ex_2",)),
    }


@pytest.mark.parametrize(
    ("amount", "confidence"), [(1_725_00, FUZZY_EXACT_CONFIDENCE), (1_724_99, FUZZY_CONFIDENCE)]
)
def test_a_memo_naming_our_reference_is_a_fuzzy_match(amount: int, confidence: int) -> None:
    # Another account, but the memo carries the transfer's reference; the amount is inside
    # the 1 bp fuzzy tolerance (on 1,725.00 MXN: 17 cents).
    seen = report(CREDIT, key="", counterparty="x", memo="pago INVOICE 7", amount=amount)
    finding = only_finding([CREDIT], [seen])
    assert (finding.kind, finding.confidence) == (Kind.UNCONFIRMED_MATCH, confidence)


def test_nothing_before_the_due_time_is_waiting_and_after_it_is_missing_evidence() -> None:
    assert reconcile([CREDIT], [], T0).waiting == [CREDIT]
    finding = only_finding([CREDIT], [], now=CREDIT.due)
    assert (finding.kind, finding.severity, finding.actual) == (
        Kind.MISSING_EVIDENCE, Severity.MEDIUM, {},
    )  # fmt: skip


def test_an_unclaimed_report_is_external_only_and_an_outflow_is_critical() -> None:
    inflow = Observed(
        evidence_id="ex_9", source=Source.BANK, key="DEP9", amount=5_00, currency="USD", at=T0
    )
    outflow = msgspec.structs.replace(inflow, evidence_id="ex_10", outflow=True)
    claimed = msgspec.structs.replace(inflow, evidence_id="ex_11", transfer_id="tr_2")
    outcome = reconcile([], [inflow, outflow, claimed], T0)
    assert {(f.evidence_ids, f.severity) for f in outcome.findings} == {
        (("ex_9",), Severity.HIGH),
        (("ex_10",), Severity.CRITICAL),
    }


def test_a_report_is_used_once() -> None:
    twin = msgspec.structs.replace(CREDIT, transfer_id="tr_2", key="SPEI2")
    unkeyed = report(CREDIT, key="")
    outcome = reconcile([CREDIT, twin], [unkeyed], T0)
    assert [f.transfer_id for f in outcome.findings] == ["tr_1"]
    assert outcome.waiting == [twin]


def test_confidence_text_round_trips() -> None:
    assert [parse_confidence(t) for t in ("0.80", "1.00", "0.5", "1.01", "x")] == [
        80, 100, 50, None, None,
    ]  # fmt: skip


@pytest.mark.parametrize("run", range(3))
def test_every_injected_difference_is_found_with_its_kind_and_nothing_else(
    run: int, run_seed: int
) -> None:
    seed = random.Random(run_seed * 3 + run).randrange(2**32)
    print(f"seed={seed}")
    work = generate(2_000, noise=0.2, seed=seed)
    outcome = reconcile(work.expected, work.observed, work.now)
    found: dict[Kind, int] = {}
    for f in outcome.findings:
        found[f.kind] = found.get(f.kind, 0) + 1
    assert found == {FINDING_OF[k]: n for k, n in work.injected.items()}, seed
    assert outcome.waiting == []
    damaged = sum(work.injected.values())
    # Every report of an undamaged transfer matched on its primary key.
    assert len(outcome.matches) >= len(work.expected) - 3 * damaged
