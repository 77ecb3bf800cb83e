"""Webhook delivery from the outbox to a receiver on 127.0.0.1: signed per Standard Webhooks
(verified by the reference library), a failed attempt retried with the same webhook-id, every
attempt in the endpoint's delivery log, a 410 disabling the endpoint, the same event in the
polling feed, and private URLs refused unless the configuration allows them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook

from adapters.http.urls import refusal
from engine.access import Role
from tests.adapters.http.conftest import Api, wallet_body

pytestmark = pytest.mark.anyio


class Receiver:
    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status)


@pytest.fixture
async def receivers() -> AsyncIterator[list[tuple[Receiver, str]]]:
    made: list[tuple[Receiver, str]] = []
    servers = []
    for answers in ([500], [410]):
        receiver = Receiver(list(answers))
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        made.append((receiver, str(server.make_url("/hook"))))
    yield made
    for server in servers:
        await server.close()


async def register(api: Api, url: str, events: list[str]) -> dict[str, Any]:
    r = await api.http.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": events},
        headers=api.auth("acme", Role.ADMIN),
    )
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def wait_for(predicate: Any, timeout_s: float = 20) -> None:
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 (an outside server fills it)
            await anyio.sleep(0.05)


async def test_delivery_is_signed_retried_with_its_id_logged_and_410_disables(
    api: Api, receivers: list[tuple[Receiver, str]]
) -> None:
    (flaky, flaky_url), (gone, gone_url) = receivers
    endpoint = await register(api, flaky_url, ["transfer.funds_locked"])
    assert (
        "secret"
        not in await (
            await api.http.get(
                f"/v1/webhook-endpoints/{endpoint['id']}", headers=api.auth("acme", Role.VIEWER)
            )
        ).json()
    )
    doomed = await register(api, gone_url, ["*"])
    await api.fund("acme")
    r = await api.http.post(
        "/v1/transfers",
        json=wallet_body("5.00"),
        headers={
            **api.auth("acme", Role.INITIATOR),
            "Idempotency-Key": str(uuid.uuid4()),
            "X-Request-Id": "req-webhook-test-1",
        },
    )
    assert r.status == 201, await r.text()
    transfer = await r.json()
    started = time.monotonic()
    await wait_for(lambda: len(flaky.got) >= 2)
    assert time.monotonic() - started < 15
    (first_headers, first_body), (second_headers, second_body) = flaky.got[:2]
    assert first_headers["webhook-id"] == second_headers["webhook-id"]
    assert first_body == second_body
    hook = Webhook(endpoint["secret"])
    for headers, body in flaky.got:
        hook.verify(body, headers)
    event = json.loads(second_body)
    assert event["type"] == "transfer.funds_locked"
    assert event["data"]["transfer"]["id"] == transfer["id"]
    assert event["data"]["transfer"]["status"] == "FUNDS_LOCKED"
    # The request that caused it is named in the event and on every delivery of it.
    assert event["request_id"] == "req-webhook-test-1"
    assert {h.get("x-request-id") for h, _ in flaky.got[:2]} == {"req-webhook-test-1"}

    # The dispatcher records an attempt once the receiver has answered: the receiver can hold
    # the second delivery a moment before the log does.
    attempts: list[tuple[int, int, str]] = []
    with anyio.fail_after(20):
        while len(attempts) < 2:
            log = await (
                await api.http.get(
                    f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
                    headers=api.auth("acme", Role.VIEWER),
                )
            ).json()
            attempts = sorted((a["attempt"], a["http_status"], a["status"]) for a in log["data"])
            await anyio.sleep(0.05)
    assert attempts[:2] == [(1, 500, "pending"), (2, 200, "delivered")], attempts

    await wait_for(lambda: len(gone.got) >= 1)

    async def disabled() -> bool:
        r = await api.http.get(
            f"/v1/webhook-endpoints/{doomed['id']}", headers=api.auth("acme", Role.VIEWER)
        )
        return bool((await r.json())["status"] == "disabled")

    with anyio.fail_after(10):
        while not await disabled():  # noqa: ASYNC110 (polling the API)
            await anyio.sleep(0.05)
    sent_before = len(gone.got)
    await anyio.sleep(1)
    assert len(gone.got) == sent_before  # nothing more is sent to a disabled endpoint

    feed = await (
        await api.http.get("/v1/events?limit=100", headers=api.auth("acme", Role.VIEWER))
    ).json()
    polled = {e["id"]: e for e in feed["data"]}
    assert polled[event["id"]] == event


async def test_private_urls_are_refused_unless_allowed() -> None:
    assert await refusal("http://127.0.0.1:8080/x", allow_private=False) is not None
    assert await refusal("http://10.1.2.3/x", allow_private=False) is not None
    assert await refusal("http://169.254.169.254/latest", allow_private=False) is not None
    assert await refusal("http://[::1]/x", allow_private=False) is not None
    assert await refusal("http://127.0.0.1:8080/x", allow_private=True) is None
    assert await refusal("ftp://example.com/x", allow_private=True) is not None
    assert await refusal("http://user:pw@127.0.0.1/x", allow_private=True) is not None
    assert await refusal("http://8.8.8.8/hook", allow_private=False) is None
