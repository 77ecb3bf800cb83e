"""Webhook endpoints, their delivery logs, and the event feed (API.md "Webhooks and events")."""

from __future__ import annotations

import os

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import (
    CLOCK,
    CONFIG,
    IDS,
    authorize,
    client_scope,
    decode_cursor,
    json,
    page_limit,
    page_of,
    service,
    visible,
)
from adapters.http.problems import Problem
from adapters.http.urls import refusal
from engine import limits
from engine.access import Permission, Principal
from engine.ids import is_id
from engine.webhooks import (
    SECRET_BYTES,
    Endpoint,
    EndpointStatus,
    new_secret,
    valid_subscription,
)


async def _visible(request: web.Request, principal: Principal) -> Endpoint:
    return await visible(
        request, principal, "webhook endpoint", "we", service(request).endpoint,
        lambda e: e.client_id,
    )  # fmt: skip


async def create_endpoint(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.MANAGE)
    assert principal.client_id is not None
    body = bodies.decode(await request.read(), bodies.EndpointBody)
    events = tuple(dict.fromkeys(body.events))
    if not valid_subscription(events):
        raise Problem.http("field_invalid", 'events: a list of event types, or ["*"]')
    why = await refusal(body.url, allow_private=request.app[CONFIG].allow_private_webhooks)
    if why is not None:
        raise Problem.http("webhook_url_refused", why)
    svc = service(request)
    if len(await svc.endpoints(principal.client_id)) >= limits.webhook_endpoints_per_client_max:
        raise Problem.http(
            "field_invalid", f"at most {limits.webhook_endpoints_per_client_max} endpoints"
        )
    secret = new_secret(os.urandom(SECRET_BYTES))
    endpoint = Endpoint(
        endpoint_id=request.app[IDS].new("we"),
        client_id=principal.client_id,
        url=body.url,
        events=events,
        status=EndpointStatus.ENABLED,
        created_at=request.app[CLOCK].now_us(),
    )
    await svc.create_endpoint(endpoint, secret)
    return json(render.endpoint(endpoint, secret), status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    found = await service(request).endpoints(client_scope(request, principal))
    return json({"data": [render.endpoint(e) for e in found]})


async def get_endpoint(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    return json(render.endpoint(await _visible(request, principal)))


async def delete_endpoint(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.MANAGE)
    endpoint = await _visible(request, principal)
    await service(request).delete_endpoint(endpoint.endpoint_id)
    return web.Response(status=204)


async def deliveries(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    endpoint = await _visible(request, principal)
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, tuple[int, str, int]) if cursor else None
    found = await service(request).attempts(endpoint.endpoint_id, before, limit + 1)
    return page_of(found, limit, render.attempt, lambda a: (a.attempted_at, a.event_id, a.attempt))


async def events(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ)
    limit = page_limit(request)
    after = request.query.get("after")
    if after is not None and not is_id(after, "ev"):
        raise Problem.http("cursor_invalid", "after is an event id (ev_...)")
    found = await service(request).feed(client_scope(request, principal), after, limit)
    if found is None:
        raise Problem.http("cursor_invalid", f"no event {after}")
    return json({"data": [render.feed_event(e) for e in found]})
