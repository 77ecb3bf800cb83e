"""The `[pricing]` and `[providers.NAME]` sections of `serve`'s config file.

    [pricing]
    quote_deadline_s = 2.0       # how long the desk waits for each provider's quote
    prefunded_corridors = ["USD-MXN"]   # paid from the provider's prefunding at broadcast
                                 # (the others just in time: once the deposit is confirmed)
    [pricing.breaker]            # each provider's circuit breaker (engine.breaker)
    failures_to_open = 5         # failures in a row that open it
    open_s = 30                  # how long it stays open before one probe is let through
    probes = 1                   # calls let through at a time while half-open
    successes_to_close = 2       # probe successes in a row that close it again
    [pricing.requote]            # a quote that expired before it was used (engine.pricing)
    mode = "auto"                # re-quote at the market; "require_new": the transfer ends
    tolerance_bps = 50           # auto: a new price this much worse ends it too (absent: any)
    [pricing.requote.clients.acme]   # one client's own policy
    mode = "require_new"
    [pricing.slippage]           # a payout filled off its quote (engine.transfer)
    tolerance_bps = 50           # within: the difference is FX P&L; beyond: fx_mismatch case
    [pricing.slippage.corridors.USD-MXN]
    tolerance_bps = 30           # one corridor's own

    [providers.rampa-sim]        # the operator's terms for one provider (engine.pricing)
    enabled = true               # false: never asked
    compliance = "approved"      # or "under_review", "suspended": only approved is asked
    [providers.rampa-sim.corridors.USD-MXN]   # listing corridors limits it to those
    min_amount = "100.00"        # in the corridor's source currency
    max_amount = "50000.00"
    [providers.rampa-sim.deposit_addresses]   # the address book: where a rebalancing move
    ethereum = "0x…"             # pays this provider's prefunding (engine.rebalance)

    [[liquidity]]                # a held balance's floor and ceiling (engine.liquidity)
    account = "provider:bitso-sim"   # or "treasury" (every treasury wallet), or an account
    currency = "USDC"
    min = "250000.00"            # below: one alert per episode; either bound may be left out
    max = "2000000.00"

A provider with no section is asked on open terms: every corridor it serves, any amount.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from engine import ledger, liquidity, money, policy
from engine import limits as engine_limits
from engine.breaker import BreakerSettings
from engine.destinations import CHAINS, is_address
from engine.ledger import AccountKind
from engine.liquidity import Threshold
from engine.pricing import Compliance, CorridorTerms, ProviderTerms, Requote, RequotePolicy
from engine.results import Result


class PricingError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class PricingSettings:
    quote_deadline_s: float = 2.0
    breaker: BreakerSettings = dataclasses.field(default_factory=BreakerSettings)
    terms: tuple[tuple[str, ProviderTerms], ...] = ()
    requote: RequotePolicy = dataclasses.field(default_factory=RequotePolicy)
    requote_by_client: tuple[tuple[str, RequotePolicy], ...] = ()
    liquidity: tuple[Threshold, ...] = ()
    slippage_bps: int = 50
    slippage_by_corridor: tuple[tuple[str, int], ...] = ()
    prefunded_corridors: frozenset[str] = frozenset()


_BREAKER_KEYS = ("failures_to_open", "open_s", "probes", "successes_to_close")


def _table(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PricingError(f"{where} is a table")
    return value


def _unknown(where: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
    for key in table:
        if key not in known:
            raise PricingError(f"{where}: {key} is not one of {', '.join(known)}")


def _whole(where: str, value: object, least: int, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        raise PricingError(f"{where} is a whole number from {least} to {most}")
    return value


def _amount(where: str, table: dict[str, Any], key: str, asset: money.Asset) -> int | None:
    """`table[key]`, an amount of `asset` written as a decimal string (absent: None)."""
    text = table.get(key)
    if text is None:
        return None
    parsed = money.parse_amount(text, asset) if isinstance(text, str) else None
    if parsed is None or isinstance(parsed, Result):
        raise PricingError(f'{where} {key} is an amount in {asset.code}, like "100.00"')
    return parsed


def _number(where: str, value: object, least: float, most: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not least <= value <= most:
        raise PricingError(f"{where} is a number from {least} to {most}")
    return float(value)


def pricing_section(path: Path, raw: dict[str, Any]) -> PricingSettings:
    """The pricing settings in the file at `path` (parsed TOML `raw`); a bad value stops the
    start naming the key."""
    pricing = _table(f"{path}: [pricing]", raw.get("pricing", {}))
    _unknown(
        f"{path}: [pricing]",
        pricing,
        ("quote_deadline_s", "breaker", "requote", "slippage", "prefunded_corridors"),
    )
    deadline = _number(
        f"{path}: [pricing] quote_deadline_s", pricing.get("quote_deadline_s", 2.0), 0.05, 60.0
    )
    section = _table(f"{path}: [pricing.breaker]", pricing.get("breaker", {}))
    _unknown(f"{path}: [pricing.breaker]", section, _BREAKER_KEYS)
    where = f"{path}: [pricing.breaker]"
    default = BreakerSettings()
    breaker = BreakerSettings(
        failures_to_open=_whole(
            f"{where} failures_to_open", section.get("failures_to_open", 5), 1, 1_000
        ),
        open_us=int(
            _number(f"{where} open_s", section.get("open_s", default.open_us / 1e6), 0.1, 86_400)
            * 1_000_000
        ),
        probes=_whole(f"{where} probes", section.get("probes", default.probes), 1, 100),
        successes_to_close=_whole(
            f"{where} successes_to_close",
            section.get("successes_to_close", default.successes_to_close),
            1,
            100,
        ),
    )
    providers = _table(f"{path}: [providers]", raw.get("providers", {}))
    terms = tuple(
        (name, _terms(f"{path}: [providers.{name}]", value))
        for name, value in sorted(providers.items())
    )
    rows = raw.get("liquidity", [])
    if not isinstance(rows, list):
        raise PricingError(f"{path}: [[liquidity]] is an array of tables")
    thresholds = tuple(
        _threshold(f"{path}: [[liquidity]] #{n}", row) for n, row in enumerate(rows, 1)
    )
    seen = {(t.account, t.currency) for t in thresholds}
    if len(seen) < len(thresholds):
        raise PricingError(f"{path}: [[liquidity]] names an account and currency twice")
    requote = _table(f"{path}: [pricing.requote]", pricing.get("requote", {}))
    clients = _table(f"{path}: [pricing.requote.clients]", requote.pop("clients", {}))
    slippage = _table(f"{path}: [pricing.slippage]", pricing.get("slippage", {}))
    corridors = _table(f"{path}: [pricing.slippage.corridors]", slippage.pop("corridors", {}))
    for corridor in corridors:
        if corridor not in policy.CORRIDOR_IDS:
            raise PricingError(
                f"{path}: [pricing.slippage.corridors.{corridor}]: not a corridor"
                f" (one of {', '.join(policy.CORRIDOR_IDS)})"
            )
    return PricingSettings(
        quote_deadline_s=deadline,
        breaker=breaker,
        terms=terms,
        requote=_requote(f"{path}: [pricing.requote]", requote),
        liquidity=thresholds,
        requote_by_client=tuple(
            (client, _requote(f"{path}: [pricing.requote.clients.{client}]", value))
            for client, value in sorted(clients.items())
        ),
        slippage_bps=_slippage(f"{path}: [pricing.slippage]", slippage),
        prefunded_corridors=_prefunded(
            f"{path}: [pricing] prefunded_corridors", pricing.get("prefunded_corridors", [])
        ),
        slippage_by_corridor=tuple(
            (corridor, _slippage(f"{path}: [pricing.slippage.corridors.{corridor}]", value))
            for corridor, value in sorted(corridors.items())
        ),
    )


def _prefunded(where: str, value: object) -> frozenset[str]:
    """Bank corridors (a fiat target) whose payouts are paid from the provider's prefunding."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PricingError(f"{where} is a list of corridor ids")
    for corridor in value:
        target = money.asset(corridor.partition("-")[2])
        if (
            corridor not in policy.CORRIDOR_IDS
            or target is None
            or (target.kind is not money.AssetKind.FIAT)
        ):
            raise PricingError(f"{where}: {corridor} is not a corridor paid out to a bank")
    return frozenset(value)


