"""Liquidity thresholds (engine.liquidity): an episode opens when a held balance is first seen
past a bound and closes when it is seen back (crossing to the other bound closes one and opens
another); "treasury" covers every treasury wallet; the rebalancing plan refills accounts below
their floor from accounts above their ceiling first, then from the treasury, and leaves out what
nothing can cover; what is still spare above a ceiling is swept back to the treasury; moves
already proposed or paid count as done, so they are not suggested twice."""

from __future__ import annotations

from engine import events as ev
from engine import liquidity
from engine.liquidity import Bound, Episode, Threshold

BITSO = Threshold(account="provider:bitso-sim", currency="USDC", min_amount=100, max_amount=500)
TREASURY = Threshold(account="treasury", currency="USDC", min_amount=1_000)
WALLET = "treasury:ethereum:0x" + "7e" * 20


def run(balances: list[tuple[str, str, int]], episodes: dict[tuple[str, str], Episode], now: int):  # type: ignore[no-untyped-def]
    changes = liquidity.judge((BITSO, TREASURY), balances, episodes, now)
    for change in changes:
        liquidity.fold(episodes, change)
    return changes


def test_an_episode_opens_once_closes_once_and_crossing_over_is_two() -> None:
    episodes: dict[tuple[str, str], Episode] = {}
    (opened,) = run([("provider:bitso-sim", "USDC", 99)], episodes, 1)
    assert isinstance(opened, ev.LiquidityBreached)
    assert (opened.bound, opened.limit, opened.balance) == ("below_min", 100, 99)
    assert run([("provider:bitso-sim", "USDC", 50)], episodes, 2) == [], "one per episode"
    assert episodes[("provider:bitso-sim", "USDC")].since == 1
    crossed = run([("provider:bitso-sim", "USDC", 501)], episodes, 3)
    assert [type(c).__name__ for c in crossed] == ["LiquidityRestored", "LiquidityBreached"]
    assert episodes[("provider:bitso-sim", "USDC")].bound is Bound.ABOVE_MAX
    (closed,) = run([("provider:bitso-sim", "USDC", 300)], episodes, 4)
    assert isinstance(closed, ev.LiquidityRestored) and episodes == {}
    assert run([("provider:bitso-sim", "EURC", 1), ("bank:x", "USDC", 1)], episodes, 5) == []


def test_treasury_covers_every_treasury_wallet() -> None:
    episodes: dict[tuple[str, str], Episode] = {}
    (opened,) = run([(WALLET, "USDC", 999)], episodes, 1)
    assert isinstance(opened, ev.LiquidityBreached) and opened.account == WALLET


def test_the_plan_refills_from_surplus_first_then_the_treasury() -> None:
    conduit = Threshold(
        account="provider:conduit-sim", currency="USDC", min_amount=100, max_amount=300
    )
    rampa = Threshold(account="provider:rampa-sim", currency="USDC", min_amount=400, max_amount=800)
    balances = [
        ("provider:bitso-sim", "USDC", 650),  # above 500: 350 spare down to its middle (300)
        ("provider:conduit-sim", "USDC", 0),  # needs 200 (its middle)
        ("provider:rampa-sim", "USDC", 100),  # needs 500 (its middle, 600)
        (WALLET, "USDC", 1_200),  # 200 spare above its floor
    ]
    moves = liquidity.plan((BITSO, conduit, rampa, TREASURY), balances)
    assert [(m.from_account, m.to_account, m.currency, m.amount) for m in moves] == [
        ("provider:bitso-sim", "provider:conduit-sim", "USDC", 200),
        ("provider:bitso-sim", "provider:rampa-sim", "USDC", 150),
        (WALLET, "provider:rampa-sim", "USDC", 200),
    ]
    assert liquidity.plan((BITSO,), [("provider:bitso-sim", "USDC", 300)]) == []


def test_the_plan_counts_moves_under_way_as_done() -> None:
    balances = [("provider:bitso-sim", "USDC", 0), (WALLET, "USDC", 10_000)]
    (suggested,) = liquidity.view((BITSO, TREASURY), balances, {}).plan
    assert (suggested.from_account, suggested.amount) == (WALLET, 300)
    under_way = liquidity.Move(
        from_account=WALLET, to_account="provider:bitso-sim", currency="USDC", amount=50
    )
    view = liquidity.view((BITSO, TREASURY), balances, {}, (under_way,))
    assert [m.amount for m in view.plan] == [300 - 50], "only what is still missing"
    assert view.standings[0].balance == 0, "the standings are the ledger's"
    view = liquidity.view((BITSO, TREASURY), balances, {}, (under_way, under_way))
    assert view.plan == (), "at 100, its floor: nothing to refill"


def test_what_a_provider_above_its_ceiling_has_spare_is_swept_back_to_the_treasury() -> None:
    balances = [("provider:bitso-sim", "USDC", 900), (WALLET, "USDC", 10_000)]
    (sweep,) = liquidity.plan((BITSO, TREASURY), balances)
    assert (sweep.from_account, sweep.to_account, sweep.amount) == (
        "provider:bitso-sim", WALLET, 900 - 300,
    )  # fmt: skip
    assert liquidity.plan((BITSO,), [("provider:bitso-sim", "USDC", 900)]) == [], "no wallet"
