"""Three-way matching (Series 5): what the ledger says each outside source must have seen, against
what the sources reported, classified into matches and discrepancies in one pass.

The ledger side is a list of `Expected` items (one per source a transfer's route needs: the chain
transaction, the provider's payout, the receiving bank's credit); the outside side is a list of
`Observed` items (evidence normalized into one schema, Series 8). Matching runs in three stages,
each only over what the stages before left unmatched:

  primary    the source's own identifier (tx hash in its block, bank reference, provider trade id)
             -> confidence 1.00; the pair is certain, so any difference in amount, fee or FX rate
             is a discrepancy of that kind, never a match
  secondary  same source, currency and exact amount, within the currency's time window, with the
             same counterparty when both sides name one -> 0.80
  fuzzy      same source and currency, amount within the currency's fuzzy tolerance (basis
             points), and the memo carries our reference or the counterparty agrees -> 0.60 with
             the exact amount, 0.50 without

Only primary matches reconcile by themselves; secondary and fuzzy ones become `unconfirmed_match`
cases for an operator. Observed items nothing claims are `external_only` (an outflow from our own
wallet is CRITICAL: it may be unauthorized); a second report of what a primary key already matched
is a `duplicate_external_event`; an expected item with nothing after its due time is
`missing_evidence`; before it, the item is waiting, never "reconciled".

Cost is linear: every stage is a dictionary lookup per item (the fuzzy stage bisects one sorted
list per group), and nothing is compared pairwise. Amounts are integer minor units throughout.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable

import msgspec

from engine import limits
from engine.money import beyond_bps

HOUR_US = 3_600 * 1_000_000


class Source(enum.StrEnum):
    CHAIN = "chain"
    BANK = "bank"
    PROVIDER = "provider"


class Kind(enum.StrEnum):
    """Series 5's discrepancy taxonomy, plus the review of a match that is not certain and the
    balance-level drift between a ledger account and the source that holds it."""

    MISSING_EVIDENCE = "missing_evidence"
    EXTERNAL_ONLY = "external_only"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    FX_MISMATCH = "fx_mismatch"
    DUPLICATE_EXTERNAL_EVENT = "duplicate_external_event"
    UNCONFIRMED_MATCH = "unconfirmed_match"
    BALANCE_DRIFT = "balance_drift"


class Severity(enum.StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Method(enum.StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    FUZZY = "fuzzy"


# Confidence in hundredths (Series 5's DECIMAL(3,2)): only CERTAIN reconciles by itself.
CERTAIN = 100
SECONDARY_CONFIDENCE = 80
FUZZY_EXACT_CONFIDENCE = 60
FUZZY_CONFIDENCE = 50


class Tolerance(msgspec.Struct, frozen=True, kw_only=True):
    """How far two reports of one movement may differ in a currency and still be compared.

    `fuzzy_bps`: the amount difference a fuzzy match accepts (Series 5: ±0.01% = 1 bp), at
    least one minor unit. `fx_bps`: how far a provider's fill rate may be from the quoted rate
    before it is an FX mismatch (slippage inside it is expected). `window_us`: how far apart in
    time a secondary match's two sides may be."""

    fuzzy_bps: int = 1
    fx_bps: int = 50
    window_us: int = HOUR_US

    def fuzzy_room(self, amount: int) -> int:
        return max(1, amount * self.fuzzy_bps // 10_000)


DEFAULT_TOLERANCE = Tolerance()
TOLERANCES: dict[str, Tolerance] = {
    "USD": Tolerance(fuzzy_bps=1, fx_bps=50, window_us=24 * HOUR_US),
    "USDC": Tolerance(fuzzy_bps=1, fx_bps=50, window_us=HOUR_US),
    "MXN": Tolerance(fuzzy_bps=1, fx_bps=50, window_us=24 * HOUR_US),
}


def tolerance(currency: str) -> Tolerance:
    return TOLERANCES.get(currency, DEFAULT_TOLERANCE)


class Expected(msgspec.Struct, frozen=True, kw_only=True):
    """What the ledger says one source must report for one transfer. `key` is the source's own
    identifier when we know it ("" when we do not yet: the match falls to the later stages);
    `fee` and `rate` are checked when both sides state them (a provider's report); `due` is when
    the report is late (missing evidence after it)."""

    transfer_id: str
    source: Source
    key: str
    amount: int
    currency: str
    at: int
    due: int
    counterparty: str = ""
    memo: str = ""
    fee: int | None = None
    rate: int | None = None
    # The slippage tolerance the ledger judged the fill by (None: the currency's fx_bps).
    fx_bps: int | None = None


class Observed(msgspec.Struct, frozen=True, kw_only=True):
    """One normalized outside report (an external_events row). `transfer_id` is set when the
    report was recorded for a transfer (a watcher's own poll); `outflow` when value left one of our
    accounts or wallets."""

    evidence_id: str
    source: Source
    key: str
    amount: int
    currency: str
    at: int
    counterparty: str = ""
    memo: str = ""
    fee: int | None = None
    rate: int | None = None
    transfer_id: str | None = None
    outflow: bool = False


class Match(msgspec.Struct, frozen=True, kw_only=True):
    transfer_id: str
    source: Source
    evidence_id: str
    method: Method
    confidence: int


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """A discrepancy found: what kind, how bad, how sure, and both sides' values as text (amounts
    in minor units)."""

    kind: Kind
    severity: Severity
    confidence: int
    source: Source
    transfer_id: str | None
    evidence_ids: tuple[str, ...]
    expected: dict[str, str]
    actual: dict[str, str]

    @property
    def case_key(self) -> str:
        """One open case per (kind, source, subject): the pipeline finds the same difference every
        round and must not open it twice."""
        subject = self.transfer_id or ",".join(self.evidence_ids)
        return f"{self.kind}:{self.source}:{subject}"


class Outcome(msgspec.Struct, kw_only=True):
    matches: list[Match]
    findings: list[Finding]
    # Expected items with no report yet, still inside their due time.
    waiting: list[Expected]


def severity_of(kind: Kind, *, outflow: bool = False, big_fx: bool = False) -> Severity:
    match kind:
        case Kind.EXTERNAL_ONLY:
            return Severity.CRITICAL if outflow else Severity.HIGH
        case Kind.AMOUNT_MISMATCH | Kind.BALANCE_DRIFT:
            return Severity.HIGH
        case Kind.FX_MISMATCH:
            return Severity.HIGH if big_fx else Severity.MEDIUM
        case Kind.FEE_MISMATCH | Kind.MISSING_EVIDENCE | Kind.UNCONFIRMED_MATCH:
            return Severity.MEDIUM
        case Kind.DUPLICATE_EXTERNAL_EVENT:
            return Severity.HIGH
    raise AssertionError(kind)


def describe_expected(e: Expected) -> dict[str, str]:
    found = {"key": e.key, "amount": str(e.amount), "currency": e.currency}
    if e.counterparty:
        found["counterparty"] = e.counterparty
    if e.fee is not None:
        found["fee"] = str(e.fee)
    if e.rate is not None:
        found["rate"] = str(e.rate)
    return found


def describe_observed(o: Observed) -> dict[str, str]:
    found = {
        "evidence_id": o.evidence_id,
        "key": o.key,
        "amount": str(o.amount),
        "currency": o.currency,
    }
    if o.counterparty:
        found["counterparty"] = o.counterparty
    if o.memo:
        found["memo"] = o.memo
    if o.fee is not None:
        found["fee"] = str(o.fee)
    if o.rate is not None:
        found["rate"] = str(o.rate)
    if o.outflow:
        found["direction"] = "out"
    return found


def compare(e: Expected, o: Observed, confidence: int) -> Finding | None:
    """The first difference between two sides known to describe the same movement, or None.
    FX is checked before the amount (a fill beyond tolerance explains the amount it moved), the
    fee before the amount (a fee taken out changes what arrived)."""
    tol = tolerance(e.currency)
    fx_bps = tol.fx_bps if e.fx_bps is None else e.fx_bps
    kind: Kind | None = None
    big_fx = False
    if e.rate is not None and o.rate is not None and beyond_bps(e.rate, o.rate, fx_bps):
        kind = Kind.FX_MISMATCH
        big_fx = beyond_bps(e.rate, o.rate, fx_bps * 10)
    elif e.fee is not None and o.fee is not None and e.fee != o.fee:
        kind = Kind.FEE_MISMATCH
    elif e.amount != o.amount or e.currency != o.currency:
        kind = Kind.AMOUNT_MISMATCH
    if kind is None:
        return None
    return Finding(
        kind=kind,
        severity=severity_of(kind, big_fx=big_fx),
        confidence=confidence,
        source=e.source,
        transfer_id=e.transfer_id,
        evidence_ids=(o.evidence_id,),
        expected=describe_expected(e),
        actual=describe_observed(o),
    )


def _same_report(a: Observed, b: Observed) -> bool:
    return (a.key, a.amount, a.currency, a.counterparty, a.fee, a.rate) == (
        b.key,
        b.amount,
        b.currency,
        b.counterparty,
        b.fee,
        b.rate,
    )


class _FuzzyIndex:
    """Unmatched observations per (source, currency), sorted by amount, for range lookups."""

    def __init__(self, observed: Iterable[Observed]) -> None:
        groups: dict[tuple[Source, str], list[tuple[int, int, Observed]]] = {}
        for n, o in enumerate(observed):
            groups.setdefault((o.source, o.currency), []).append((o.amount, n, o))
        for rows in groups.values():
            rows.sort(key=lambda r: (r[0], r[1]))
        self.groups = groups
        self.amounts = {k: [r[0] for r in rows] for k, rows in groups.items()}

    def around(self, source: Source, currency: str, low: int, high: int) -> list[Observed]:
        rows = self.groups.get((source, currency))
        if not rows:
            return []
        amounts = self.amounts[(source, currency)]
        start = bisect.bisect_left(amounts, low)
        end = bisect.bisect_right(amounts, high)
        return [r[2] for r in rows[start : min(end, start + limits.reconcile_fuzzy_scan_max)]]


def reconcile(expected: Iterable[Expected], observed: Iterable[Observed], now: int) -> Outcome:
    """Match `expected` against `observed` (each in a deterministic order; ties go to the
    earlier item) as of `now`."""
    expected = list(expected)
    observed = list(observed)
    matches: list[Match] = []
    findings: list[Finding] = []
    used: set[str] = set()
    by_key: dict[tuple[Source, str], list[Observed]] = {}
    for o in observed:
        if o.key:
            by_key.setdefault((o.source, o.key), []).append(o)

    # Stage 1: primary keys.
    rest: list[Expected] = []
    for e in expected:
        found = by_key.get((e.source, e.key)) if e.key else None
        if not found:
            rest.append(e)
            continue
        # The report that agrees, if any does; the others are second reports of it.
        first = next((o for o in found if compare(e, o, CERTAIN) is None), found[0])
        others = [o for o in found if o is not first]
        used.update(o.evidence_id for o in found)
        difference = compare(e, first, CERTAIN)
        if difference is None:
            matches.append(
                Match(
                    transfer_id=e.transfer_id,
                    source=e.source,
                    evidence_id=first.evidence_id,
                    method=Method.PRIMARY,
                    confidence=CERTAIN,
                )
            )
        else:
            findings.append(difference)
        for other in others:
            findings.append(_duplicate(e, first, other))

    # Stage 2: secondary (source, currency, exact amount, time window, counterparty).
    by_amount: dict[tuple[Source, str, int], list[Observed]] = {}
    for o in observed:
        if o.evidence_id not in used and o.transfer_id is None:
            by_amount.setdefault((o.source, o.currency, o.amount), []).append(o)
    later: list[Expected] = []
    for e in rest:
        window = tolerance(e.currency).window_us
        best = _closest(
            (
                o
                for o in by_amount.get((e.source, e.currency, e.amount), ())
                if o.evidence_id not in used
                and abs(o.at - e.at) <= window
                and (not e.counterparty or not o.counterparty or o.counterparty == e.counterparty)
            ),
            e.at,
        )
        if best is None:
            later.append(e)
            continue
        used.add(best.evidence_id)
        findings.append(_unconfirmed(e, best, SECONDARY_CONFIDENCE))

    # Stage 3: fuzzy (amount within tolerance, and the memo or the counterparty agrees).
    index = _FuzzyIndex(o for o in observed if o.evidence_id not in used and o.transfer_id is None)
    waiting: list[Expected] = []
    for e in later:
        room = tolerance(e.currency).fuzzy_room(e.amount)
        best = _closest(
            (
                o
                for o in index.around(e.source, e.currency, e.amount - room, e.amount + room)
                if o.evidence_id not in used and _fuzzy_agrees(e, o)
            ),
            e.at,
        )
        if best is not None:
            used.add(best.evidence_id)
            confidence = FUZZY_EXACT_CONFIDENCE if best.amount == e.amount else FUZZY_CONFIDENCE
            findings.append(_unconfirmed(e, best, confidence))
        elif now >= e.due:
            findings.append(
                Finding(
                    kind=Kind.MISSING_EVIDENCE,
                    severity=severity_of(Kind.MISSING_EVIDENCE),
                    confidence=CERTAIN,
                    source=e.source,
                    transfer_id=e.transfer_id,
                    evidence_ids=(),
                    expected=describe_expected(e),
                    actual={},
                )
            )
        else:
            waiting.append(e)

    # What nothing claimed: value the ledger does not know about.
    for o in observed:
        if o.evidence_id in used or o.transfer_id is not None:
            continue
        findings.append(
            Finding(
                kind=Kind.EXTERNAL_ONLY,
                severity=severity_of(Kind.EXTERNAL_ONLY, outflow=o.outflow),
                confidence=CERTAIN,
                source=o.source,
                transfer_id=None,
                evidence_ids=(o.evidence_id,),
                expected={},
                actual=describe_observed(o),
            )
        )
    return Outcome(matches=matches, findings=findings, waiting=waiting)


def _closest(candidates: Iterable[Observed], at: int) -> Observed | None:
    best: Observed | None = None
    for o in candidates:
        if best is None or abs(o.at - at) < abs(best.at - at):
            best = o
    return best


def _fuzzy_agrees(e: Expected, o: Observed) -> bool:
    if abs(o.at - e.at) > 3 * tolerance(e.currency).window_us:
        return False
    memo = o.memo.casefold()
    if memo and ((e.memo and e.memo.casefold() in memo) or e.transfer_id.casefold() in memo):
        return True
    return bool(e.counterparty) and o.counterparty == e.counterparty


def _unconfirmed(e: Expected, o: Observed, confidence: int) -> Finding:
    return Finding(
        kind=Kind.UNCONFIRMED_MATCH,
        severity=severity_of(Kind.UNCONFIRMED_MATCH),
        confidence=confidence,
        source=e.source,
        transfer_id=e.transfer_id,
        evidence_ids=(o.evidence_id,),
        expected=describe_expected(e),
        actual=describe_observed(o),
    )


def _duplicate(e: Expected, first: Observed, other: Observed) -> Finding:
    """A second report under a primary key already matched. Identical in every field, it is the
    same event told twice (LOW: counted once, nothing to decide); different, it may be a second
    real movement (HIGH)."""
    same = _same_report(first, other)
    return Finding(
        kind=Kind.DUPLICATE_EXTERNAL_EVENT,
        severity=Severity.LOW if same else severity_of(Kind.DUPLICATE_EXTERNAL_EVENT),
        confidence=CERTAIN,
        source=e.source,
        transfer_id=e.transfer_id,
        evidence_ids=(first.evidence_id, other.evidence_id),
        expected=describe_observed(first),
        actual=describe_observed(other),
    )


def parse_confidence(text: str) -> int | None:
    """ "0.80" -> 80 (hundredths); None unless 0.00..1.00 with at most two decimals."""
    whole, _, fraction = text.partition(".")
    if whole not in ("0", "1") or len(fraction) > 2 or (fraction and not fraction.isdigit()):
        return None
    value = int(whole) * 100 + int(fraction.ljust(2, "0") or "0")
    return value if value <= 100 else None


def format_confidence(hundredths: int) -> str:
    assert 0 <= hundredths <= 100
    return f"{hundredths // 100}.{hundredths % 100:02d}"
