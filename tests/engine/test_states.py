"""The transition table's own properties: the shape the rest of the system relies on."""

from __future__ import annotations

import itertools

from engine.events import TRANSFER_EVENT_TYPES
from engine.states import (
    CANCELLABLE,
    HOLDING,
    ROUTE_EXCLUDED,
    ROUTE_PATHS,
    TERMINAL,
    TRANSITIONS,
    Route,
    Status,
    next_status,
)


def test_every_event_in_the_table_is_a_transfer_event_and_every_one_is_used() -> None:
    assert {event for _, event in TRANSITIONS} == TRANSFER_EVENT_TYPES


def test_each_event_leads_to_one_status_wherever_it_happens_or_keeps_it() -> None:
    """Projections can then name an event's target status without knowing where it came from:
    one status, or (an event that records something inside a status, like a pre-funded payout
    asked for in SENT_ON_CHAIN or a just-in-time one in CONFIRMED) the status it happened in."""
    targets: dict[str, set[Status]] = {}
    stays: dict[str, bool] = {}
    for (source, event), to in TRANSITIONS.items():
        targets.setdefault(event, set()).add(to)
        stays[event] = stays.get(event, True) and source is to
    several = {e: t for e, t in targets.items() if len(t) > 1}
    assert several.keys() == {"OffRampInitiated", "OffRampRerouted"}, several
    assert all(stays[e] for e in several), several


def test_terminal_statuses_have_no_way_out() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL]


def test_every_status_is_reachable_from_creation() -> None:
    reached = {Status.CREATED}
    frontier = [Status.CREATED]
    while frontier:
        current = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is current and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status)


def test_each_route_path_is_walkable_through_the_table() -> None:
    for route, path in ROUTE_PATHS.items():
        for source, target in itertools.pairwise(path):
            events = [e for (s, e), t in TRANSITIONS.items() if s is source and t is target]
            assert any(next_status(route, source, e) is target for e in events), (
                route,
                source,
                target,
            )


def test_a_wallet_payout_never_reaches_fiat_settled() -> None:
    for (source, event), target in TRANSITIONS.items():
        if target is Status.FIAT_SETTLED:
            assert next_status(Route.WALLET, source, event) is None


def test_an_offramp_cannot_skip_fiat_settlement() -> None:
    assert next_status(Route.BANK, Status.CONFIRMED, "Reconciled") is None
    assert next_status(Route.WALLET, Status.CONFIRMED, "Reconciled") is Status.RECONCILED


def test_excluded_pairs_are_in_the_table() -> None:
    for pairs in ROUTE_EXCLUDED.values():
        assert pairs <= set(TRANSITIONS)


def test_no_shortcuts_around_the_chain() -> None:
    # Series 2: CREATED cannot go straight to SENT_ON_CHAIN; CONFIRMED cannot go back to QUOTED.
    assert not [
        e for (s, e), t in TRANSITIONS.items() if s is Status.CREATED and t is Status.SENT_ON_CHAIN
    ]
    assert not [
        e for (s, e), t in TRANSITIONS.items() if s is Status.CONFIRMED and t is Status.QUOTED
    ]


def test_holds_exist_only_where_funds_are_locked_and_not_yet_settled() -> None:
    assert {Status.FUNDS_LOCKED, Status.SENT_ON_CHAIN} == HOLDING
    assert {Status.CREATED, Status.QUOTED, Status.FUNDS_LOCKED} == CANCELLABLE
