"""Timestamps: integer microseconds inside, RFC 3339 UTC outside, exact both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.timefmt import parse_rfc3339, rfc3339, rfc3339_us

T0 = 1_795_564_800_000_000  # 2026-11-25T00:00:00Z


def test_formats() -> None:
    assert rfc3339_us(T0 + 1) == "2026-11-25T00:00:00.000001Z"
    assert rfc3339(T0 + 999_999) == "2026-11-25T00:00:00Z"


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))
def test_round_trip(us: int) -> None:
    assert parse_rfc3339(rfc3339_us(us)) == us


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000), st.integers(0, 10**6))
def test_stored_form_sorts_like_time(a: int, delta: int) -> None:
    assert rfc3339_us(a) <= rfc3339_us(a + delta)


def test_offsets_are_honoured() -> None:
    assert parse_rfc3339("2026-11-25T01:00:00+01:00") == T0


@pytest.mark.parametrize("text", ["2026-11-25T00:00:00", "yesterday", "", "2026-13-01T00:00:00Z"])
def test_refuses_ambiguous_or_malformed(text: str) -> None:
    assert parse_rfc3339(text) is None
