"""The circuit breaker (engine.breaker): closed until enough failures in a row, open for its
wait, then half-open with a bounded number of probes; probe successes close it, a probe failure
opens it again; a success while closed forgives earlier failures."""

from __future__ import annotations

from engine.breaker import BreakerSettings, Circuit, CircuitState, admit, record

SETTINGS = BreakerSettings(failures_to_open=3, open_us=10_000_000, probes=1, successes_to_close=2)


def fail(circuit: Circuit, now: int = 0) -> Circuit:
    return record(circuit, SETTINGS, ok=False, now=now, error="timed_out")


def test_opens_after_failures_in_a_row_and_a_success_forgives() -> None:
    circuit = fail(fail(Circuit()))
    assert circuit.state is CircuitState.CLOSED and circuit.failures == 2
    circuit = record(circuit, SETTINGS, ok=True, now=0)
    assert circuit.failures == 0
    circuit = fail(fail(fail(circuit, 5), 6), 7)
    assert circuit.state is CircuitState.OPEN
    assert circuit.opened_at == 7 and circuit.last_error == "timed_out"


def test_open_refuses_until_its_wait_is_over_then_probes_one_at_a_time() -> None:
    circuit = fail(fail(fail(Circuit())))
    assert admit(circuit, SETTINGS, 9_999_999) == (circuit, False)
    probing, admitted = admit(circuit, SETTINGS, 10_000_000)
    assert admitted and probing.state is CircuitState.HALF_OPEN and probing.probing == 1
    second, again = admit(probing, SETTINGS, 10_000_001)
    assert not again, "one probe at a time"
    assert second.state is CircuitState.HALF_OPEN


def test_probe_successes_close_it_and_a_probe_failure_reopens_it() -> None:
    opened = fail(fail(fail(Circuit())))
    probing, _ = admit(opened, SETTINGS, 10_000_000)
    once = record(probing, SETTINGS, ok=True, now=10_000_001)
    assert once.state is CircuitState.HALF_OPEN and once.successes == 1 and once.probing == 0
    probing, admitted = admit(once, SETTINGS, 10_000_002)
    assert admitted
    closed = record(probing, SETTINGS, ok=True, now=10_000_003)
    assert closed.state is CircuitState.CLOSED and closed.failures == 0

    probing, _ = admit(opened, SETTINGS, 10_000_000)
    reopened = fail(probing, now=10_000_005)
    assert reopened.state is CircuitState.OPEN and reopened.opened_at == 10_000_005
    assert admit(reopened, SETTINGS, 10_000_006)[1] is False


def test_settings_are_checked() -> None:
    assert SETTINGS.problem() == ""
    assert BreakerSettings(failures_to_open=0).problem()
    assert BreakerSettings(probes=0).problem()
