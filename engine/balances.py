"""Balance-level reconciliation (Series 5): each ledger account that stands for value held outside
(a treasury wallet per asset, the off-ramp provider's prefunding, our bank account) against what
its holder reports (the chain's token balance, the provider's report, the statement's closing
balance).

Matching transfer by transfer can miss what no transfer names (a fee taken from a wallet, a
booking nobody reported); the balances cannot. They differ for a while in the normal course of
things, because the ledger books a movement when its evidence is in, not when it happens, so a
reading states how far the holder may lawfully be from the ledger right now (`low`..`high`, from
the transfers in flight); a drift outside that window that stays for
`limits.balance_drift_persist_us` is a `balance_drift` case. Every change of drift is recorded
(the history of a balance is its readings), and a case closes by itself only when the balances
agree again or the drift becomes another one (its own case).
"""

from __future__ import annotations

import msgspec

from engine import limits
from engine.ledger import AccountKind, account_kind
from engine.reconciliation import CERTAIN, Finding, Kind, Severity, Source, severity_of
from engine.states import Route, Status
from engine.transfer import TransferState

BALANCE_READING = "balance_reading"

SOURCE_OF_ACCOUNT = {
    AccountKind.TREASURY: Source.CHAIN,
    AccountKind.PROVIDER: Source.PROVIDER,
    AccountKind.BANK: Source.BANK,
}


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """One account against its holder at `at`. Amounts in the currency's minor units; the
    ledger side is the asset's balance (debits - credits)."""

    source: Source
    holder: str
    account: str
    currency: str
    ledger: int
    external: int
    # The drift the transfers in flight explain: low <= drift <= high.
    low: int
    high: int
    at: int

    @property
    def drift(self) -> int:
        return self.external - self.ledger

    @property
    def explained(self) -> bool:
        return self.low <= self.drift <= self.high

    def normalized(self) -> dict[str, str]:
        return {
            "source": self.source.value,
            "account": self.account,
            "currency": self.currency,
            "amount": str(self.external),
            "ledger": str(self.ledger),
            "drift": str(self.drift),
            "in_flight_low": str(self.low),
            "in_flight_high": str(self.high),
        }


def source_of(account: str) -> Source | None:
    kind = account_kind(account)
    return SOURCE_OF_ACCOUNT.get(kind) if kind is not None else None


def in_flight(account: str, currency: str, states: list[TransferState]) -> tuple[int, int]:
    """How far the holder of `account` may be from the ledger because of transfers in flight:
    a payment mined before the ledger books its confirmation (the wallet is lower, the
    provider higher), a payout the provider paid or returned before the ledger hears (the
    provider lower, by up to the fill's cost, the wallet higher by a return). The bank
    account's ledger only ever trails the bank (a deposit is booked on its notice): no
    window."""
    low = high = 0
    source = source_of(account)
    for state in states:
        if not state.txs:
            continue
        tx = next((t for t in state.txs if state.mined and t.tx_hash == state.mined.tx_hash), None)
        tx = tx or state.txs[-1]
        if tx.currency != currency:
            continue
        bank_route = state.route is Route.BANK
        match source, state.status:
            case Source.CHAIN, Status.SENT_ON_CHAIN:
                low -= tx.amount
            case Source.CHAIN, Status.CONFIRMED if bank_route:
                high += tx.amount
            case Source.PROVIDER, Status.SENT_ON_CHAIN if bank_route:
                high += tx.amount
                if state.provider_trade_id is not None:
                    # A pre-funded payout, asked for before its deposit confirmed: it may be
                    # paid already, from the prefunding.
                    low -= tx.amount + tx.amount * limits.fill_cost_window_bps // 10_000
            case Source.PROVIDER, Status.CONFIRMED if bank_route:
                # A fill off the quote may cost a little more than the rail amount.
                low -= tx.amount + tx.amount * limits.fill_cost_window_bps // 10_000
    return low, high


def drift_finding(reading: Reading, evidence_id: str) -> Finding:
    """The case for a drift that stayed: value missing from a treasury wallet is CRITICAL (it
    may have left without us), any other drift HIGH."""
    missing_from_wallet = reading.source is Source.CHAIN and reading.drift < 0
    severity = Severity.CRITICAL if missing_from_wallet else severity_of(Kind.BALANCE_DRIFT)
    return Finding(
        kind=Kind.BALANCE_DRIFT,
        severity=severity,
        confidence=CERTAIN,
        source=reading.source,
        transfer_id=None,
        evidence_ids=(evidence_id,),
        expected={
            "account": reading.account,
            "currency": reading.currency,
            "amount": str(reading.ledger),
        },
        actual={
            "holder": reading.holder,
            "currency": reading.currency,
            "amount": str(reading.external),
            "drift": str(reading.drift),
        },
    )
