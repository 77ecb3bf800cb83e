"""The webhook dispatcher: a supervisor that delivers the outbox to clients' endpoints.

Each round it fans new outbox events out to the endpoints that subscribe to them (one delivery
row per endpoint and event, in the store), then sends every delivery that is due, up to
`webhook_batch_max` at once. An attempt is logged before its delivery moves on: delivered on a
2xx, retried later on anything else (or no answer within `webhook_timeout_s`), given up after
`webhook_attempts_max` attempts; a 410 disables the endpoint. The outbox row is written in the
same transaction as the journal row that caused it, and a delivery is only marked delivered after
the receiver said so, so an event is delivered at least once across crashes.
"""

from __future__ import annotations

import anyio

from actors.fanout import for_each
from engine import limits
from engine.ports import Clock
from engine.webhooks import (
    Attempt,
    Delivery,
    DeliveryStatus,
    WebhookOutbox,
    WebhookSender,
    gone,
    headers,
    retry_delay_us,
    succeeded,
)


class WebhookDispatcher:
    def __init__(self, outbox: WebhookOutbox, sender: WebhookSender, clock: Clock) -> None:
        self.outbox = outbox
        self.sender = sender
        self.clock = clock
        self.wake = anyio.Event()
        self.sent = 0
        self.failed_attempts = 0

    def nudge(self) -> None:
        """Something new may be in the outbox: look before the next poll."""
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.round()
            with anyio.move_on_after(limits.webhook_poll_ms / 1000):
                await self.wake.wait()
            self.wake = anyio.Event()

    async def round(self) -> int:
        """Fan out and send what is due; returns how many attempts were made."""
        now = self.clock.now_us()
        await self.outbox.fan_out(now)
        due = await self.outbox.due_deliveries(now, limits.webhook_batch_max)
        await for_each(due, self.attempt, limit=limits.webhook_batch_max)
        return len(due)

    async def attempt(self, delivery: Delivery) -> None:
        body = await self.outbox.body(delivery)
        now = self.clock.now_us()
        timestamp_s = now // 1_000_000
        signed = headers(delivery.secret, delivery.event_id, timestamp_s, body)
        if delivery.request_id is not None:
            signed["X-Request-Id"] = delivery.request_id
        sent = await self.sender.send(delivery.url, signed, body)
        number = delivery.attempts + 1
        disable = None
        next_at = None
        if sent.http_status is not None and succeeded(sent.http_status):
            status = DeliveryStatus.DELIVERED
            self.sent += 1
        elif sent.http_status is not None and gone(sent.http_status):
            status = DeliveryStatus.FAILED
            disable = "the receiver answered 410 Gone"
        else:
            self.failed_attempts += 1
            wait = retry_delay_us(number, delivery.event_id)
            status = DeliveryStatus.PENDING if wait is not None else DeliveryStatus.FAILED
            next_at = now + wait if wait is not None else None
        attempt = Attempt(
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            attempt=number,
            attempted_at=now,
            http_status=sent.http_status,
            error=sent.error,
            duration_ms=sent.duration_ms,
            status=status,
        )
        await self.outbox.record_attempt(attempt, next_at, disable)
