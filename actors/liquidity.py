"""The liquidity watch: every balance check (actors.balances) judges the ledger's held balances
against the configured thresholds (engine.liquidity). An episode that opens or closes is
journaled on the "liquidity" stream first; an opened one raises one operator alert, whose id
comes from the episode's journaled start, so a restart (which folds the stream again and
re-raises the open episodes' alerts) never raises a second."""

from __future__ import annotations

from actors.alerts import raise_alert
from actors.context import Context
from engine import events as ev
from engine import liquidity
from engine.liquidity import Episode
from engine.records import Committed, Rejected
from engine.results import Result


class LiquidityWatch:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.episodes: dict[tuple[str, str], Episode] = {}
        self.version = 0
        self.alerts = 0

    async def open(self) -> None:
        records = await self.ctx.journal.stream(ev.LIQUIDITY_STREAM)
        for record in records:
            change = record.event
            assert isinstance(change, ev.LiquidityBreached | ev.LiquidityRestored)
            liquidity.fold(self.episodes, change)
        self.version = len(records)
        for episode in list(self.episodes.values()):
            await self._alert(episode)

    async def check(self, balances: list[tuple[str, str, int]], now: int) -> None:
        thresholds = self.ctx.tuning.liquidity
        if not thresholds and not self.episodes:
            return
        changes = liquidity.judge(thresholds, balances, self.episodes, now)
        if not changes:
            return
        outcome = await self.ctx.journal.append(ev.LIQUIDITY_STREAM, self.version, changes)
        if isinstance(outcome, Rejected):
            assert outcome.result in (Result.version_conflict, Result.stream_exists), outcome
            await self.open()  # the stream moved under us: fold again, judge at the next check
            return
        assert isinstance(outcome, Committed), outcome
        self.version += len(changes)
        for change in changes:
            liquidity.fold(self.episodes, change)
            if isinstance(change, ev.LiquidityBreached):
                await self._alert(self.episodes[(change.account, change.currency)])

    async def _alert(self, episode: Episode) -> None:
        word = (
            "below its floor" if episode.bound is liquidity.Bound.BELOW_MIN else "above its ceiling"
        )
        raised = await raise_alert(
            self.ctx,
            kind=f"liquidity_{episode.bound.value}",
            transfer_id=None,
            status=None,
            cause_at_us=episode.since,
            subject=f"{episode.account}/{episode.currency}",
            detail=(
                f"{episode.account} holds {episode.balance} {episode.currency} minor units,"
                f" {word} of {episode.limit}"
            ),
        )
        self.alerts += raised
