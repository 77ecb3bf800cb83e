"""Funding: a client's bank deposit, and the operator's stablecoin inventory in a treasury wallet.

Client funding: a bank credit to a client's available balance, as a one-event stream (dp_...).

The deposit id is the stream id, so a bank credit reported twice (a duplicated webhook, a statement
line seen again) is appended once: the second append finds the stream already at version 1.
"""

from __future__ import annotations

import hashlib

from engine import ledger, money
from engine.commands import CreditDeposit
from engine.destinations import CHAINS, is_address, normalize_address
from engine.events import DepositCredited, ProviderFunded, TreasuryFunded
from engine.ids import format_id, is_id
from engine.results import Result

bank_reference_length_max = 128


def decide_deposit(cmd: CreditDeposit, now: int) -> Result | DepositCredited:
    if not is_id(cmd.deposit_id, "dp"):
        return Result.command_malformed
    if not ledger.is_name(cmd.client_id):
        return Result.client_id_invalid
    if not ledger.is_name(cmd.bank):
        return Result.command_malformed
    if not 0 < len(cmd.bank_reference) <= bank_reference_length_max:
        return Result.command_malformed
    asset = money.asset(cmd.currency)
    if asset is None:
        return Result.currency_unknown
    amount = money.parse_amount(cmd.amount, asset)
    if isinstance(amount, Result):
        return amount
    if amount == 0:
        return Result.amount_must_be_positive
    return DepositCredited(
        at=now,
        deposit_id=cmd.deposit_id,
        client_id=cmd.client_id,
        currency=asset.code,
        amount=amount,
        bank=cmd.bank,
        bank_reference=cmd.bank_reference,
        entries=ledger.deposit(cmd.client_id, asset.code, amount, cmd.bank),
    )


def _capital(funding_id: str, currency: str, amount: int, reference: str) -> money.Asset | Result:
    """The stablecoin of a funding from capital, or why the funding is refused."""
    if not is_id(funding_id, "tf"):
        return Result.command_malformed
    asset = money.asset(currency)
    if asset is None or asset.kind is money.AssetKind.FIAT:
        return Result.currency_unknown
    if not 0 < amount <= money.units_max_minor(asset):
        return Result.amount_must_be_positive
    if not 0 < len(reference) <= bank_reference_length_max:
        return Result.command_malformed
    return asset


def decide_treasury_funding(
    *,
    funding_id: str,
    chain: str,
    address: str,
    currency: str,
    amount: int,
    reference: str,
    now: int,
) -> Result | TreasuryFunded:
    """Record stablecoin inventory arriving in a treasury wallet (bought with the operator's
    capital), so the ledger's treasury balance equals what the chain holds."""
    if chain not in CHAINS or not is_address(address):
        return Result.destination_invalid
    asset = _capital(funding_id, currency, amount, reference)
    if isinstance(asset, Result):
        return asset
    account = ledger.treasury(chain, normalize_address(address))
    return TreasuryFunded(
        at=now,
        funding_id=funding_id,
        chain=chain,
        address=normalize_address(address),
        currency=asset.code,
        amount=amount,
        reference=reference,
        entries=ledger.capital_funding(account, asset.code, amount),
    )


def decide_provider_funding(
    *, funding_id: str, provider: str, currency: str, amount: int, reference: str, now: int
) -> Result | ProviderFunded:
    """Record stablecoin the operator placed with an off-ramp provider (its prefunding), so the
    ledger's provider account equals what the provider holds for us."""
    if not ledger.is_name(provider):
        return Result.command_malformed
    asset = _capital(funding_id, currency, amount, reference)
    if isinstance(asset, Result):
        return asset
    return ProviderFunded(
        at=now,
        funding_id=funding_id,
        provider=provider,
        currency=asset.code,
        amount=amount,
        reference=reference,
        entries=ledger.capital_funding(ledger.provider(provider), asset.code, amount),
    )


def deposit_id_for(bank: str, bank_reference: str, booked_at_us: int) -> str:
    """A bank credit's deposit id, derived from the bank's own reference: the webhook and the
    statement line that report the same credit name the same deposit, so it is credited once."""
    digest = hashlib.sha256(f"{bank}|{bank_reference}".encode()).digest()
    return format_id("dp", booked_at_us // 1_000, digest[:10])
