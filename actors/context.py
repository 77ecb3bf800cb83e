"""Everything an actor reaches the world through: the journal, the clock, ids and the rails."""

from __future__ import annotations

import dataclasses

from actors.controls import ControlState
from actors.drills import Drills
from actors.screening import ListScreener
from engine import limits
from engine.breaker import BreakerSettings
from engine.liquidity import Threshold
from engine.nonces import NonceBook
from engine.ports import Clock, Ids, Journal
from engine.pricing import ProviderTerms, RequotePolicy
from engine.rails import BankReports, ChainIndexer, ChainNode, Custody, OffRamp, QuoteProvider
from engine.sanctions import ListInForce, Screener, sample


@dataclasses.dataclass(frozen=True, slots=True)
class Rails:
    # Every pricing provider; actors.pricing asks the eligible ones and takes the best price.
    quotes: tuple[QuoteProvider, ...]
    custody: Custody
    chain: ChainNode
    indexer: ChainIndexer
    offramp: OffRamp
    bank: BankReports


@dataclasses.dataclass(slots=True)
class Tuning:
    """Runtime choices an operator can change (config), as opposed to engine.limits' bounds (and
    to engine.policy, which decides transfers)."""

    # A quote that expired before it was used: re-quoted (up to limits.requotes_max, within
    # the client's tolerance) or the transfer ends (engine.pricing.RequotePolicy), per client
    # (`[pricing.requote]` and `[pricing.requote.clients.NAME]` in the config).
    requote: RequotePolicy = dataclasses.field(default_factory=RequotePolicy)
    requote_by_client: dict[str, RequotePolicy] = dataclasses.field(default_factory=dict)
    # How often the confirmation watcher asks the node about transactions in flight (about a
    # block time of the fastest chain served), and how often the timer, settlement and
    # reconciliation supervisors look for work that fell due.
    chain_poll_s: float = limits.chain_poll_s
    # Blocks on top of a payment's before it counts as confirmed (and the chain indexer reads a
    # block): the engine's floor, limits.confirmations_required, or more for a chain that needs
    # a deeper wait (`[evm] confirmations`).
    confirmations_required: int = limits.confirmations_required
    supervisor_poll_s: float = limits.timer_poll_s
    # The policy rule set document (TOML or JSON) to bring into force at start; None: the
    # journal's latest, or engine.policy's shipped default on a new data dir.
    rules_document: bytes | None = None
    # How long an unclaimed report (a statement line) may wait for its transfer before it is an
    # external_only case, and how often the reconciler runs a full round.
    external_only_grace_s: float = limits.external_only_grace_us / 1e6
    reconcile_round_s: float = limits.reconcile_round_us / 1e6
    # How often the balances are read against their holders, and how long an unexplained drift
    # stays before it is a balance_drift case.
    balance_check_s: float = limits.balance_check_us / 1e6
    balance_drift_persist_s: float = limits.balance_drift_persist_us / 1e6
    # Pricing (`[pricing]` and `[providers.NAME]` in the config): how long the desk waits for
    # each provider's quote, the operator's terms per provider (none: open terms) and the
    # circuit breaker's thresholds.
    quote_deadline_s: float = 2.0
    provider_terms: dict[str, ProviderTerms] = dataclasses.field(default_factory=dict)
    breaker: BreakerSettings = dataclasses.field(default_factory=BreakerSettings)
    # Floors and ceilings of held balances (`[[liquidity]]` in the config), judged at every
    # balance check (actors.liquidity).
    liquidity: tuple[Threshold, ...] = ()
    # How far a payout's fill may slip from its quote and be booked as FX P&L (beyond it: an
    # fx_mismatch case, the difference in suspense), in basis points: the default and per
    # corridor (`[pricing.slippage]`).
    slippage_bps: int = limits.slippage_tolerance_bps
    # Corridors whose bank payouts are pre-funded (paid from the provider's prefunding as soon
    # as the deposit is broadcast); the others are just-in-time (`[pricing]
    # prefunded_corridors`).
    prefunded_corridors: frozenset[str] = frozenset()
    slippage_by_corridor: dict[str, int] = dataclasses.field(default_factory=dict)

    def requote_for(self, client_id: str) -> RequotePolicy:
        return self.requote_by_client.get(client_id, self.requote)

    def slippage_for(self, corridor: str) -> int:
        return self.slippage_by_corridor.get(corridor, self.slippage_bps)


def _sample_screener() -> Screener:
    return ListScreener(sample())


def _sample_in_force() -> ListInForce:
    return ListInForce(
        holdings=sample().holdings,
        sources=("the shipped sample of fictional entries",),
        file_date=0,
        loaded_at=0,
        max_age_us=0,
        sample=True,
    )


@dataclasses.dataclass(slots=True)
class SanctionsState:
    """The screening port in force and, for a list-based screener, what its list holds
    (actors.sanctions brings a list into force)."""

    screener: Screener = dataclasses.field(default_factory=_sample_screener)
    in_force: ListInForce = dataclasses.field(default_factory=_sample_in_force)
    # The digest of the list a stale-list alert was raised for.
    stale_alerted: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    journal: Journal
    clock: Clock
    ids: Ids
    rails: Rails
    nonces: NonceBook
    tuning: Tuning = dataclasses.field(default_factory=Tuning)
    drills: Drills = dataclasses.field(default_factory=Drills)
    # The freezes and halts in force (kept by the system's ControlBook).
    controls: ControlState = dataclasses.field(default_factory=ControlState)
    # The sanctions list parties are screened against (engine.sanctions; the shipped sample
    # unless the deployment configures its own).
    sanctions: SanctionsState = dataclasses.field(default_factory=SanctionsState)
