"""The pricing desk (actors.pricing) against scripted providers, in virtual time, over a real
store:
- every eligible provider is asked at once: the quote takes as long as the slowest answer, not
  the sum; the best price after fees wins and every answer is kept on the quote, raw responses
  included;
- a provider past the deadline is TIMED_OUT and does not hold the quote up;
- failures in a row open a provider's breaker (journaled), an open provider is not asked, and
  after its wait one probe goes through and successes close it again (journaled too); a provider
  that refuses has answered: its breaker stays closed;
- an open breaker is still open after a restart (folded from the journal);
- no price at all is a transient refusal naming what became of each provider; a request no
  provider's terms take is a refusal that retrying cannot change (no_eligible_provider).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from actors.context import Context, Rails, Tuning
from actors.pricing import QuoteDesk
from engine import events as ev
from engine.breaker import BreakerSettings, CircuitState
from engine.nonces import NonceBook
from engine.pricing import CorridorTerms, ProviderTerms
from engine.quotes import Answered
from engine.rails import ProviderQuote, QuoteRequest, RailError
from engine.results import Result
from sim.clock import SeededIds, VirtualClock, run_virtual
from sim.faults import FaultLog, FaultPlan
from sim.world import SimRails
from store.executor import ExecutorKind
from store.store import Store

REQUEST = QuoteRequest(
    transfer_id="tr_1", client_id="acme", source_currency="USD", target_currency="MXN",
    amount=100_000, bank=True,
)  # fmt: skip


class Scripted:
    """A provider that answers `rate` and `fee` after `latency_s`, or fails as `mode` says
    ("ok", "error": a transient error, "refuse": a refusal for good, "hang": never answers in
    time)."""

    def __init__(self, name: str, rate: str, fee: int, latency_s: float = 0.5) -> None:
        self._name, self.rate, self.fee, self.latency_s = name, rate, fee, latency_s
        self.mode = "ok"
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    def corridors(self) -> frozenset[str]:
        return frozenset({"USD-MXN"})

    async def quote(self, request: QuoteRequest) -> ProviderQuote:
        self.calls += 1
        if self.mode == "hang":
            await asyncio.sleep(3_600)
        await asyncio.sleep(self.latency_s)
        if self.mode == "error":
            raise RailError(Result.provider_unavailable, f"{self.name} is down", transient=True)
        if self.mode == "refuse":
            raise RailError(Result.currency_pair_unsupported, "not today", transient=False)
        body = {"quote": f"{self.name}-1", "rate": self.rate, "fee": self.fee}
        return ProviderQuote(
            provider=self.name, rate=self.rate, fee=self.fee, ttl_us=30_000_000,
            provider_quote_id=f"{self.name}-1", raw=msgspec.json.encode(body).decode(),
            payout_address="0x" + "0f" * 20,
        )  # fmt: skip


Body = Callable[[Context, Store, VirtualClock], Awaitable[None]]


def in_desk(tmp_path: Path, providers: tuple[Scripted, ...], tuning: Tuning, body: Body) -> None:
    clock = VirtualClock()

    async def main() -> None:
        ids = SeededIds(1, clock)
        faults = FaultLog(FaultPlan.none(), random.Random(1))
        sim = SimRails.build(1, faults, clock, ids).ports()
        async with Store.open(
            tmp_path / "data", clock=clock, executor=ExecutorKind.INLINE, migrate=True
        ) as store:
            rails = Rails(
                quotes=providers, custody=sim.custody, chain=sim.chain, indexer=sim.indexer,
                offramp=sim.offramp, bank=sim.bank,
            )  # fmt: skip
            ctx = Context(
                journal=store, clock=clock, ids=ids, rails=rails, nonces=NonceBook(),
                tuning=tuning,
            )  # fmt: skip
            await body(ctx, store, clock)

    run_virtual(main, clock)


def providers() -> tuple[Scripted, Scripted, Scripted]:
    return (
        Scripted("bitso-sim", "17.20000000", 500, latency_s=0.4),
        Scripted("conduit-sim", "17.18000000", 200, latency_s=0.9),
        Scripted("rampa-sim", "17.21000000", 350, latency_s=0.6),
    )


def test_every_provider_is_asked_at_once_and_the_best_price_after_fees_wins(
    tmp_path: Path,
) -> None:
    bitso, conduit, rampa = providers()

    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        desk = QuoteDesk(ctx)
        await desk.open()
        started = clock.now_us()
        quote = await desk.quote(REQUEST)
        took_s = (clock.now_us() - started) / 1e6
        assert 0.9 <= took_s < 1.2, "as long as the slowest (0.9 s), not the sum (1.9 s)"
        # (1000.00 - fee) x rate: bitso 995 x 17.20 = 17114; conduit 998 x 17.18 = 17145.64;
        # rampa 996.50 x 17.21 = 17149.765
        assert (quote.provider, quote.target_amount) == ("rampa-sim", 17_149_76)
        assert quote.fee == 350 and quote.rate == "17.21000000"
        chosen = next(a for a in quote.alternatives if a.provider == quote.provider)
        assert quote.provider_quote_id == "rampa-sim-1" == chosen.provider_quote_id
        assert '"rate":"17.21000000"' in chosen.raw
        assert quote.quote_id.startswith("qt_")
        assert [(a.provider, a.answered, a.target_amount) for a in quote.alternatives] == [
            ("bitso-sim", Answered.QUOTED, 17_114_00),
            ("conduit-sim", Answered.QUOTED, 17_145_64),
            ("rampa-sim", Answered.QUOTED, 17_149_76),
        ]
        assert all(a.raw for a in quote.alternatives)
        assert [a.latency_us // 100_000 for a in quote.alternatives] == [4, 9, 6]

    in_desk(tmp_path, (bitso, conduit, rampa), Tuning(), body)


def test_a_provider_past_the_deadline_is_timed_out_and_does_not_hold_the_quote_up(
    tmp_path: Path,
) -> None:
    bitso, conduit, rampa = providers()
    rampa.mode = "hang"

    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        desk = QuoteDesk(ctx)
        started = clock.now_us()
        quote = await desk.quote(REQUEST)
        assert (clock.now_us() - started) / 1e6 == pytest.approx(1.5, abs=0.01)
        assert quote.provider == "conduit-sim"
        answers = {a.provider: a.answered for a in quote.alternatives}
        assert answers["rampa-sim"] is Answered.TIMED_OUT

    in_desk(tmp_path, (bitso, conduit, rampa), Tuning(quote_deadline_s=1.5), body)


def test_the_breaker_opens_skips_the_provider_then_probes_and_closes_all_journaled(
    tmp_path: Path,
) -> None:
    bitso, conduit, rampa = providers()
    rampa.mode = "error"
    settings = BreakerSettings(failures_to_open=2, open_us=60_000_000, successes_to_close=1)

    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        desk = QuoteDesk(ctx)
        for _ in range(2):
            quote = await desk.quote(REQUEST)
            assert quote.provider == "conduit-sim"
        assert rampa.calls == 4, "each quote asks twice (one retry of a transient error)"
        assert desk.circuits["rampa-sim"].state is CircuitState.OPEN
        quote = await desk.quote(REQUEST)
        assert rampa.calls == 4, "an open provider is not asked"
        answers = {a.provider: a for a in quote.alternatives}
        assert answers["rampa-sim"].answered is Answered.CIRCUIT_OPEN
        assert "is down" in answers["rampa-sim"].detail

        rampa.mode = "ok"
        await asyncio.sleep(61)
        quote = await desk.quote(REQUEST)
        assert quote.provider == "rampa-sim" and rampa.calls == 5, "one probe, and it won"
        assert desk.circuits["rampa-sim"].state.value == "closed"
        changes = [
            r.event
            for r in await store.load_stream(ev.PROVIDERS_STREAM)
            if isinstance(r.event, ev.ProviderCircuitChanged)
        ]
        assert [(c.provider, c.previous, c.state) for c in changes] == [
            ("rampa-sim", "closed", "open"),
            ("rampa-sim", "open", "half_open"),
            ("rampa-sim", "half_open", "closed"),
        ]
        assert len(await store.load_stream(ev.PROVIDERS_STREAM)) == 3
        assert desk.health()[2].changes == {"closed": 1, "half_open": 1, "open": 1}

    in_desk(tmp_path, (bitso, conduit, rampa), Tuning(breaker=settings), body)


def test_an_open_breaker_is_still_open_after_a_restart(tmp_path: Path) -> None:
    bitso, conduit, rampa = providers()
    rampa.mode = "error"
    settings = BreakerSettings(failures_to_open=1, open_us=60_000_000)

    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        await QuoteDesk(ctx).quote(REQUEST)
        restarted = QuoteDesk(ctx)
        await restarted.open()
        assert restarted.circuits["rampa-sim"].state is CircuitState.OPEN
        assert restarted.version == 1
        calls = rampa.calls
        await restarted.quote(REQUEST)
        assert rampa.calls == calls

    in_desk(tmp_path, (bitso, conduit, rampa), Tuning(breaker=settings), body)


def test_no_price_names_each_provider_and_terms_nobody_meets_are_final(tmp_path: Path) -> None:
    bitso, conduit, rampa = providers()
    for provider in (bitso, conduit, rampa):
        provider.mode = "error"
    small = ProviderTerms(corridors={"USD-MXN": CorridorTerms(max_amount=50_000)})
    terms = {"bitso-sim": small, "conduit-sim": ProviderTerms(enabled=False)}

    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        desk = QuoteDesk(ctx)
        with pytest.raises(RailError) as down:
            await desk.quote(REQUEST)
        assert down.value.transient and down.value.result is Result.provider_unavailable
        assert "bitso-sim: ineligible (above its maximum" in down.value.message
        assert "conduit-sim: ineligible (disabled by the operator)" in down.value.message
        assert "rampa-sim: failed (unavailable" in down.value.message
        ctx.tuning.provider_terms["rampa-sim"] = ProviderTerms(enabled=False)
        assert desk.corridors() == frozenset({"USD-MXN"}), "bitso-sim still serves it"
        with pytest.raises(RailError) as nobody:
            await desk.quote(REQUEST)
        assert not nobody.value.transient
        assert nobody.value.result is Result.no_eligible_provider
        ctx.tuning.provider_terms["bitso-sim"] = ProviderTerms(enabled=False)
        assert desk.corridors() == frozenset(), "policy refuses the corridor at creation"

    in_desk(tmp_path, (bitso, conduit, rampa), Tuning(provider_terms=terms), body)


def test_a_provider_that_refuses_is_up_its_breaker_stays_closed(tmp_path: Path) -> None:
    bitso, conduit, rampa = providers()
    rampa.mode = "refuse"
    settings = BreakerSettings(failures_to_open=1)

    async def body(ctx: Context, store: Store, clock: VirtualClock) -> None:
        desk = QuoteDesk(ctx)
        for _ in range(3):
            quote = await desk.quote(REQUEST)
            answers = {a.provider: a for a in quote.alternatives}
            assert answers["rampa-sim"].answered is Answered.FAILED
            assert answers["rampa-sim"].detail.startswith("refused: currency_pair_unsupported")
        assert rampa.calls == 3, "a refusal is not retried"
        assert desk.circuits["rampa-sim"].state is CircuitState.CLOSED

    in_desk(tmp_path, (bitso, conduit, rampa), Tuning(breaker=settings), body)
