"""What a transfer's route needs each outside source to report, and evidence in the matcher's form.

A transfer is reconciled when every source its route needs has reported, in integer minor units,
exactly what the ledger says happened: the chain (the indexer's Transfer log: the mined
transaction paid the rail amount to the right address, in the block the ledger names), and on
the off-ramp route the provider (the payout was made, for the quoted target amount, at the
quoted rate, with no fee of its own) and the receiving bank (the credit under the reference the
provider named, for the amount the provider says it paid). `expectations` states those needs
from the transfer's state; `observe` turns a stored evidence row into the matcher's `Observed`;
the matcher (engine.reconciliation) pairs them and classifies every difference.
"""

from __future__ import annotations

from engine import limits
from engine.events import EvidenceRecorded
from engine.money import Rate, parse_rate
from engine.rails import PayoutStatus, TransferLog
from engine.reconciliation import Expected, Observed, Source
from engine.states import Route, Status
from engine.transfer import TransferState

# The confirmation watcher's receipt: what drives the transfer (not matched: the chain's witness
# for reconciliation is the indexer's log, a feed independent of the node the watcher asks).
CHAIN_CONFIRMED = "tx_confirmed"
# A token Transfer log from or to a treasury wallet, as the chain indexer delivered it.
CHAIN_TRANSFER = "chain_transfer"
PAYOUT_PAID = "payout_paid"
PAYOUT_RETURNED = "payout_returned"
BANK_CREDIT = "bank_credit"
# A client's deposit as the bank notified it (the input that credits the deposit, not evidence
# for a transfer).
DEPOSIT_CREDIT = "deposit_credit"
# One line of our bank account's statement (a file, or the bank's statement feed).
STATEMENT_LINE = "statement_line"

# The evidence kinds each source reports, for matching and for the reconciliation summary.
SOURCE_OF: dict[str, Source] = {
    CHAIN_CONFIRMED: Source.CHAIN,
    CHAIN_TRANSFER: Source.CHAIN,
    PAYOUT_PAID: Source.PROVIDER,
    PAYOUT_RETURNED: Source.PROVIDER,
    BANK_CREDIT: Source.BANK,
    DEPOSIT_CREDIT: Source.BANK,
    STATEMENT_LINE: Source.BANK,
}
# Kinds that report a movement the matcher pairs with the ledger.
MATCHED_KINDS = frozenset({CHAIN_TRANSFER, PAYOUT_PAID, BANK_CREDIT, STATEMENT_LINE})


def chain_provider(chain: str) -> str:
    return f"chain:{chain}"


def chain_of(provider: str) -> str:
    """The chain a `chain_provider` name is for."""
    return provider.removeprefix("chain:")


def chain_ref(tx_hash: str, block_hash: str) -> str:
    """A confirmation is a fact about a transaction in one block: after a reorg the same
    transaction mined elsewhere is a new fact, so the block is part of the reference."""
    return f"{tx_hash}/{block_hash}"


# A provider's report that differs from what it told us before about the same trade is kept under
# its trade id plus this and a digest of its facts (once per distinct content).
REPORTED_AGAIN = "/report/"


def payout_facts(status: PayoutStatus) -> dict[str, str]:
    """A payout report's normalized fields (the fee and fill rate only when the provider states
    them: an absent one is not compared)."""
    facts = {
        "amount": str(status.amount),
        "currency": status.currency,
        "bank_reference": status.bank_reference or "",
    }
    if status.fee is not None:
        facts["fee"] = str(status.fee)
    if status.rate is not None:
        facts["rate"] = status.rate
    if status.return_tx_hash is not None:
        facts["return_tx_hash"] = status.return_tx_hash
    return facts


def normalize_log(log: TransferLog, ours: frozenset[str]) -> dict[str, str]:
    """An indexer's Transfer log in Series 8's normalized form; `direction` says whether value
    left one of `ours` (the treasury wallets) or came in."""
    return {
        "tx_hash": log.tx_hash,
        "log_index": str(log.log_index),
        "block_number": str(log.block_number),
        "block_hash": log.block_hash,
        "currency": log.currency,
        "amount": str(log.amount),
        "from": log.from_address.lower(),
        "to": log.to_address.lower(),
        "direction": "out" if log.from_address.lower() in ours else "in",
    }


def reconcilable(state: TransferState) -> bool:
    return (state.route is Route.WALLET and state.status is Status.CONFIRMED) or (
        state.route is Route.BANK and state.status is Status.FIAT_SETTLED
    )


def awaiting(state: TransferState) -> bool:
    """Whether the pipeline watches the transfer: on chain and confirmed, not yet reconciled."""
    return state.status in (Status.CONFIRMED, Status.FIAT_SETTLED)


