"""The pricing desk: every eligible provider asked at once, the best price after fees taken.

For one quote request the desk:
- leaves out the providers that do not serve the corridor, and records as INELIGIBLE those the
  operator's terms exclude (engine.pricing) and as CIRCUIT_OPEN those whose breaker is open;
- asks the rest concurrently, each within `Tuning.quote_deadline_s` (tenacity retries a
  transient error within it, actors.retry); a provider that does not answer in time is
  TIMED_OUT, one that errs is FAILED;
- prices every answer by the one pricing rule (engine.quotes) and keeps the best; the quote
  carries every answer, the raw responses included, so what was on the table is never
  recomputed;
- feeds each outcome to the provider's circuit breaker (engine.breaker). A change of a
  breaker's state is journaled on the "providers" stream before the desk acts on it, and the
  state is folded from that stream at start, so an open breaker stays open across a restart.

No quote comes back when nobody quoted: a transient RailError (provider_unavailable) naming
what became of each provider, which the caller retries with backoff like any rail.
"""

from __future__ import annotations

from collections import Counter

import anyio
import msgspec

from actors.context import Context
from actors.fanout import for_each
from actors.retry import call_rail
from engine import breaker, ledger, pricing, quotes
from engine import events as ev
from engine.breaker import Circuit, CircuitState
from engine.policy import corridor_id
from engine.pricing import ProviderHealth
from engine.quotes import Answered, ProviderAnswer, Quote
from engine.rails import QuoteProvider, QuoteRequest, RailError
from engine.records import Committed, Rejected
from engine.results import Result
from engine.transfer import TransferState

# Attempts per provider within the deadline (a transient error is asked again once).
ATTEMPTS = 2


