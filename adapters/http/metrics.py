"""Prometheus metrics (prometheus-client), on a registry of the app's own.

Requests by route and status and their latency are counted by the HTTP middleware; transitions by
from/to status and time in the state left come from the actors' commit listener; gauges that are a
snapshot (mailbox depth, live actors, webhook backlog, journal commit latency and batch size) are
read from the service when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from engine.breaker import CircuitState
from engine.pricing import Desk
from engine.quotes import Answered
from engine.transfer import TransferState


class _Snapshot(Collector):
    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self.read = read

    def collect(self):  # type: ignore[no-untyped-def]
        for name, value in sorted(self.read().items()):
            family = GaugeMetricFamily(f"stablerail_{name}", name.replace("_", " "))
            family.add_metric([], value)
            yield family


class _Providers(Collector):
    """Each pricing provider's answers by outcome, its breaker's state and changes."""

    def __init__(self, read: Callable[[], Desk]) -> None:
        self.read = read

    def collect(self):  # type: ignore[no-untyped-def]
        desk = self.read()
        answers = CounterMetricFamily(
            "stablerail_provider_answers",
            "Quote answers by provider and outcome",
            labels=["provider", "outcome"],
        )
        state = GaugeMetricFamily(
            "stablerail_provider_circuit_state",
            "1 for the state each provider's circuit breaker is in",
            labels=["provider", "state"],
        )
        changes = CounterMetricFamily(
            "stablerail_provider_circuit_changes",
            "Circuit breaker changes by provider and the state entered",
            labels=["provider", "state"],
        )
        for p in desk.providers:
            for outcome in Answered:
                answers.add_metric([p.provider, outcome.value], p.answers.get(outcome.value, 0))
            for s in CircuitState:
                state.add_metric([p.provider, s.value], float(p.circuit.state is s))
                changes.add_metric([p.provider, s.value], p.changes.get(s.value, 0))
        yield answers
        yield state
        yield changes


M = TypeVar("M", bound=MetricWrapperBase)


class Labeled(Generic[M]):
    """A labelled metric whose children are kept by their label values: prometheus-client's
    `labels` validates and takes a lock on every call, and these are called on every request
    and every transition. The label values are bounded sets (routes, statuses)."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Labeled(
            Counter(
                "stablerail_http_requests",
                "HTTP requests by route and status",
                ["method", "route", "status"],
                registry=self.registry,
            )
        )
        self.latency = Labeled(
            Histogram(
                "stablerail_http_request_seconds",
                "HTTP request latency by route",
                ["method", "route"],
                registry=self.registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            )
        )
        self.transitions = Labeled(
            Counter(
                "stablerail_transfer_transitions",
                "Transfer status transitions",
                ["from_status", "to_status"],
                registry=self.registry,
            )
        )
        self.time_in_state = Labeled(
            Histogram(
                "stablerail_transfer_time_in_state_seconds",
                "Time a transfer spent in a status, observed when it leaves it",
                ["status"],
                registry=self.registry,
                buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400),
            )
        )
        self.failovers = Labeled(
            Counter(
                "stablerail_payout_failovers",
                "Payouts rerouted to another provider before any accepted them",
                ["from_provider", "to_provider"],
                registry=self.registry,
            )
        )
        self.up = Gauge("stablerail_ready", "1 once recovered and serving", registry=self.registry)

    def watch(self, read: Callable[[], dict[str, float]]) -> None:
        self.registry.register(_Snapshot(read))

    def watch_providers(self, read: Callable[[], Desk]) -> None:
        self.registry.register(_Providers(read))

    def transfer_changed(self, before: TransferState | None, after: TransferState) -> None:
        if before is not None and after.rerouted_to != before.rerouted_to:
            self.failovers.labels(after.refused_by[-1], str(after.rerouted_to)).inc()
        was = before.status.value if before is not None else "NEW"
        if before is not None and before.status is after.status:
            return
        self.transitions.labels(was, after.status.value).inc()
        if before is not None:
            spent_s = max(0, after.updated_at - before.status_since) / 1_000_000
            self.time_in_state.labels(before.status.value).observe(spent_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
