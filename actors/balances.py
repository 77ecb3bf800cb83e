"""Balance-level checks, run by the reconciler every `Tuning.balance_check_s` (engine.balances
says what is compared and what the transfers in flight explain).

The ledger's held balances are first judged against their liquidity thresholds (actors.liquidity).
Then each held account (a treasury wallet per asset, a provider's prefunding, our bank account) is
read against its holder. A reading is recorded as evidence whenever it differs from the last one
recorded for the account (the drift's history), and a drift outside the in-flight window starts
an episode: if it stays unexplained for `Tuning.balance_drift_persist_s`, the episode is one
`balance_drift` case, opened once (an operator closing it closes the episode); the pipeline closes
the case when a reading is explained again. A holder that cannot answer is asked again at the next
check; with more transfers in flight than a check folds, no case is opened (the window is not
known).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from actors.evidence import record_evidence
from engine import discrepancies as dc
from engine import limits, matching, rebalance
from engine.balances import BALANCE_READING, Reading, drift_finding, in_flight, source_of
from engine.rails import RailError
from engine.rebalance import Rebalance
from engine.reconciliation import Kind, Source

if TYPE_CHECKING:
    from actors.context import Context
    from actors.reconciler import Reconciler


@dataclasses.dataclass(slots=True)
class _Episode:
    evidence_id: str
    since: int


class BalanceChecks:
    def __init__(self, ctx: Context, reconciler: Reconciler) -> None:
        self.ctx = ctx
        self.reconciler = reconciler
        # (account, currency) -> the last reading recorded (and its evidence id), and the
        # unexplained episode if any.
        self.recorded: dict[tuple[str, str], tuple[Reading, str]] = {}
        self.episodes: dict[tuple[str, str], _Episode] = {}
        self.next_us = 0
        self.checks = 0
        # The rebalancing moves paid and not yet booked (actors.rebalancer).
        self.moves: Callable[[], list[Rebalance]] = list

    async def maybe_check(self, now: int) -> None:
        """The first check one interval after start (the process has just caught up), then one
        every interval."""
        interval = int(self.ctx.tuning.balance_check_s * 1e6)
        if self.next_us == 0:
            self.next_us = now + interval
        if now < self.next_us:
            return
        self.next_us = now + interval
        await self.check(now)

    async def check(self, now: int) -> None:
        self.checks += 1
        states = await self.ctx.journal.in_flight(limits.balance_in_flight_max)
        window_known = len(states) < limits.balance_in_flight_max
        held = await self.ctx.journal.held_balances()
        await self.reconciler.liquidity.check(held, now)
        for account, currency, ledger in held:
            source = source_of(account)
            if source is None:
                continue
            try:
                async with asyncio.timeout(limits.rail_call_timeout_s):
                    holder, external = await self._holder_says(source, account, currency)
            except (RailError, TimeoutError):
                continue  # Asked again at the next check.
            low, high = in_flight(account, currency, states)
            moved_low, moved_high = rebalance.in_flight(account, currency, self.moves())
            low, high = low + moved_low, high + moved_high
            reading = Reading(
                source=source, holder=holder, account=account, currency=currency,
                ledger=ledger, external=external, low=low, high=high, at=now,
            )  # fmt: skip
            await self._judge(reading, window_known, now)

    async def _holder_says(self, source: Source, account: str, currency: str) -> tuple[str, int]:
        parts = account.split(":")
        rails = self.ctx.rails
        match source:
            case Source.CHAIN:
                chain, address = parts[1], parts[2]
                found = await rails.indexer.token_balance(chain, currency, address)
                return matching.chain_provider(chain), found
            case Source.PROVIDER:
                return parts[1], await rails.offramp.prefunded(parts[1], currency)
            case Source.BANK:
                return parts[1], await rails.bank.closing_balance(parts[1], currency)

    async def _judge(self, reading: Reading, window_known: bool, now: int) -> None:
        key = (reading.account, reading.currency)
        open_cases = [
            k
            for k in self.reconciler.open.values()
            if k.kind is Kind.BALANCE_DRIFT
            and (k.expected.get("account"), k.expected.get("currency")) == key
        ]
        evidence_id = await self._record(key, reading, now)
        episode = self.episodes.get(key)
        if reading.explained:
            self.episodes.pop(key, None)
        elif episode is None:
            # After a restart, an open case is the episode still going on.
            adopted = open_cases[0] if open_cases else None
            episode = (
                _Episode(adopted.evidence_ids[0], adopted.created_at)
                if adopted is not None
                else _Episode(evidence_id, now)
            )
            self.episodes[key] = episode
        for case in open_cases:
            if episode is None or case.evidence_ids[0] != episode.evidence_id:
                if reading.drift == 0:
                    note = "the balances agree again"
                elif reading.explained:
                    note = (
                        f"the drift ({reading.drift}) is within what the transfers in flight"
                        f" explain ({reading.low}..{reading.high})"
                    )
                else:
                    note = f"superseded: the drift is now {reading.drift}, another episode"
                await self.reconciler.append_case(case, dc.close_by_pipeline(case, note, now))
        persist_us = int(self.ctx.tuning.balance_drift_persist_s * 1e6)
        if episode is not None and window_known and now - episode.since >= persist_us:
            await self.reconciler.case_for(drift_finding(reading, episode.evidence_id), now)

    async def _record(self, key: tuple[str, str], reading: Reading, now: int) -> str:
        """The evidence id of the reading as recorded: a new row when it says something new
        (the drift or the window changed), else the last one's."""
        last = self.recorded.get(key)
        if last is not None and (last[0].drift, last[0].low, last[0].high) == (
            reading.drift, reading.low, reading.high,
        ):  # fmt: skip
            return last[1]
        evidence_id = await record_evidence(
            self.ctx,
            provider=reading.holder,
            event_type=BALANCE_READING,
            external_ref=f"{reading.account}/{reading.currency}/{now}",
            occurred_at=now,
            transfer_id=None,
            normalized=reading.normalized(),
            raw=msgspec.json.encode(reading),
        )
        self.recorded[key] = (reading, evidence_id)
        return evidence_id