def checked(state: TransferState) -> bool:
    """Whether a report about the transfer is matched against the ledger: while it awaits
    reconciliation, and after it (a later report, such as a provider's trade report, that
    contradicts what the transfer reconciled on is still a case)."""
    return awaiting(state) or state.status is Status.RECONCILED


def sources_needed(route: Route) -> frozenset[Source]:
    if route is Route.WALLET:
        return frozenset({Source.CHAIN})
    return frozenset({Source.CHAIN, Source.PROVIDER, Source.BANK})


def _int(text: str | None) -> int | None:
    if text is None or not text.isdigit() or len(text) > 30:
        return None
    return int(text)


def _rate_units(text: str | None) -> int | None:
    rate = parse_rate(text) if text is not None else None
    return rate.units if isinstance(rate, Rate) else None


def observe(e: EvidenceRecorded) -> Observed | None:
    """The matcher's view of a stored report, or None for kinds it does not pair (a deposit
    notice, a returned payout) and for a row whose amount is not minor units."""
    if e.event_type not in MATCHED_KINDS:
        return None
    n = e.normalized
    amount = _int(n.get("amount"))
    if amount is None:
        return None
    key, counterparty, memo, outflow = e.external_ref, "", "", False
    match e.event_type:
        case "chain_transfer":
            key = chain_ref(n.get("tx_hash", ""), n.get("block_hash", ""))
            outflow = n.get("direction") == "out"
            counterparty = n.get("to", "") if outflow else n.get("from", "")
        case "payout_paid":
            key = e.external_ref.split(REPORTED_AGAIN)[0]
            memo = n.get("bank_reference", "")
        case "bank_credit":
            counterparty = n.get("account", "")
        case _:  # a statement line: keyed by the reference it carries
            key, counterparty = n.get("reference", ""), n.get("counterparty", "")
            memo, outflow = n.get("memo", ""), n.get("direction") == "debit"
    return Observed(
        evidence_id=e.evidence_id,
        source=SOURCE_OF[e.event_type],
        key=key,
        amount=amount,
        currency=n.get("currency", ""),
        at=e.occurred_at,
        counterparty=counterparty,
        memo=memo,
        fee=_int(n.get("fee")),
        rate=_rate_units(n.get("rate")),
        transfer_id=e.transfer_id,
        outflow=outflow,
    )


def expectations(state: TransferState, evidence: list[EvidenceRecorded]) -> list[Expected]:
    """What the transfer's route needs each source to have reported, as of its state (nothing
    before it is confirmed on chain; after it is reconciled, still the same). The receiving
    bank's reference is the one the transfer settled under, or else the one the provider's
    report named."""
    if not checked(state) or state.mined is None or state.quote is None:
        return []
    confirmed = state.confirmed_at or state.updated_at
    tx = next(t for t in state.txs if t.tx_hash == state.mined.tx_hash)
    found = [
        Expected(
            transfer_id=state.transfer_id,
            source=Source.CHAIN,
            key=chain_ref(state.mined.tx_hash, state.mined.block_hash),
            amount=tx.amount,
            currency=tx.currency,
            at=confirmed,
            due=confirmed + limits.evidence_due_chain_us,
            counterparty=tx.to_address.lower(),
        )
    ]
    if state.route is Route.WALLET:
        return found
    quote = state.quote
    clabe = getattr(state.destination, "clabe", "")
    bank_reference = state.bank_reference
    paid = next(
        (
            e
            for e in evidence
            if e.event_type == PAYOUT_PAID and e.external_ref == state.provider_trade_id
        ),
        None,
    )
    if bank_reference is None and paid is not None:
        bank_reference = paid.normalized.get("bank_reference") or None
    # The bank is checked against what the provider says it paid (a difference between that
    # and the quote is the provider's, reported once, against the provider).
    paid_amount = _int(paid.normalized.get("amount")) if paid is not None else None
    found.append(
        Expected(
            transfer_id=state.transfer_id,
            source=Source.PROVIDER,
            key=state.provider_trade_id or "",
            amount=quote.target_amount,
            currency=quote.target_currency,
            at=confirmed,
            due=confirmed + limits.evidence_due_provider_us,
            fee=0,
            rate=_rate_units(quote.rate),
            memo=state.transfer_id,
            fx_bps=state.slippage_tolerance_bps,
        )
    )
    found.append(
        Expected(
            transfer_id=state.transfer_id,
            source=Source.BANK,
            key=bank_reference or "",
            amount=paid_amount if paid_amount is not None else quote.target_amount,
            currency=quote.target_currency,
            at=confirmed,
            due=confirmed + limits.evidence_due_bank_us,
            counterparty=clabe,
            memo=state.reference or "",
        )
    )
    return found