def _slippage(where: str, value: object) -> int:
    """A slippage tolerance in basis points (`tolerance_bps`; absent: the engine's default)."""
    table = _table(where, value)
    _unknown(where, table, ("tolerance_bps",))
    bps = table.get("tolerance_bps", engine_limits.slippage_tolerance_bps)
    return _whole(f"{where} tolerance_bps", bps, 0, engine_limits.slippage_tolerance_bps_max)


def _threshold(where: str, value: object) -> Threshold:
    table = _table(where, value)
    _unknown(where, table, ("account", "currency", "min", "max"))
    account = table.get("account")
    kinds = (AccountKind.TREASURY, AccountKind.PROVIDER)
    if not isinstance(account, str) or (
        account != liquidity.TREASURY and ledger.account_kind(account) not in kinds
    ):
        raise PricingError(
            f'{where} account is "treasury", "treasury:CHAIN:ADDRESS" or "provider:NAME"'
        )
    asset = money.asset(str(table.get("currency", "")))
    if asset is None or asset.kind is money.AssetKind.FIAT:
        raise PricingError(f"{where} currency is a stablecoin the ledger knows (USDC, EURC)")
    least, most = _amount(where, table, "min", asset), _amount(where, table, "max", asset)
    if least is None and most is None:
        raise PricingError(f"{where}: min, max or both")
    if least is not None and most is not None and most < least:
        raise PricingError(f"{where}: max is below min")
    return Threshold(account=account, currency=asset.code, min_amount=least, max_amount=most)


