"""API keys over the API (API.md "Authentication and roles"): a client admin creates, lists,
revokes and rotates its own client's keys; an operator any client's. Staff keys are made only
with `stablerail keys create` on the machine. The key's text is in the create (and rotate)
answer only; revocation takes effect at the key's next request (every request reads the key)."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import (
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
from engine import access
from engine.access import ApiKey, Permission, Principal, Role


async def _visible(request: web.Request, principal: Principal) -> ApiKey:
    # Staff keys (no client) are not managed over the API.
    return await visible(
        request, principal, "API key", "ak", service(request).api_key, lambda k: k.client_id
    )


async def _issue(request: web.Request, client_id: str, role: Role, user: str) -> web.Response:
    why = access.key_refusal(client_id, role, user)
    if why is not None:
        raise Problem.http("field_invalid", why)
    key, text = await service(request).create_api_key(client_id, role, user)
    return json(render.api_key(key, text), status=201)


async def create_key(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.KEYS)
    body = bodies.decode(await request.read(), bodies.ApiKeyBody)
    try:
        role = Role(body.role)
    except ValueError:
        raise Problem.http("field_invalid", f"role is one of {', '.join(Role)}") from None
    client_id = body.client_id if body.client_id is not None else principal.client_id
    why = access.grant_refusal(principal, client_id, role)
    if why is not None:
        raise Problem.http("forbidden" if role in access.STAFF_ROLES else "field_invalid", why)
    assert client_id is not None
    return await _issue(request, client_id, role, body.user)


async def list_keys(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.KEYS)
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, tuple[str])[0] if cursor else None
    found = await service(request).api_keys(client_scope(request, principal), before, limit + 1)
    return page_of(found, limit, render.api_key, lambda k: (k.key_id,))


async def revoke_key(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.KEYS)
    key = await _visible(request, principal)
    svc = service(request)
    await svc.revoke_api_key(key.key_id)
    revoked = await svc.api_key(key.key_id)
    assert revoked is not None
    return json(render.api_key(revoked))


async def rotate_key(request: web.Request) -> web.Response:
    """A new key with the same client, role and user; the old one is revoked at once."""
    principal = await authorize(request, Permission.KEYS)
    key = await _visible(request, principal)
    if key.revoked_at is not None:
        raise Problem.http("key_revoked", f"{key.key_id} is revoked; create a new key instead")
    assert key.client_id is not None
    response = await _issue(request, key.client_id, key.role, key.user)
    await service(request).revoke_api_key(key.key_id)
    return response
