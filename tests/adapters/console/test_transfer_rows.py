"""How the console shows a transfer in a list: its time in state for people, and whether it is
stuck, by Series 9's threshold for its state, with the runbook of that state."""

from __future__ import annotations

import pytest

from adapters.console.transfers import duration, row
from engine import limits
from tests.builders import walk_to

S = 1_000_000


@pytest.mark.parametrize(
    ("us", "shown"),
    [
        (0, "0 s"),
        (59 * S, "59 s"),
        (60 * S, "1 min"),
        (3599 * S, "59 min"),
        (3600 * S + 5 * 60 * S, "1 h 05 min"),
        (2 * 86_400 * S + 4 * 3600 * S, "2 d 4 h"),
        (-5 * S, "0 s"),
    ],
)
def test_duration_reads_as_people_say_it(us: int, shown: str) -> None:
    assert duration(us) == shown


@pytest.mark.parametrize("status", ["CREATED", "FUNDS_LOCKED", "SENT_ON_CHAIN", "CONFIRMED"])
def test_a_transfer_past_its_threshold_is_stuck_and_names_its_runbook(status: str) -> None:
    state = walk_to(status).s
    threshold = limits.stuck_after_us[status]
    on_time = row(state, state.status_since + threshold)
    late = row(state, state.status_since + threshold + 1)
    assert on_time["stuck"] is False and late["stuck"] is True
    assert late["runbook"] == status.lower().replace("_", "-")
    assert late["id"] == state.transfer_id and late["status"] == status


def test_a_finished_transfer_is_never_stuck() -> None:
    state = walk_to("RECONCILED").s
    assert row(state, state.status_since + 365 * 86_400 * S)["stuck"] is False
