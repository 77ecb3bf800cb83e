"""The transfer metrics count every transition once, by from and to status, and keep each
labelled child they made (adapters/http/metrics.py)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from adapters.http.metrics import Metrics
from engine.transfer import evolve
from tests.builders import walk_to


def _samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_each_transition_is_counted_once_by_from_and_to() -> None:
    metrics = Metrics()
    for _ in range(2):  # two transfers through the same transitions
        w = walk_to("CONFIRMED")
        before = None
        for event in w.events:
            after = evolve(before, event)
            metrics.transfer_changed(before, after)
            before = after
    counted = _samples(metrics, "stablerail_transfer_transitions_total")
    assert counted == {
        (("from_status", "NEW"), ("to_status", "CREATED")): 2.0,
        (("from_status", "CREATED"), ("to_status", "QUOTED")): 2.0,
        (("from_status", "QUOTED"), ("to_status", "FUNDS_LOCKED")): 2.0,
        (("from_status", "FUNDS_LOCKED"), ("to_status", "SENT_ON_CHAIN")): 2.0,
        (("from_status", "SENT_ON_CHAIN"), ("to_status", "CONFIRMED")): 2.0,
    }
    left = _samples(metrics, "stablerail_transfer_time_in_state_seconds_count")
    assert left[(("status", "CREATED"),)] == 2.0 and (("status", "CONFIRMED"),) not in left


def test_a_labelled_child_is_made_once_and_kept() -> None:
    metrics = Metrics()
    first = metrics.requests.labels("POST", "/v1/transfers", "201")
    assert metrics.requests.labels("POST", "/v1/transfers", "201") is first
    first.inc()
    metrics.requests.labels("POST", "/v1/transfers", "201").inc()
    counted = _samples(metrics, "stablerail_http_requests_total")
    assert counted == {(("method", "POST"), ("route", "/v1/transfers"), ("status", "201")): 2.0}
