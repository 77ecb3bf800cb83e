"""Double-entry posting rules: the chart of accounts and the entries each transition writes.

Every money-moving event carries its entries, computed here when the event is decided, so the
journal holds exactly what was posted and a later change of these rules never rewrites history.
Corrections are reversals (the same entries with debit and credit swapped), never edits.

Sign convention: every entry is a debit or a credit of a positive amount in one currency. Client
accounts are liabilities (credit-normal: available = credits - debits) and may never go negative;
treasury wallets, provider and bank settlement accounts are assets (debit-normal). Every event's
entries balance per currency, so every currency sums to zero over all accounts.

Chart of accounts (account ids; the currency is a separate column):
  client:{client_id}:available   what the client can spend
  client:{client_id}:held        locked for transfers in flight (FUNDS_LOCKED, SENT_ON_CHAIN)
  treasury:{chain}:{address}     a treasury wallet's stablecoin inventory
  provider:{name}                value held by an off-ramp provider on our behalf
  bank:{name}                    our settlement account at a bank
  revenue:fees                   fees earned
  fx:position                    currency conversion position (the spread shows here)
  fx:pnl                         slippage: a provider's fill that cost more or less stablecoin
                                 than the quote's rail amount, within the corridor's tolerance
  suspense                       unexplained value awaiting an operator's decision
  equity:capital                 the operator's own funding of treasury inventory

Posting by transition (A = amount, F = fee, R = rail amount in the stablecoin carried on-chain):
  DepositCredited   Dr bank A / Cr client available A
  TreasuryFunded    Dr treasury A / Cr equity:capital A       (stablecoin inventory bought in)
  ProviderFunded    Dr provider A / Cr equity:capital A       (a provider's prefunding)
  FundsLocked       Dr client available A / Cr client held A                        (hold)
  TransferCancelled, TransferFailed, TransferExpired, OnChainReverted
                    Dr client held A / Cr client available A           (release, if held)
  OnChainConfirmed  source: Dr client held A / Cr revenue:fees F / Cr fx:position A-F
                    wallet route: Dr fx:position R / Cr treasury R
                    bank route:   Dr provider R / Cr treasury R
  ChainReorged      the reversal of OnChainConfirmed's entries (the hold is back)
  OffRampRerouted   none: the provider that refused keeps the deposit (its prefunding grows)
  FiatSettled       Dr fx:position R / Cr provider R       (the provider that paid: the quote's,
                                                            or the one the payout moved to)
                    and the fill's slippage S = what the provider debited - R:
                    within tolerance  Dr fx:pnl S / Cr provider S   (a gain the other way)
                    beyond it         Dr suspense S / Cr provider S  (an fx_mismatch case)
  FundsReturned     the reversal of OnChainConfirmed's entries against the provider that had
                    the payout, then the release
  RebalanceConfirmed  Dr provider A / Cr treasury A  (stablecoin moved to a provider's prefunding)
  RebalanceReorged    its reversal
The target currency of an off-ramp (MXN) never enters the books: the provider converts and pays
it; the platform's position is in the stablecoin it delivered.
"""

from __future__ import annotations

import enum
import functools
import re

import msgspec

FEES_REVENUE = "revenue:fees"
FX_POSITION = "fx:position"
FX_PNL = "fx:pnl"
SUSPENSE = "suspense"
EQUITY_CAPITAL = "equity:capital"

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class AccountKind(enum.StrEnum):
    CLIENT_AVAILABLE = "client_available"
    CLIENT_HELD = "client_held"
    TREASURY = "treasury"
    PROVIDER = "provider"
    BANK = "bank"
    FEES_REVENUE = "fees_revenue"
    FX_POSITION = "fx_position"
    FX_PNL = "fx_pnl"
    SUSPENSE = "suspense"
    EQUITY = "equity"


# Credit-normal accounts whose balance (credits - debits) may never go below zero. The store
# refuses any append that would break this, serialized with every other posting on the account.
NON_NEGATIVE = frozenset({AccountKind.CLIENT_AVAILABLE, AccountKind.CLIENT_HELD})


def is_name(text: str) -> bool:
    """Client ids, provider and bank names are safe inside account ids (no ':')."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def client_available(client_id: str) -> str:
    assert is_name(client_id), client_id
    return f"client:{client_id}:available"


def client_held(client_id: str) -> str:
    assert is_name(client_id), client_id
    return f"client:{client_id}:held"


def treasury(chain: str, address: str) -> str:
    return f"treasury:{chain}:{address.lower()}"


def provider(name: str) -> str:
    assert is_name(name), name
    return f"provider:{name}"


def bank(name: str) -> str:
    assert is_name(name), name
    return f"bank:{name}"


@functools.lru_cache(maxsize=65_536)
def account_kind(account: str) -> AccountKind | None:
    parts = account.split(":")
    match parts:
        case ["client", _, "available"]:
            return AccountKind.CLIENT_AVAILABLE
        case ["client", _, "held"]:
            return AccountKind.CLIENT_HELD
        case ["treasury", _, _]:
            return AccountKind.TREASURY
        case ["provider", _]:
            return AccountKind.PROVIDER
        case ["bank", _]:
            return AccountKind.BANK
        case ["revenue", "fees"]:
            return AccountKind.FEES_REVENUE
        case ["fx", "position"]:
            return AccountKind.FX_POSITION
        case ["fx", "pnl"]:
            return AccountKind.FX_PNL
        case ["suspense"]:
            return AccountKind.SUSPENSE
        case ["equity", "capital"]:
            return AccountKind.EQUITY
    return None


class EntryType(enum.StrEnum):
    DEPOSIT = "DEPOSIT"
    HOLD = "HOLD"
    RELEASE = "RELEASE"
    TRANSFER = "TRANSFER"
    FEE = "FEE"
    FX = "FX"
    SETTLEMENT = "SETTLEMENT"
    REVERSAL = "REVERSAL"
    ADJUSTMENT = "ADJUSTMENT"
    CAPITAL = "CAPITAL"
    REBALANCE = "REBALANCE"


class Entry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One ledger line: a debit or a credit (exactly one is positive) of one account in one
    currency."""

    account: str
    currency: str
    debit: int = 0
    credit: int = 0
    type: EntryType


