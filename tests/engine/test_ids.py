"""Ids: prefixed ULIDs that sort by time, formatted from values the ports hand in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.ids import format_id, is_id, parse_id


def test_known_vectors() -> None:
    assert format_id("tr", 0, bytes(10)) == "tr_" + "0" * 26
    assert format_id("tr", 2**48 - 1, b"\xff" * 10) == "tr_7" + "Z" * 25
    assert format_id("tr", 1, b"1" * 10) == "tr_000000000164RK2C9H64RK2C9H"


@given(
    st.integers(min_value=0, max_value=2**48 - 1),
    st.integers(min_value=0, max_value=2**48 - 1),
    st.binary(min_size=10, max_size=10),
    st.binary(min_size=10, max_size=10),
)
def test_ids_sort_by_time(t1: int, t2: int, e1: bytes, e2: bytes) -> None:
    a, b = format_id("tr", t1, e1), format_id("tr", t2, e2)
    if t1 < t2:
        assert a < b
    assert parse_id(a) == ("tr", a[3:])


def test_decoding_the_body_gives_back_the_value() -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    entropy = bytes(range(10))
    body = format_id("qt", 123_456_789, entropy)[3:]
    value = 0
    for char in body:
        value = value * 32 + alphabet.index(char)
    assert value == (123_456_789 << 80) | int.from_bytes(entropy, "big")


@pytest.mark.parametrize(
    "text",
    ["tr_", "tr_0000000000000000000000000", "xx_" + "0" * 26, "tr-" + "0" * 26, "tr_" + "U" * 26],
)
def test_malformed_ids_are_not_ids(text: str) -> None:
    assert parse_id(text) is None
    assert not is_id(text, "tr")


def test_prefix_is_checked() -> None:
    assert is_id(format_id("tr", 1, bytes(10)), "tr")
    assert not is_id(format_id("qt", 1, bytes(10)), "tr")
