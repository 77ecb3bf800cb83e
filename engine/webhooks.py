"""Webhooks as Standard Webhooks defines them: signatures, the retry schedule, subscriptions.

A delivery carries `webhook-id` (the event's id, the same on every retry, so a receiver can
deduplicate), `webhook-timestamp` (seconds, set per attempt) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the endpoint's secret, the
base64 after `whsec_`). Delivery is at least once; an attempt that fails is retried on an
exponential schedule with jitter that spans about three days, after which the delivery is given up
(and stays visible in the endpoint's delivery log).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from collections.abc import Awaitable
from typing import Protocol

import msgspec

from engine import limits
from engine.backoff import delay_us

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24

# The event types a client may subscribe to: transfer.<lowercase status> and approval_required.
EVENT_TYPES = frozenset(
    {
        "transfer.created",
        "transfer.quoted",
        "transfer.funds_locked",
        "transfer.sent_on_chain",
        "transfer.confirmed",
        "transfer.fiat_settled",
        "transfer.reconciled",
        "transfer.failed",
        "transfer.cancelled",
        "transfer.expired",
        "transfer.approval_required",
    }
)
ALL_EVENTS = "*"


class EndpointStatus(enum.StrEnum):
    ENABLED = "enabled"
    # The receiver answered 410 Gone: nothing more is sent.
    DISABLED = "disabled"
    DELETED = "deleted"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # Every attempt failed, or the endpoint went away.
    FAILED = "failed"


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: str
    client_id: str
    url: str
    events: tuple[str, ...]
    status: EndpointStatus
    created_at: int
    disabled_reason: str | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One event owed to one endpoint."""

    endpoint_id: str
    event_id: str
    event_type: str
    transfer_id: str | None
    journal_seq: int
    created_at: int
    attempts: int
    url: str
    secret: str
    # The API request that caused the event, if one did (its X-Request-Id).
    request_id: str | None = None


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: str
    event_id: str
    event_type: str
    attempt: int
    attempted_at: int
    http_status: int | None
    error: str | None
    duration_ms: int
    status: DeliveryStatus


def new_secret(entropy: bytes) -> str:
    assert len(entropy) == SECRET_BYTES
    return SECRET_PREFIX + base64.b64encode(entropy).decode()


def signature(secret: str, message_id: str, timestamp_s: int, body: bytes) -> str:
    assert secret.startswith(SECRET_PREFIX)
    key = base64.b64decode(secret[len(SECRET_PREFIX) :])
    signed = f"{message_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature(secret, message_id, timestamp_s, body),
        "content-type": "application/json",
    }


# How far a signed message's timestamp may be from now (Standard Webhooks' replay window).
TIMESTAMP_TOLERANCE_S = 300


def valid_secret(secret: str) -> bool:
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        return len(base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)) >= 16
    except ValueError:
        return False


def verify(
    secret: str, message_id: str, timestamp: str, signatures: str, body: bytes, now_s: int
) -> bool:
    """Whether a message signed the Standard Webhooks way is genuine and fresh: one of the
    space-separated `v1,` signatures matches (compared in constant time) and the timestamp is
    within the tolerance of now (an old message replayed is refused)."""
    if not message_id or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    sent = int(timestamp)
    if abs(now_s - sent) > TIMESTAMP_TOLERANCE_S:
        return False
    expected = signature(secret, message_id, sent, body).encode()
    return any(hmac.compare_digest(expected, given.encode()) for given in signatures.split(" "))


def subscribed(events: tuple[str, ...], event_type: str) -> bool:
    return ALL_EVENTS in events or event_type in events


def valid_subscription(events: tuple[str, ...]) -> bool:
    if not 1 <= len(events) <= len(EVENT_TYPES) + 1:
        return False
    return all(e == ALL_EVENTS or e in EVENT_TYPES for e in events)


def retry_delay_us(attempts: int, event_id: str) -> int | None:
    """The wait before the next attempt after `attempts` failed ones, or None: give up. The
    schedule doubles from 5 s to a 12 h cap with jitter: about three days over 18 attempts."""
    if attempts >= limits.webhook_attempts_max:
        return None
    return delay_us(
        attempts - 1,
        base_us=limits.webhook_retry_base_us,
        cap_us=limits.webhook_retry_cap_us,
        key=event_id,
    )


def succeeded(http_status: int) -> bool:
    return 200 <= http_status < 300


def gone(http_status: int) -> bool:
    """410 Gone: the receiver says the endpoint no longer exists; it is disabled."""
    return http_status == 410


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    """What one HTTP attempt came to: the receiver's status, or the error that stopped it."""

    http_status: int | None
    error: str | None
    duration_ms: int


class WebhookOutbox(Protocol):
    """The store's side of delivery (implemented over store.service)."""

    def fan_out(self, now_us: int) -> Awaitable[int]: ...

    def due_deliveries(self, now_us: int, limit: int) -> Awaitable[list[Delivery]]: ...

    def body(self, delivery: Delivery) -> Awaitable[bytes]:
        """The event's JSON body: the same bytes on every attempt."""
        ...

    def record_attempt(
        self, attempt: Attempt, next_attempt_at: int | None, disable: str | None
    ) -> Awaitable[None]: ...


class WebhookSender(Protocol):
    def send(self, url: str, headers: dict[str, str], body: bytes) -> Awaitable[Sent]: ...
