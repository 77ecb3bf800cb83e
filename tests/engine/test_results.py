"""Result codes: stable snake_case names, an order of precedence, and the transient flag."""

from __future__ import annotations

import re

from engine.results import FAILURE_CODES, TRANSIENT, Result, as_failure, first


def test_names_are_snake_case_and_unique() -> None:
    names = [r.code for r in Result]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", n) for n in names), names


def test_ok_comes_first_and_values_are_the_precedence() -> None:
    assert int(Result.ok) == 0
    assert list(Result) == sorted(Result)
    # Shape before identity before the state machine before funds.
    assert (
        Result.amount_malformed
        < Result.transfer_not_found
        < Result.command_invalid_for_status
        < Result.insufficient_funds
    )


def test_first_picks_the_highest_precedence_failure() -> None:
    assert first(Result.ok, Result.insufficient_funds, Result.amount_malformed) is (
        Result.amount_malformed
    )
    assert first(Result.ok, Result.ok) is Result.ok


def test_transient_flags() -> None:
    # A retry could change these: the balance, a lock or a halt can change.
    assert Result.insufficient_funds.transient
    assert Result.version_conflict.transient
    assert Result.idempotency_request_in_progress.transient
    # These fail the same way however often they are retried.
    assert not Result.amount_malformed.transient
    assert not Result.idempotency_key_reused.transient
    assert not Result.sanctions_hit.transient
    assert Result.ok not in TRANSIENT


def test_codes_round_trip_by_name() -> None:
    for r in Result:
        assert Result.from_code(r.code) is r
    assert Result.from_code("no_such_code") is None


def test_failure_codes_are_outcomes_not_request_shapes() -> None:
    assert Result.insufficient_funds in FAILURE_CODES
    assert Result.amount_malformed not in FAILURE_CODES
    assert Result.ok not in FAILURE_CODES


def test_every_rail_refusal_maps_to_a_code_a_transfer_can_fail_with() -> None:
    for result in Result:
        if result is Result.ok:
            continue
        assert as_failure(result) in FAILURE_CODES, result
    assert as_failure(Result.insufficient_funds) is Result.insufficient_funds
    assert as_failure(Result.currency_pair_unsupported) is Result.corridor_unsupported
    assert as_failure(Result.currency_unknown) is Result.corridor_unsupported
    assert as_failure(Result.command_malformed) is Result.provider_unavailable
