"""A circuit breaker per provider: closed, open, half-open (Nygard's Release It!).

CLOSED: calls go through; `failures_to_open` failures in a row open it. OPEN: no call goes
through until `open_us` has passed since it opened; then it is HALF_OPEN. HALF_OPEN: at most
`probes` calls at a time go through; `successes_to_close` successes in a row close it, one
failure opens it again (for another `open_us`). Pure: the caller passes the time and keeps the
returned circuit; a change of state is returned so the caller can journal it.
"""

from __future__ import annotations

import enum

import msgspec


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerSettings(msgspec.Struct, frozen=True, kw_only=True):
    failures_to_open: int = 5
    open_us: int = 30 * 1_000_000
    probes: int = 1
    successes_to_close: int = 2

    def problem(self) -> str:
        if self.failures_to_open < 1:
            return "failures_to_open must be at least 1"
        if self.open_us < 1:
            return "open_s must be positive"
        if self.probes < 1 or self.successes_to_close < 1:
            return "probes and successes_to_close must be at least 1"
        return ""


class Circuit(msgspec.Struct, frozen=True, kw_only=True):
    state: CircuitState = CircuitState.CLOSED
    # Failures in a row (CLOSED), successes in a row (HALF_OPEN).
    failures: int = 0
    successes: int = 0
    opened_at: int = 0
    probing: int = 0
    # The last failure's description, for operators.
    last_error: str = ""


def admit(circuit: Circuit, settings: BreakerSettings, now: int) -> tuple[Circuit, bool]:
    """Whether a call may go through now, and the circuit after deciding (an OPEN circuit past
    its wait turns HALF_OPEN; an admitted probe is counted until it reports)."""
    if circuit.state is CircuitState.OPEN:
        if now - circuit.opened_at < settings.open_us:
            return circuit, False
        circuit = msgspec.structs.replace(
            circuit, state=CircuitState.HALF_OPEN, successes=0, probing=0
        )
    if circuit.state is CircuitState.HALF_OPEN:
        if circuit.probing >= settings.probes:
            return circuit, False
        return msgspec.structs.replace(circuit, probing=circuit.probing + 1), True
    return circuit, True


def record(
    circuit: Circuit, settings: BreakerSettings, *, ok: bool, now: int, error: str = ""
) -> Circuit:
    """The circuit after an admitted call ended (`ok`: it answered usefully)."""
    probing = max(0, circuit.probing - 1) if circuit.state is CircuitState.HALF_OPEN else 0
    if ok:
        if circuit.state is CircuitState.HALF_OPEN:
            successes = circuit.successes + 1
            if successes >= settings.successes_to_close:
                return Circuit(last_error=circuit.last_error)
            return msgspec.structs.replace(circuit, successes=successes, probing=probing)
        if circuit.state is CircuitState.OPEN:
            return circuit  # a call admitted before it opened: the wait still stands
        return msgspec.structs.replace(circuit, failures=0)
    if circuit.state is CircuitState.HALF_OPEN:
        return Circuit(state=CircuitState.OPEN, opened_at=now, last_error=error)
    if circuit.state is CircuitState.OPEN:
        return msgspec.structs.replace(circuit, last_error=error)
    failures = circuit.failures + 1
    if failures >= settings.failures_to_open:
        return Circuit(state=CircuitState.OPEN, failures=failures, opened_at=now, last_error=error)
    return msgspec.structs.replace(circuit, failures=failures, last_error=error)
