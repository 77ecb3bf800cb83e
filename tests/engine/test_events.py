"""Events are a public schema: every type round-trips through its JSON encoding unchanged, tags
are unique, and a payload written today decodes to the same event."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from engine import events as ev
from engine.states import Route
from tests.builders import T0, deposit_event, make_quote, walk_to


def _samples() -> list[ev.Event]:
    samples: list[ev.Event] = []
    for route, target in ((Route.WALLET, "RECONCILED"), (Route.BANK, "RECONCILED")):
        samples.extend(walk_to(target, route=route).events)
    samples.extend(walk_to("CANCELLED").events[-1:])
    samples.extend(walk_to("FAILED").events[-1:])
    samples.extend(walk_to("EXPIRED").events[-1:])
    samples.append(deposit_event())
    samples.append(ev.QuoteIssued(at=T0, client_id="acme", quote=make_quote("USD", "MXN", 100, T0)))
    samples.append(
        ev.EvidenceRecorded(
            at=T0,
            evidence_id="ex_" + "0" * 26,
            provider="bank-sim",
            event_type="statement_line",
            external_ref="DEP-1",
            occurred_at=T0,
            raw_sha256=hashlib.sha256(b"{}").hexdigest(),
        )
    )
    return samples


@pytest.mark.parametrize("event", _samples(), ids=lambda e: ev.event_type(e))
def test_round_trip(event: ev.Event) -> None:
    payload = ev.encode(event)
    assert ev.decode(payload) == event
    assert msgspec.json.decode(payload)["type"] == ev.event_type(event)


def test_tags_are_unique_and_every_type_is_known() -> None:
    tags = [t.__struct_config__.tag for t in ev.Event.__args__]
    assert len(tags) == len(set(tags)) == len(ev.EVENT_TYPES)
    assert ev.TRANSFER_EVENT_TYPES < ev.EVENT_TYPES


def test_a_stored_payload_still_decodes() -> None:
    """A payload as the journal stores it; if this breaks, a field was renamed or retyped."""
    stored = (
        b'{"type":"FundsLocked","at":1795564800000000,"entries":['
        b'{"account":"client:acme:available","currency":"USD","debit":100,"type":"HOLD"},'
        b'{"account":"client:acme:held","currency":"USD","credit":100,"type":"HOLD"}]}'
    )
    event = ev.decode(stored)
    assert isinstance(event, ev.FundsLocked)
    assert [(e.debit, e.credit) for e in event.entries] == [(100, 0), (0, 100)]


def test_unknown_event_types_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        ev.decode(b'{"type":"FundsTeleported","at":1}')