class QuoteDesk:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.providers: dict[str, QuoteProvider] = {p.name: p for p in ctx.rails.quotes}
        self.circuits: dict[str, Circuit] = {name: Circuit() for name in self.providers}
        self.changed_at: dict[str, int] = {}
        # (provider, outcome) -> answers; (provider, new state) -> breaker changes.
        self.answers: Counter[tuple[str, str]] = Counter()
        self.changes: Counter[tuple[str, str]] = Counter()
        self.version = 0
        self._journaling = anyio.Lock()

    @property
    def settings(self) -> breaker.BreakerSettings:
        return self.ctx.tuning.breaker

    def terms(self, provider: str) -> pricing.ProviderTerms:
        return self.ctx.tuning.provider_terms.get(provider, pricing.OPEN_TERMS)

    async def open(self) -> None:
        """Fold the providers stream: each breaker as it was last journaled."""
        records = await self.ctx.journal.stream(ev.PROVIDERS_STREAM)
        for record in records:
            change = record.event
            assert isinstance(change, ev.ProviderCircuitChanged)
            if change.provider not in self.providers:
                continue
            state = CircuitState(change.state)
            # A half-open breaker restarts open: its probes died with the process.
            restored = CircuitState.OPEN if state is CircuitState.HALF_OPEN else state
            self.circuits[change.provider] = Circuit(
                state=restored,
                failures=change.failures,
                opened_at=change.at,
                last_error=change.reason,
            )
            self.changed_at[change.provider] = change.at
        self.version = len(records)

    def corridors(self) -> frozenset[str]:
        """The corridors some enabled, approved provider prices: what execution can do, which
        policy checks every new transfer against (an open breaker is a passing outage and does
        not take a corridor away)."""
        served: set[str] = set()
        for name, provider in self.providers.items():
            terms = self.terms(name)
            if not terms.enabled or terms.compliance is not pricing.Compliance.APPROVED:
                continue
            offered = provider.corridors()
            served.update(offered & set(terms.corridors) if terms.corridors else offered)
        return frozenset(served)

    def health(self) -> list[ProviderHealth]:
        now = self.ctx.clock.now_us()
        found = []
        for name in sorted(self.providers):
            circuit = self.circuits[name]
            if circuit.state is CircuitState.OPEN and now - circuit.opened_at >= (
                self.settings.open_us
            ):
                circuit = msgspec.structs.replace(circuit, state=CircuitState.HALF_OPEN)
            found.append(
                ProviderHealth(
                    provider=name,
                    corridors=tuple(sorted(self.providers[name].corridors())),
                    terms=self.terms(name),
                    circuit=circuit,
                    answers={
                        outcome: n for (p, outcome), n in sorted(self.answers.items()) if p == name
                    },
                    changes={
                        state: n for (p, state), n in sorted(self.changes.items()) if p == name
                    },
                    changed_at=self.changed_at.get(name),
                )
            )
        return found

    async def quote(self, request: QuoteRequest) -> Quote:
        corridor = corridor_id(request.source_currency, request.target_currency)
        now = self.ctx.clock.now_us()
        answers: dict[str, ProviderAnswer] = {}
        priced: dict[str, Quote] = {}
        # Whether each provider asked answered at all (a refusal is an answer: it is up).
        up: dict[str, bool] = {}
        asked: list[str] = []
        for name in sorted(self.providers):
            served = self.providers[name].corridors()
            if corridor not in served:
                continue
            reason = pricing.ineligible(self.terms(name), served, corridor, request.amount)
            if reason:
                answers[name] = ProviderAnswer(
                    provider=name, answered=Answered.INELIGIBLE, detail=reason
                )
                continue
            circuit, admitted = breaker.admit(self.circuits[name], self.settings, now)
            await self._set(name, circuit, "the wait after opening is over: probing")
            if not admitted:
                answers[name] = ProviderAnswer(
                    provider=name, answered=Answered.CIRCUIT_OPEN, detail=circuit.last_error
                )
                continue
            asked.append(name)
        if not answers and not asked:
            raise RailError(Result.currency_pair_unsupported, corridor, transient=False)

        async def ask(name: str) -> None:
            await self._ask(name, request, answers, priced, up)

        # All at once (one alone is asked in this task).
        await for_each(asked, ask, limit=len(asked) or 1)
        for name in asked:
            answer = answers[name]
            error = "" if up[name] else f"{answer.answered.value}: {answer.detail}"
            circuit = breaker.record(
                self.circuits[name], self.settings, ok=up[name], now=self.ctx.clock.now_us(),
                error=error,
            )  # fmt: skip
            await self._set(name, circuit, error or "answered")
        for answer in answers.values():
            self.answers[(answer.provider, answer.answered.value)] += 1
        ordered = tuple(answers[n] for n in sorted(answers))
        pick = pricing.worst if self.ctx.drills.planted("worst_price") else pricing.best
        chosen = pick(ordered)
        if chosen is None:
            detail = f"no provider quoted: {pricing.summary(ordered)}"
            transient = any(a.answered is not Answered.INELIGIBLE for a in ordered)
            result = Result.provider_unavailable if transient else Result.no_eligible_provider
            raise RailError(result, detail, transient=transient)
        return msgspec.structs.replace(
            priced[chosen.provider],
            quote_id=self.ctx.ids.new("qt"),
            alternatives=ordered,
            prefunded=request.bank and corridor in self.ctx.tuning.prefunded_corridors,
        )

    async def payout_answered(self, name: str, *, ok: bool, error: str = "") -> None:
        """A payout call's outcome counts toward the provider's breaker as a quote's does (an
        outage shows on either of its APIs): a failure past its retries counts against it, an
        answer (a payout accepted, or refused for good) clears a closed breaker's count. Payouts
        are not admitted through the breaker (a payout already paid for on chain is never held
        back), so one does not count as a half-open probe's success."""
        circuit = self.circuits.get(name)
        if circuit is None or (ok and circuit.state is not breaker.CircuitState.CLOSED):
            return
        now = self.ctx.clock.now_us()
        after = breaker.record(circuit, self.settings, ok=ok, now=now, error=error)
        await self._set(name, after, f"payout: {error}" if error else "a payout answered")

    async def failover(self, state: TransferState) -> str | None:
        """The provider a payout moves to when its provider refused it before accepting it:
        one that serves the corridor, that the transfer has not been refused by, whose terms
        take the amount, whose breaker is not open, and that holds at least the payout's rail
        amount of our stablecoin by the ledger. Those that quoted for the transfer come first,
        best price first; then the rest, by name. None: no provider can take it."""
        assert state.quote is not None
        quote = state.quote
        corridor = corridor_id(quote.source_currency, quote.target_currency)
        tried = {quote.provider, *state.refused_by, state.rerouted_to}
        quoted = [a.provider for a in sorted(quote.alternatives, key=pricing.rank)]
        order = [*quoted, *sorted(self.providers)]
        now = self.ctx.clock.now_us()
        for name in dict.fromkeys(order):
            provider = self.providers.get(name)
            if provider is None or name in tried:
                continue
            served = provider.corridors()
            if pricing.ineligible(self.terms(name), served, corridor, quote.source_amount):
                continue
            if not breaker.admit(self.circuits[name], self.settings, now)[1]:
                continue  # its breaker is open
            held = await self.ctx.journal.balance_at(
                ledger.provider(name), quote.rail_currency, now
            )
            if held >= quote.rail_amount:
                return name
        return None

    async def _ask(
        self,
        name: str,
        request: QuoteRequest,
        answers: dict[str, ProviderAnswer],
        priced: dict[str, Quote],
        up: dict[str, bool],
    ) -> None:
        """Ask one provider within the deadline: its answer, its priced quote if it quoted,
        and whether it answered at all (errors and silence count against its breaker)."""
        provider = self.providers[name]
        started = self.ctx.clock.now_us()

        def answer(answered: Answered, detail: str = "") -> ProviderAnswer:
            latency = self.ctx.clock.now_us() - started
            return ProviderAnswer(
                provider=name, answered=answered, detail=detail, latency_us=latency
            )

        try:
            got = await call_rail(
                lambda: provider.quote(request),
                key=f"{request.transfer_id or request.client_id}:{name}:quote",
                attempts_max=ATTEMPTS,
                deadline_s=self.ctx.tuning.quote_deadline_s,
            )
        except TimeoutError:
            answers[name] = answer(Answered.TIMED_OUT, "no answer before the deadline")
            up[name] = False
            return
        except RailError as e:
            kind = "unavailable" if e.transient else "refused"
            answers[name] = answer(Answered.FAILED, f"{kind}: {e.result.code}: {e.message}")
            up[name] = not e.transient
            return
        quote = quotes.priced_quote(
            quote_id="",
            provider=name,
            source_currency=request.source_currency,
            target_currency=request.target_currency,
            amount=request.amount,
            fee=got.fee,
            rate=got.rate,
            payout_address=got.payout_address,
            issued_at=self.ctx.clock.now_us(),
            ttl_us=got.ttl_us,
        )
        if isinstance(quote, Result) or got.ttl_us <= 0 or got.provider != name:
            why = quote.code if isinstance(quote, Result) else "a bad ttl or provider name"
            failed = answer(Answered.FAILED, f"unpriceable: {why}")
            answers[name] = msgspec.structs.replace(failed, rate=got.rate, raw=got.raw)
            up[name] = False
            return
        priced[name] = msgspec.structs.replace(quote, provider_quote_id=got.provider_quote_id)
        up[name] = True
        answers[name] = msgspec.structs.replace(
            answer(Answered.QUOTED),
            target_amount=quote.target_amount,
            fee=quote.fee,
            rate=quote.rate,
            provider_quote_id=got.provider_quote_id,
            raw=got.raw,
        )

    async def _set(self, name: str, circuit: Circuit, reason: str) -> None:
        """Keep the provider's breaker; a change of state is journaled first."""
        before = self.circuits[name]
        self.circuits[name] = circuit
        if circuit.state is before.state:
            return
        change = ev.ProviderCircuitChanged(
            at=self.ctx.clock.now_us(),
            provider=name,
            state=circuit.state.value,
            previous=before.state.value,
            failures=circuit.failures,
            reason=reason[:500],
        )
        async with self._journaling:
            for _ in range(3):
                outcome = await self.ctx.journal.append(ev.PROVIDERS_STREAM, self.version, [change])
                if isinstance(outcome, Committed):
                    self.version += 1
                    break
                assert isinstance(outcome, Rejected), outcome
                assert outcome.result in (Result.version_conflict, Result.stream_exists), outcome
                self.version = len(await self.ctx.journal.stream(ev.PROVIDERS_STREAM))
            else:
                raise RuntimeError("the providers stream kept changing under this change")
        self.changes[(name, circuit.state.value)] += 1
        self.changed_at[name] = change.at