Entries = tuple[Entry, ...]


def debit(account: str, currency: str, amount: int, kind: EntryType) -> Entry:
    return Entry(account=account, currency=currency, debit=amount, type=kind)


def credit(account: str, currency: str, amount: int, kind: EntryType) -> Entry:
    return Entry(account=account, currency=currency, credit=amount, type=kind)


def _nonzero(*entries: Entry) -> Entries:
    return tuple(e for e in entries if e.debit or e.credit)


def deposit(client_id: str, currency: str, amount: int, bank_name: str) -> Entries:
    return (
        debit(bank(bank_name), currency, amount, EntryType.DEPOSIT),
        credit(client_available(client_id), currency, amount, EntryType.DEPOSIT),
    )


def capital_funding(treasury_account: str, currency: str, amount: int) -> Entries:
    """The operator funds a treasury wallet's inventory from its own capital."""
    return (
        debit(treasury_account, currency, amount, EntryType.CAPITAL),
        credit(EQUITY_CAPITAL, currency, amount, EntryType.CAPITAL),
    )


def rebalance(from_account: str, to_account: str, currency: str, amount: int) -> Entries:
    """Our stablecoin moved from one held account to another (a treasury wallet to a provider's
    prefunding): assets both, so only where it is changes."""
    return (
        debit(to_account, currency, amount, EntryType.REBALANCE),
        credit(from_account, currency, amount, EntryType.REBALANCE),
    )


def hold(client_id: str, currency: str, amount: int) -> Entries:
    return (
        debit(client_available(client_id), currency, amount, EntryType.HOLD),
        credit(client_held(client_id), currency, amount, EntryType.HOLD),
    )


def release(client_id: str, currency: str, amount: int) -> Entries:
    return (
        debit(client_held(client_id), currency, amount, EntryType.RELEASE),
        credit(client_available(client_id), currency, amount, EntryType.RELEASE),
    )


def on_chain_settlement(
    *,
    client_id: str,
    currency: str,
    amount: int,
    fee: int,
    rail_currency: str,
    rail_amount: int,
    treasury_account: str,
    provider_account: str | None,
) -> Entries:
    """The client's held funds leave (fee earned, the rest converted) and the treasury's
    stablecoin leaves, to the beneficiary's wallet or to the off-ramp provider."""
    assert 0 <= fee < amount and rail_amount > 0
    source = _nonzero(
        debit(client_held(client_id), currency, amount, EntryType.TRANSFER),
        credit(FEES_REVENUE, currency, fee, EntryType.FEE),
        credit(FX_POSITION, currency, amount - fee, EntryType.FX),
    )
    if provider_account is None:
        rail = (
            debit(FX_POSITION, rail_currency, rail_amount, EntryType.FX),
            credit(treasury_account, rail_currency, rail_amount, EntryType.TRANSFER),
        )
    else:
        rail = (
            debit(provider_account, rail_currency, rail_amount, EntryType.TRANSFER),
            credit(treasury_account, rail_currency, rail_amount, EntryType.TRANSFER),
        )
    return source + rail


def fiat_settlement(*, rail_currency: str, rail_amount: int, provider_account: str) -> Entries:
    return (
        debit(FX_POSITION, rail_currency, rail_amount, EntryType.FX),
        credit(provider_account, rail_currency, rail_amount, EntryType.SETTLEMENT),
    )


def slippage(*, rail_currency: str, amount: int, provider_account: str, within: bool) -> Entries:
    """A fill that cost the provider `amount` more of our stablecoin than the rail amount (less,
    when negative): to FX P&L within the tolerance, to suspense beyond it (an operator decides)."""
    against = FX_PNL if within else SUSPENSE
    kind = EntryType.FX if within else EntryType.ADJUSTMENT
    if amount > 0:
        return (
            debit(against, rail_currency, amount, kind),
            credit(provider_account, rail_currency, amount, kind),
        )
    if amount < 0:
        return (
            debit(provider_account, rail_currency, -amount, kind),
            credit(against, rail_currency, -amount, kind),
        )
    return ()


def reverse(entries: Entries) -> Entries:
    """The compensating entries: each debit becomes a credit of the same amount and vice versa."""
    return tuple(
        Entry(
            account=e.account,
            currency=e.currency,
            debit=e.credit,
            credit=e.debit,
            type=EntryType.REVERSAL,
        )
        for e in entries
    )
