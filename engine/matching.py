"""The per-transfer evidence match that lets a transfer reach RECONCILED.

A transfer is reconciled when every source its route needs has reported, in integer minor units,
exactly what the ledger says happened: the chain (the mined transaction paid the rail amount to
the right address), and on the off-ramp route the provider (the payout was made, for the quoted
target amount) and the receiving bank (the credit under the same reference, same amount). A
missing or different witness is not a match: the transfer waits, and the time-in-state alert and
the full reconciliation pipeline (Series 5) take it from there.
"""

from __future__ import annotations

from engine.events import EvidenceRecorded
from engine.states import Route, Status
from engine.transfer import TransferState

CHAIN_CONFIRMED = "tx_confirmed"
PAYOUT_PAID = "payout_paid"
PAYOUT_RETURNED = "payout_returned"
BANK_CREDIT = "bank_credit"
# A client's deposit as the bank notified it (evidence for the deposit, not for a transfer).
DEPOSIT_CREDIT = "deposit_credit"


def chain_provider(chain: str) -> str:
    return f"chain:{chain}"


def chain_ref(tx_hash: str, block_hash: str) -> str:
    """A confirmation is a fact about a transaction in one block: after a reorg the same
    transaction mined elsewhere is a new fact, so the block is part of the reference."""
    return f"{tx_hash}/{block_hash}"


def reconcilable(state: TransferState) -> bool:
    return (state.route is Route.WALLET and state.status is Status.CONFIRMED) or (
        state.route is Route.BANK and state.status is Status.FIAT_SETTLED
    )


def match_transfer(
    state: TransferState, evidence: list[EvidenceRecorded]
) -> tuple[str, ...] | None:
    """The evidence ids that together reconcile `state`, or None while any witness is missing
    or disagrees."""
    if not reconcilable(state) or state.mined is None or state.quote is None:
        return None
    tx = next(t for t in state.txs if t.tx_hash == state.mined.tx_hash)
    chain_ev = _find(
        evidence,
        CHAIN_CONFIRMED,
        chain_ref(state.mined.tx_hash, state.mined.block_hash),
        {
            "amount": str(tx.amount),
            "currency": tx.currency,
            "to": tx.to_address.lower(),
            "block_hash": state.mined.block_hash,
        },
    )
    if chain_ev is None:
        return None
    if state.route is Route.WALLET:
        return (chain_ev,)
    assert state.provider_trade_id is not None and state.bank_reference is not None
    amount = {"amount": str(state.settled_amount), "currency": state.target_currency}
    paid = _find(
        evidence,
        PAYOUT_PAID,
        state.provider_trade_id,
        {**amount, "bank_reference": state.bank_reference},
    )
    credited = _find(evidence, BANK_CREDIT, state.bank_reference, amount)
    if paid is None or credited is None or state.settled_amount != state.quote.target_amount:
        return None
    return (chain_ev, paid, credited)


def _find(
    evidence: list[EvidenceRecorded], kind: str, ref: str, expect: dict[str, str]
) -> str | None:
    for e in evidence:
        if e.event_type != kind or e.external_ref != ref:
            continue
        if all(e.normalized.get(k) == v for k, v in expect.items()):
            return e.evidence_id
    return None
