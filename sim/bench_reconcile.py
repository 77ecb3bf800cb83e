"""`stablerail bench reconcile`: the matcher over a large noisy workload, against a same-run
reference.

  matcher    engine.reconciliation.reconcile over `ledger` ledger expectations and about as many
             reports (sim.recon_noise: half wallet payouts with one chain report, half off-ramp
             payouts with chain, provider and bank reports; `noise` of the transfers damaged in
             one of Series 5's ways), every stage and classification included. The rows it
             reads (expectations plus reports) per second, the median of `repeats` runs.
  reference  one dict lookup per expectation by primary key over the same rows, comparing the
             amount: the least any matcher does (no secondary or fuzzy stage, no
             classification). The ratio says what the whole pipeline costs over it.
  memory     the peak of Python allocations (tracemalloc) during one more matcher run, beyond
             what the workload itself holds.

Also checked on the way: every injected difference was found with its kind (the run fails
otherwise), so the figure is for a matcher that works.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc

import msgspec

from engine.reconciliation import reconcile
from sim.recon_noise import FINDING_OF, Workload, generate


class ReconcileBench(msgspec.Struct, kw_only=True):
    transfers: int
    expected_rows: int
    evidence_rows: int
    noise: float
    repeats: int
    seconds: float
    rows_per_s: float
    reference_rows_per_s: float
    ratio: float
    peak_memory_mb: float
    findings: dict[str, int]
    injected_found: bool


def _reference(work: Workload) -> int:
    by_key = {(o.source, o.key): o for o in work.observed}
    agreed = 0
    for e in work.expected:
        o = by_key.get((e.source, e.key))
        agreed += o is not None and o.amount == e.amount
    return agreed


def bench_reconcile(
    transfers: int = 50_000, noise: float = 0.05, repeats: int = 3, seed: int = 1
) -> ReconcileBench:
    """`transfers` defaults to 100k expectations against about 100k reports."""
    work = generate(transfers, noise, seed)
    rows = len(work.expected) + len(work.observed)
    matcher: list[float] = []
    reference: list[float] = []
    outcome = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        _reference(work)
        reference.append(time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        outcome = reconcile(work.expected, work.observed, work.now)
        matcher.append(time.perf_counter() - started)
    assert outcome is not None
    found: dict[str, int] = {}
    for f in outcome.findings:
        found[f.kind.value] = found.get(f.kind.value, 0) + 1
    expected_found = {FINDING_OF[k].value: n for k, n in work.injected.items()}
    del outcome
    gc.collect()
    tracemalloc.start()
    reconcile(work.expected, work.observed, work.now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = statistics.median(matcher)
    return ReconcileBench(
        transfers=transfers,
        expected_rows=len(work.expected),
        evidence_rows=len(work.observed),
        noise=noise,
        repeats=repeats,
        seconds=round(seconds, 3),
        rows_per_s=round(rows / seconds),
        reference_rows_per_s=round(rows / statistics.median(reference)),
        ratio=round(statistics.median(reference) / seconds, 3),
        peak_memory_mb=round(peak / 2**20, 1),
        findings=dict(sorted(found.items())),
        injected_found=found == expected_found,
    )
