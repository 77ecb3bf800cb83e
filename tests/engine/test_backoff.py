"""Retry delays grow, stay under their cap, differ between keys and need no entropy."""

from __future__ import annotations

from engine.backoff import delay_us


def test_delays_grow_within_half_to_full_of_the_capped_exponential() -> None:
    for attempt in range(40):
        ceiling = min(1_000_000, 1_000 << attempt)
        d = delay_us(attempt, base_us=1_000, cap_us=1_000_000, key="tr_x")
        assert ceiling // 2 <= d < ceiling or d == ceiling // 2 == ceiling - ceiling // 2


def test_jitter_is_a_function_of_key_and_attempt() -> None:
    a = [delay_us(n, base_us=1_000, cap_us=10**9, key="tr_a") for n in range(10)]
    assert a == [delay_us(n, base_us=1_000, cap_us=10**9, key="tr_a") for n in range(10)]
    b = [delay_us(n, base_us=1_000, cap_us=10**9, key="tr_b") for n in range(10)]
    assert a != b
