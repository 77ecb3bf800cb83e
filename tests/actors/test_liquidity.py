"""The liquidity watch (actors.liquidity) over a real store, in virtual time: a balance past its
floor opens one journaled episode and raises one alert; seeing it again, or restarting (a new
watch folds the stream and re-raises the open episode's alert), adds nothing; a balance back
within closes the episode."""

from __future__ import annotations

from pathlib import Path

from actors.context import Context, Tuning
from actors.liquidity import LiquidityWatch
from engine import events as ev
from engine.liquidity import Threshold
from sim.clock import VirtualClock
from store.store import Store
from tests.actors.test_pricing import in_desk, providers

FLOOR = Threshold(account="provider:bitso-sim", currency="USDC", min_amount=100)


async def kinds(store: Store) -> list[str]:
    rows = await store.reader.fetchall(
        "SELECT event_type FROM journal WHERE event_type IN"
        " ('LiquidityBreached', 'LiquidityRestored', 'AlertRaised') ORDER BY seq"
    )
    return [kind for (kind,) in rows]


def test_one_episode_one_alert_across_a_restart(tmp_path: Path) -> None:
    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        watch = LiquidityWatch(ctx)
        await watch.open()
        low = [("provider:bitso-sim", "USDC", 99), ("provider:rampa-sim", "USDC", 0)]
        await watch.check(low, clock.now_us())
        assert await kinds(store) == ["LiquidityBreached", "AlertRaised"]
        await watch.check(low, clock.now_us() + 1)
        restarted = LiquidityWatch(ctx)
        await restarted.open()
        assert list(restarted.episodes) == [("provider:bitso-sim", "USDC")]
        await restarted.check(low, clock.now_us() + 2)
        assert await kinds(store) == ["LiquidityBreached", "AlertRaised"], "one per episode"
        await restarted.check([("provider:bitso-sim", "USDC", 100)], clock.now_us() + 3)
        assert await kinds(store) == ["LiquidityBreached", "AlertRaised", "LiquidityRestored"]
        assert restarted.episodes == {}
        opened = (await store.load_stream(ev.LIQUIDITY_STREAM))[0].event
        assert isinstance(opened, ev.LiquidityBreached) and opened.limit == 100

    in_desk(tmp_path, providers(), Tuning(liquidity=(FLOOR,)), body)
