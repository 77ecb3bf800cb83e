"""Webhook signing and retries: signatures made here verify with the Standard Webhooks reference
library (and fail for a changed body, id or timestamp), the retry schedule spans about three days
and stops, and subscriptions accept only known event types."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from engine import limits
from engine import webhooks as wh

SECRET = wh.new_secret(bytes(range(wh.SECRET_BYTES)))
BODY = b'{"id":"ev_1","type":"transfer.created"}'


def test_signatures_verify_with_the_reference_library() -> None:
    assert SECRET.startswith("whsec_") and len(base64.b64decode(SECRET[6:])) == wh.SECRET_BYTES
    # The reference library refuses timestamps more than five minutes from its own clock.
    timestamp = int(time.time())
    headers = wh.headers(SECRET, "ev_01", timestamp, BODY)
    hook = Webhook(SECRET)
    hook.verify(BODY, headers)
    for body, changed in (
        (BODY + b" ", headers),
        (BODY, {**headers, "webhook-id": "ev_02"}),
        (BODY, {**headers, "webhook-timestamp": str(timestamp + 1)}),
        (
            BODY,
            {
                **headers,
                "webhook-signature": wh.signature(
                    wh.new_secret(bytes(24)), "ev_01", timestamp, BODY
                ),
            },
        ),
    ):
        with pytest.raises(WebhookVerificationError):
            hook.verify(body, changed)


def test_the_retry_schedule_spans_about_three_days_then_stops() -> None:
    waits = []
    attempts = 1
    while (wait := wh.retry_delay_us(attempts, "ev_01")) is not None:
        waits.append(wait)
        attempts += 1
    assert attempts == limits.webhook_attempts_max
    assert waits == sorted(waits[:14]) + waits[14:]  # grows until the cap
    total_h = sum(waits) / 3_600_000_000
    assert 48 <= total_h <= 96, total_h
    assert waits[0] < 10_000_000  # the first retry comes within seconds
    # Jitter spreads different events apart.
    assert wh.retry_delay_us(3, "ev_01") != wh.retry_delay_us(3, "ev_02")


def test_subscriptions() -> None:
    assert wh.valid_subscription(("*",))
    assert wh.valid_subscription(("transfer.reconciled", "transfer.approval_required"))
    assert not wh.valid_subscription(())
    assert not wh.valid_subscription(("transfer.nope",))
    assert wh.subscribed(("*",), "transfer.failed")
    assert wh.subscribed(("transfer.failed",), "transfer.failed")
    assert not wh.subscribed(("transfer.failed",), "transfer.created")
    assert wh.gone(410) and not wh.gone(404) and wh.succeeded(204) and not wh.succeeded(301)
