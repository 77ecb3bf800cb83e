"""The writer's shape check (store/judge.py): an event that names its own stream (a transfer's
creation, a deposit, a piece of evidence, a case...) may only be appended to that stream."""

from __future__ import annotations

import msgspec
import pytest

from engine import events as ev
from engine.records import Append, WriteRequest
from store.errors import InvariantViolation
from store.judge import _OWNER_FIELDS, _check_shape
from tests.builders import deposit_event, walk_to
from tests.store.helpers import evidence


def test_every_owner_field_is_a_string_field_of_its_event() -> None:
    """A renamed field would make the lookup raise on the writer's path, or name nothing."""
    for kind, field in _OWNER_FIELDS.items():
        assert kind in ev.Event.__args__, kind
        types = {f.name: f.type for f in msgspec.structs.fields(kind)}
        assert types.get(field) is str, (kind.__name__, field, types.get(field))


def _request(
    stream_id: str, *events: ev.Event, raw: dict[str, bytes] | None = None
) -> WriteRequest:
    append = Append(stream_id=stream_id, expected_version=0, events=events)
    return WriteRequest(appends=(append,), evidence_raw=raw or {})


def test_events_that_name_their_stream_are_accepted_there() -> None:
    deposit = deposit_event()
    found, raw = evidence(1)
    created = walk_to("CREATED").events[0]
    assert isinstance(created, ev.TransferCreated)
    _check_shape(_request(deposit.deposit_id, deposit))
    _check_shape(_request(found.evidence_id, found, raw={found.evidence_id: raw}))
    _check_shape(_request(created.transfer_id, created))


@pytest.mark.parametrize("kind", ["deposit", "evidence", "transfer"])
def test_an_event_naming_another_stream_is_refused(kind: str) -> None:
    """Each appended to a stream of its own kind with another id: the one mistake a wrong
    stream id in an appender makes."""
    other = "zz_" + "0" * 26
    match kind:
        case "deposit":
            event: ev.Event = deposit_event()
            request = _request(other, event)
            owner = deposit_event().deposit_id
        case "evidence":
            found, raw = evidence(2)
            request = _request(other, found, raw={found.evidence_id: raw})
            owner = found.evidence_id
        case _:
            created = walk_to("CREATED").events[0]
            assert isinstance(created, ev.TransferCreated)
            request = _request(other, created)
            owner = created.transfer_id
    with pytest.raises(InvariantViolation, match=f"for {owner} in {other}"):
        _check_shape(request)


def test_a_quote_issued_belongs_to_its_quote() -> None:
    """QuoteIssued names its stream through its quote, not a field of its own."""
    quoted = walk_to("QUOTED")
    captured = next(e for e in quoted.events if isinstance(e, ev.QuoteCaptured))
    issued = ev.QuoteIssued(at=captured.at, client_id="acme", quote=captured.quote)
    quote_id = captured.quote.quote_id
    _check_shape(_request(quote_id, issued))
    with pytest.raises(InvariantViolation, match=f"for {quote_id} in"):
        _check_shape(_request("qt_" + "0" * 26, issued))
