"""Liquidity thresholds (Series 7's inventory risk): each treasury wallet and each provider's
prefunding, per asset, has a floor and a ceiling; the ledger's balance is judged against them.

A breach is an episode: it opens when the balance is first seen outside its bounds and closes
when it is first seen back inside (or on the other side: one episode closes, another opens).
Both are journaled on the "liquidity" stream (LiquidityBreached, LiquidityRestored), so an
episode is known across restarts and raises exactly one operator alert. Pure: the caller reads
the balances and journals what `judge` returns.
"""

from __future__ import annotations

import enum

import msgspec

from engine import events as ev

# The threshold account that stands for every treasury wallet of the chains served.
TREASURY = "treasury"


class Bound(enum.StrEnum):
    BELOW_MIN = "below_min"
    ABOVE_MAX = "above_max"


class Threshold(msgspec.Struct, frozen=True, kw_only=True):
    """`account`: a ledger account ("provider:bitso-sim", "treasury:ethereum:0x…"), or
    "treasury" for every treasury wallet. Amounts in the currency's minor units."""

    account: str
    currency: str
    min_amount: int | None = None
    max_amount: int | None = None

    def covers(self, account: str, currency: str) -> bool:
        if currency != self.currency:
            return False
        if self.account == TREASURY:
            return account.startswith(f"{TREASURY}:")
        return account == self.account


class Episode(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    currency: str
    bound: Bound
    limit: int
    since: int
    balance: int


def bound_of(threshold: Threshold, balance: int) -> tuple[Bound, int] | None:
    """Which bound `balance` is past, and that bound's amount (None: within)."""
    if threshold.min_amount is not None and balance < threshold.min_amount:
        return Bound.BELOW_MIN, threshold.min_amount
    if threshold.max_amount is not None and balance > threshold.max_amount:
        return Bound.ABOVE_MAX, threshold.max_amount
    return None


Change = ev.LiquidityBreached | ev.LiquidityRestored


def judge(
    thresholds: tuple[Threshold, ...],
    balances: list[tuple[str, str, int]],
    episodes: dict[tuple[str, str], Episode],
    now: int,
) -> list[Change]:
    """The episodes that open and close given the ledger's `balances` now."""
    changes: list[Change] = []
    for account, currency, balance in balances:
        threshold = next((t for t in thresholds if t.covers(account, currency)), None)
        if threshold is None:
            continue
        past = bound_of(threshold, balance)
        episode = episodes.get((account, currency))
        if episode is not None and (past is None or past[0] is not episode.bound):
            changes.append(
                ev.LiquidityRestored(
                    at=now,
                    account=account,
                    currency=currency,
                    bound=episode.bound.value,
                    balance=balance,
                )
            )
        if past is not None and (episode is None or past[0] is not episode.bound):
            changes.append(
                ev.LiquidityBreached(
                    at=now,
                    account=account,
                    currency=currency,
                    bound=past[0].value,
                    limit=past[1],
                    balance=balance,
                )
            )
    return changes


def fold(episodes: dict[tuple[str, str], Episode], change: Change) -> None:
    key = (change.account, change.currency)
    match change:
        case ev.LiquidityBreached():
            episodes[key] = Episode(
                account=change.account, currency=change.currency, bound=Bound(change.bound),
                limit=change.limit, since=change.at, balance=change.balance,
            )  # fmt: skip
        case ev.LiquidityRestored():
            episodes.pop(key, None)


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """One held balance as operators see it: its bounds and the episode it is in, if any."""

    account: str
    currency: str
    balance: int
    threshold: Threshold | None
    # The bound the balance is past now (None: within, or no threshold), and the journaled
    # episode (it opens at the next balance check after a breach).
    past: Bound | None
    episode: Episode | None


class Move(msgspec.Struct, frozen=True, kw_only=True):
    """A suggested rebalancing move: stablecoin from one held account to another."""

    from_account: str
    to_account: str
    currency: str
    amount: int


def _target(threshold: Threshold) -> int:
    """Where a rebalanced account is brought: the middle of its band, or its floor."""
    low = threshold.min_amount or 0
    if threshold.max_amount is None:
        return low
    return low + (threshold.max_amount - low) // 2


class View(msgspec.Struct, frozen=True, kw_only=True):
    standings: tuple[Standing, ...]
    plan: tuple[Move, ...]


def view(
    thresholds: tuple[Threshold, ...],
    balances: list[tuple[str, str, int]],
    episodes: dict[tuple[str, str], Episode],
    pending: tuple[Move, ...] = (),
) -> View:
    """Every held balance with its bounds and episode, and the rebalancing plan: planned as if
    the `pending` moves (proposed or paid, not yet booked) were done, so a move already under
    way is not suggested again."""
    standings = []
    for account, currency, balance in sorted(balances):
        threshold = next((t for t in thresholds if t.covers(account, currency)), None)
        past = bound_of(threshold, balance) if threshold is not None else None
        standings.append(
            Standing(
                account=account,
                currency=currency,
                balance=balance,
                threshold=threshold,
                past=past[0] if past is not None else None,
                episode=episodes.get((account, currency)),
            )
        )
    after = {(account, currency): balance for account, currency, balance in balances}
    for move in pending:
        source, target = (move.from_account, move.currency), (move.to_account, move.currency)
        after[source] = after.get(source, 0) - move.amount
        after[target] = after.get(target, 0) + move.amount
    planned = [(a, c, b) for (a, c), b in after.items()]
    return View(standings=tuple(standings), plan=tuple(plan(thresholds, planned)))


def plan(thresholds: tuple[Threshold, ...], balances: list[tuple[str, str, int]]) -> list[Move]:
    """Moves that bring every account below its floor back to its band's middle: first from
    accounts above their ceilings (down to their middle), then from treasury wallets (down to
    their floor, or all of it without one). What no source can cover is left out: the operator
    sees the breach and buys inventory. What an account above its ceiling still has spare then
    goes back to the treasury wallet of its currency (a sweep). Deterministic: accounts in name
    order."""
    covered = {
        (account, currency): (next((t for t in thresholds if t.covers(account, currency)), None), b)
        for account, currency, b in balances
    }
    spare: dict[tuple[str, str], int] = {}
    for key, (threshold, balance) in sorted(covered.items()):
        if (
            threshold is not None
            and threshold.max_amount is not None
            and (balance > threshold.max_amount)
        ):
            spare[key] = balance - _target(threshold)
    for key, (threshold, balance) in sorted(covered.items()):
        if key[0].startswith(f"{TREASURY}:") and key not in spare:
            floor = (threshold.min_amount or 0) if threshold is not None else 0
            if balance > floor:
                spare[key] = balance - floor
    moves = []
    for (account, currency), (threshold, balance) in sorted(covered.items()):
        if threshold is None or threshold.min_amount is None or balance >= threshold.min_amount:
            continue
        need = _target(threshold) - balance
        for source in [k for k in spare if k[1] == currency and k[0] != account]:
            if need <= 0:
                break
            take = min(need, spare[source])
            if take <= 0:
                continue
            spare[source] -= take
            need -= take
            moves.append(
                Move(from_account=source[0], to_account=account, currency=currency, amount=take)
            )
    for (account, currency), left in spare.items():
        if left <= 0 or account.startswith(f"{TREASURY}:"):
            continue
        wallet = next(
            (a for a, c in sorted(covered) if c == currency and a.startswith(f"{TREASURY}:")), None
        )
        if wallet is not None:
            moves.append(
                Move(from_account=account, to_account=wallet, currency=currency, amount=left)
            )
    return moves
