"""Fault plans: which faults a simulated run injects and how often, drawn per seed.

`swarm` gives each seed its own mix (each kind on or off by a coin flip, then its own rate), so
across seeds the runs explore combinations a single fixed plan would never reach. Every injection
goes through `FaultLog.fire`, which draws from the run's seeded generator and counts what fired.
"""

from __future__ import annotations

import random
from collections import Counter

import msgspec

# kind -> the highest rate swarm draws for it.
SWARM_RATE_MAX: dict[str, float] = {
    "rpc_timeout": 0.2,  # a broadcast reached the node but its answer was lost
    "rpc_unavailable": 0.2,  # the node refused the call
    "tx_dropped": 0.05,  # per pending transaction per block
    "reorg": 0.05,  # per block
    "gas_spike": 0.05,  # per block: the base fee jumps
    "quote_outage": 0.2,  # one quote call fails
    "provider_outage": 0.02,  # per quote call: the provider goes down for minutes
    "offramp_outage": 0.2,
    "payout_rejected": 0.15,
    "payout_refused": 0.1,  # the off-ramp refuses a payout before accepting it (rerouted)
    "webhook_lost": 0.5,
    "webhook_duplicated": 0.3,
    "webhook_delayed": 0.5,
    "bank_delayed": 0.5,
    "cancel": 0.2,  # the client cancels a transfer soon after creating it
    "retry_request": 0.3,  # the client re-sends a create with the same idempotency key
    # Reconciliation (Series 5): what the sources report differs from the ledger.
    "provider_fee": 0.1,  # the off-ramp keeps a fee of its own from the payout
    "fx_slippage": 0.1,  # the off-ramp fills off the quote: 0.3% either way, or 2% worse
    "statement_late": 0.1,  # a payout's bank credit shows hours late (past its due time)
    "statement_unknown_line": 0.3,  # a deposit comes with a wire nobody can name
    "indexer_duplicate": 0.1,  # the chain indexer delivers a Transfer log twice (two event ids)
    "provider_report_differs": 0.1,  # a trade report row states a fee the webhook did not
}

DEFAULT_RATES: dict[str, float] = {
    "rpc_timeout": 0.05,
    "rpc_unavailable": 0.05,
    "tx_dropped": 0.01,
    "reorg": 0.02,
    "gas_spike": 0.02,
    "quote_outage": 0.05,
    "provider_outage": 0.005,
    "offramp_outage": 0.05,
    "payout_rejected": 0.05,
    "payout_refused": 0.02,
    "webhook_lost": 0.2,
    "webhook_duplicated": 0.1,
    "webhook_delayed": 0.2,
    "bank_delayed": 0.2,
    "cancel": 0.05,
    "retry_request": 0.1,
    "provider_fee": 0.03,
    "fx_slippage": 0.03,
    "statement_late": 0.01,
    "statement_unknown_line": 0.2,
    "indexer_duplicate": 0.03,
    "provider_report_differs": 0.03,
}


class FaultPlan(msgspec.Struct, frozen=True, kw_only=True):
    rates: dict[str, float]
    # The deepest reorg the chain may do (a reorg deeper than the confirmations a transfer waits
    # for un-confirms it).
    reorg_depth_max: int = 3

    @classmethod
    def none(cls) -> FaultPlan:
        return cls(rates={}, reorg_depth_max=0)

    @classmethod
    def default(cls) -> FaultPlan:
        return cls(rates=dict(DEFAULT_RATES), reorg_depth_max=3)

    @classmethod
    def swarm(cls, rng: random.Random) -> FaultPlan:
        rates = {}
        for kind, high in SWARM_RATE_MAX.items():
            if rng.random() < 0.5:
                rates[kind] = rng.uniform(0, high)
        depth = rng.choice((1, 2, 3, 6, 14))
        return cls(rates=rates, reorg_depth_max=depth)

    @classmethod
    def named(cls, name: str, rng: random.Random) -> FaultPlan:
        match name:
            case "none":
                return cls.none()
            case "default":
                return cls.default()
            case "swarm":
                return cls.swarm(rng)
        raise ValueError(f"unknown fault plan {name!r} (none, default, swarm)")


class FaultLog:
    def __init__(self, plan: FaultPlan, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.fired: Counter[str] = Counter()
        self.enabled = True

    def fire(self, kind: str) -> bool:
        assert kind in SWARM_RATE_MAX, kind
        rate = self.plan.rates.get(kind, 0.0)
        if not self.enabled or rate <= 0:
            return False
        if self.rng.random() < rate:
            self.fired[kind] += 1
            return True
        return False