def _requote(where: str, value: object) -> RequotePolicy:
    table = _table(where, value)
    _unknown(where, table, ("mode", "tolerance_bps"))
    mode = table.get("mode", Requote.AUTO.value)
    if mode not in Requote.__members__.values():
        raise PricingError(f"{where} mode is one of {', '.join(Requote)}")
    tolerance = table.get("tolerance_bps")
    if tolerance is not None:
        tolerance = _whole(f"{where} tolerance_bps", tolerance, 0, 10_000)
    return RequotePolicy(mode=Requote(mode), tolerance_bps=tolerance)


def _terms(where: str, value: object) -> ProviderTerms:
    table = _table(where, value)
    _unknown(where, table, ("enabled", "compliance", "corridors", "deposit_addresses"))
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PricingError(f"{where} enabled is true or false")
    compliance = table.get("compliance", Compliance.APPROVED.value)
    if compliance not in Compliance.__members__.values():
        raise PricingError(f"{where} compliance is one of {', '.join(Compliance)}")
    corridors = _table(f"{where} corridors", table.get("corridors", {}))
    book = _table(f"{where} deposit_addresses", table.get("deposit_addresses", {}))
    for chain, address in book.items():
        if chain not in CHAINS:
            raise PricingError(f"{where} deposit_addresses: {chain} is not one of {sorted(CHAINS)}")
        if not isinstance(address, str) or not is_address(address):
            raise PricingError(f"{where} deposit_addresses.{chain} is a 0x address")
    return ProviderTerms(
        enabled=enabled,
        compliance=Compliance(compliance),
        corridors={
            corridor: _corridor(f"{where} corridors.{corridor}", corridor, limits)
            for corridor, limits in sorted(corridors.items())
        },
        deposit_addresses={chain: address.lower() for chain, address in sorted(book.items())},
    )


def _corridor(where: str, corridor: str, value: object) -> CorridorTerms:
    if corridor not in policy.CORRIDOR_IDS:
        raise PricingError(f"{where}: not a corridor (one of {', '.join(policy.CORRIDOR_IDS)})")
    table = _table(where, value)
    _unknown(where, table, ("min_amount", "max_amount"))
    source = money.asset(corridor.partition("-")[0])
    assert source is not None  # a corridor's source currency is a known one
    least = _amount(where, table, "min_amount", source) or 0
    most = _amount(where, table, "max_amount", source)
    if most is not None and most < least:
        raise PricingError(f"{where}: max_amount is below min_amount")
    return CorridorTerms(min_amount=least, max_amount=most)
