"""Calling a rail (actors.retry.call_rail), in virtual time: a success is returned at once; a
transient error is retried after the deterministic backoff waits, up to the attempts allowed,
and the last error is raised; a refusal for good is raised at once; an attempt past its deadline
is a transient `unavailable` error."""

from __future__ import annotations

import asyncio

import pytest

from actors.retry import call_rail
from engine import limits
from engine.backoff import delay_us
from engine.rails import RailError
from engine.results import Result
from sim.clock import VirtualClock, run_virtual


def waits(key: str, n: int) -> int:
    return sum(
        delay_us(i, base_us=limits.rail_retry_base_us, cap_us=limits.rail_retry_cap_us, key=key)
        for i in range(n)
    )


class Flaky:
    def __init__(self, failures: int, *, transient: bool = True, hang: bool = False) -> None:
        self.failures, self.transient, self.hang = failures, transient, hang
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            if self.hang:
                await asyncio.sleep(3_600)
            raise RailError(Result.provider_unavailable, "down", transient=self.transient)
        return "ok"


def run(flaky: Flaky, **kw: object) -> tuple[str | RailError, int, int]:
    clock = VirtualClock()

    async def main() -> str | RailError:
        try:
            return await call_rail(flaky, key="tr_1:q", **kw)  # type: ignore[arg-type]
        except RailError as e:
            return e

    started = clock.now_us()
    found = run_virtual(main, clock)
    return found, flaky.calls, clock.now_us() - started


def test_a_success_is_returned_at_once() -> None:
    assert run(Flaky(0)) == ("ok", 1, 0)


def test_transient_errors_are_retried_after_the_backoff_waits() -> None:
    found, calls, waited = run(Flaky(3))
    assert (found, calls) == ("ok", 4)
    assert waited == pytest.approx(waits("tr_1:q", 3), abs=1_000)


def test_the_last_error_is_raised_when_the_attempts_run_out() -> None:
    found, calls, waited = run(Flaky(10))
    assert isinstance(found, RailError) and found.transient
    assert calls == limits.rail_attempts_max
    assert waited == pytest.approx(waits("tr_1:q", limits.rail_attempts_max - 1), abs=1_000)


def test_a_refusal_for_good_is_raised_at_once() -> None:
    found, calls, waited = run(Flaky(1, transient=False))
    assert isinstance(found, RailError) and not found.transient
    assert (calls, waited) == (1, 0)


def test_an_attempt_past_its_deadline_is_a_transient_unavailable_error() -> None:
    found, calls, _ = run(
        Flaky(10, hang=True),
        attempts_max=2,
        attempt_timeout_s=1.0,
        unavailable=Result.chain_unavailable,
    )
    assert isinstance(found, RailError) and found.transient
    assert found.result is Result.chain_unavailable and calls == 2


def run_within(flaky: Flaky, deadline_s: float, **kw: object) -> tuple[str | Exception, int, int]:
    clock = VirtualClock()

    async def main() -> str | Exception:
        try:
            return await call_rail(flaky, key="tr_1:q", deadline_s=deadline_s, **kw)  # type: ignore[arg-type]
        except (RailError, TimeoutError) as e:
            return e

    started = clock.now_us()
    found = run_virtual(main, clock)
    return found, flaky.calls, clock.now_us() - started


def test_a_call_past_its_whole_deadline_raises_timeout_at_that_deadline() -> None:
    """A deadline shorter than the attempt's: the one timer is the deadline's, and reaching it
    is a TimeoutError (the caller's "no answer in time"), not a transient error to retry."""
    found, calls, waited = run_within(Flaky(10, hang=True), 2.0, attempt_timeout_s=10.0)
    assert isinstance(found, TimeoutError)
    assert calls == 1 and waited == pytest.approx(2_000_000, abs=1_000)


def test_attempts_that_time_out_before_the_deadline_are_retried_until_it() -> None:
    """Attempts of 0.5 s under a 2 s deadline: each hung attempt is a transient error, retried
    after its backoff, until the deadline ends the call mid-attempt or mid-wait."""
    found, calls, waited = run_within(
        Flaky(10, hang=True), 2.0, attempt_timeout_s=0.5, attempts_max=10
    )
    assert isinstance(found, TimeoutError)
    assert 1 < calls < 10 and waited == pytest.approx(2_000_000, abs=1_000)


def test_a_call_that_answers_within_its_deadline_is_unchanged() -> None:
    found, calls, waited = run_within(Flaky(2), 60.0)
    assert (found, calls) == ("ok", 3)
    assert waited == pytest.approx(waits("tr_1:q", 2), abs=1_000)


def test_a_refusal_for_good_under_a_deadline_is_raised_at_once() -> None:
    found, calls, waited = run_within(Flaky(1, transient=False), 2.0)
    assert isinstance(found, RailError) and (calls, waited) == (1, 0)


def test_an_attempt_without_a_timer_runs_as_long_as_the_call_takes() -> None:
    """attempt_timeout_s None is for a call that bounds its own waits (the quote desk): a slow
    attempt is not cut off; its transient error is retried as any other."""
    found, calls, waited = run(Flaky(1, hang=True), attempt_timeout_s=None)
    assert (found, calls) == ("ok", 2)
    assert waited == pytest.approx(3_600_000_000 + waits("tr_1:q", 1), abs=1_000)
