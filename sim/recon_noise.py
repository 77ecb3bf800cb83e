"""A seeded reconciliation workload with noise: ledger expectations for `transfers` transfers (half
wallet payouts, half off-ramp payouts with provider and bank reports) and the reports the sources
sent, with a share of them damaged in each way Series 5 names. The generator counts what it
injected, so a test can check the matcher finds exactly that, and the benchmark times it.

Noise kinds (one per damaged transfer, drawn evenly):
  missing      one report never came (past its due time)
  amount       the bank credited another amount
  fee          the provider reports a fee of its own
  fx           the provider filled at a rate 2% off the quote
  duplicate    the chain report arrives twice under two ids, identical
  unkeyed      the bank report lost its reference (a secondary match, for review)
  external     a statement line nothing in the ledger explains
"""

from __future__ import annotations

import random
from collections import Counter

import msgspec

from engine.reconciliation import Expected, Kind, Observed, Source

NOISE_KINDS = ("missing", "amount", "fee", "fx", "duplicate", "unkeyed", "external")
FINDING_OF = {
    "missing": Kind.MISSING_EVIDENCE,
    "amount": Kind.AMOUNT_MISMATCH,
    "fee": Kind.FEE_MISMATCH,
    "fx": Kind.FX_MISMATCH,
    "duplicate": Kind.DUPLICATE_EXTERNAL_EVENT,
    "unkeyed": Kind.UNCONFIRMED_MATCH,
    "external": Kind.EXTERNAL_ONLY,
}
RATE = 17_25000000  # 17.25 MXN per USDC, 8 decimals
START_US = 1_800_000_000 * 1_000_000
DUE_US = 3600 * 1_000_000


class Workload(msgspec.Struct, kw_only=True):
    expected: list[Expected]
    observed: list[Observed]
    injected: dict[str, int]
    now: int


def generate(transfers: int, noise: float, seed: int) -> Workload:
    rng = random.Random(seed)
    expected: list[Expected] = []
    observed: list[Observed] = []
    injected: Counter[str] = Counter()
    now = START_US + transfers * 1_000_000 + 10 * DUE_US
    n_ev = 0

    def evidence_id() -> str:
        nonlocal n_ev
        n_ev += 1
        return f"ex_{n_ev:026d}"

    for n in range(transfers):
        tid = f"tr_{n:026d}"
        at = START_US + n * 1_000_000
        bank = n % 2 == 1
        noisy = rng.random() < noise
        kind = rng.choice(NOISE_KINDS if bank else ("missing", "duplicate", "external"))
        kind = kind if noisy else ""
        injected.update([kind] if kind else [])
        usdc = rng.randint(1_000_000, 5_000_000_000)
        wallet = f"0x{rng.getrandbits(160):040x}"
        tx = f"0x{rng.getrandbits(256):064x}/0x{n:064x}"
        chain = Expected(
            transfer_id=tid, source=Source.CHAIN, key=tx, amount=usdc, currency="USDC", at=at,
            due=at + DUE_US, counterparty=wallet,
        )  # fmt: skip
        items = [chain]
        if bank:
            mxn = usdc * RATE // 10**8 // 10**4
            clabe = f"{rng.getrandbits(60):018d}"[:18]
            items.append(
                Expected(
                    transfer_id=tid,
                    source=Source.PROVIDER,
                    key=f"trade-{n}",
                    amount=mxn,
                    currency="MXN",
                    at=at,
                    due=at + DUE_US,
                    fee=0,
                    rate=RATE,
                    memo=tid,
                )
            )
            items.append(
                Expected(
                    transfer_id=tid,
                    source=Source.BANK,
                    key=f"SPEI{n:010d}",
                    amount=mxn,
                    currency="MXN",
                    at=at,
                    due=at + DUE_US,
                    counterparty=clabe,
                )
            )
        expected.extend(items)
        dropped = rng.choice(items) if kind == "missing" else None
        for item in items:
            if item is dropped:
                continue
            report = Observed(
                evidence_id=evidence_id(), source=item.source, key=item.key, amount=item.amount,
                currency=item.currency, at=item.at + rng.randint(0, 60_000_000),
                counterparty=item.counterparty, fee=item.fee, rate=item.rate,
                outflow=item.source is Source.CHAIN,
            )  # fmt: skip
            if item.source is Source.BANK and kind == "amount":
                report = msgspec.structs.replace(report, amount=item.amount - 100)
            if item.source is Source.PROVIDER and kind == "fee":
                report = msgspec.structs.replace(report, fee=1_500)
            if item.source is Source.PROVIDER and kind == "fx":
                report = msgspec.structs.replace(report, rate=RATE * 98 // 100)
            if item.source is Source.BANK and kind == "unkeyed":
                report = msgspec.structs.replace(report, key="")
            observed.append(report)
            if item.source is Source.CHAIN and kind == "duplicate":
                observed.append(msgspec.structs.replace(report, evidence_id=evidence_id()))
        if kind == "external":
            # An odd number of cents far above any payout: nothing can pair with it.
            observed.append(
                Observed(
                    evidence_id=evidence_id(),
                    source=Source.BANK,
                    key=f"UNKNOWN{n}",
                    amount=10**13 + 2 * n + 1,
                    currency="USD",
                    at=at,
                    memo="unknown payer",
                )
            )
    rng.shuffle(observed)
    return Workload(expected=expected, observed=observed, injected=dict(injected), now=now)
