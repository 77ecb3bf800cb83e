"""What every handler shares: the app's typed state, authentication, JSON answers, paging."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from adapters.http import sessions
from adapters.http.metrics import Metrics
from adapters.http.problems import Problem
from adapters.http.render import encode
from engine import access, limits
from engine.access import Permission, Principal
from engine.audit import AuditRecord
from engine.ids import is_id
from engine.ledger import is_name
from engine.ports import Clock, Ids
from engine.service import Service
from engine.timefmt import parse_rfc3339

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class HttpConfig:
    # Webhook endpoints on private, loopback or link-local addresses (local development, tests).
    allow_private_webhooks: bool = False
    # Whether the server runs simulated rails (the /v1/sim routes exist only then).
    simulated: bool = False
    # provider -> whsec_ secret its inbound webhooks are signed with.
    inbound_secrets: dict[str, str] = dataclasses.field(default_factory=dict)


SERVICE = web.AppKey("service", Service)
CLOCK = web.AppKey("clock", Clock)
IDS = web.AppKey("ids", Ids)
CONFIG = web.AppKey("config", HttpConfig)
METRICS = web.AppKey("metrics", Metrics)
REQUEST_ID = web.RequestKey("request_id", str)
SESSIONS = web.AppKey("sessions", sessions.Sessions)
PRINCIPAL = web.RequestKey("principal", Principal)
# The console session a request was signed by (absent: it presented an API key).
SESSION = web.RequestKey("session", sessions.Session)
# The key id a console sign-in form presented (for the audit record of a refused sign-in).
PRESENTED = web.RequestKey("presented_key_id", str)
# The audit record of this request for an answer (HTTP status, body), for a handler that
# commits it with the command itself (a create), which then sets AUDITED.
AUDIT: web.RequestKey[Callable[[int, bytes], AuditRecord]] = web.RequestKey("audit")
AUDITED = web.RequestKey("audited", bool)


def service(request: web.Request) -> Service:
    return request.app[SERVICE]


def request_id(request: web.Request) -> str:
    return request[REQUEST_ID]


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=encode(data), content_type="application/json", headers=headers
    )


def raw_json(body: bytes, status: int, headers: dict[str, str] | None = None) -> web.Response:
    content_type = "application/problem+json" if status >= 400 else "application/json"
    return web.Response(status=status, body=body, content_type=content_type, headers=headers)


async def authorize(request: web.Request, permission: Permission) -> Principal:
    """The request's principal, if its key (or the console session it is signed by) is good and
    its role holds `permission`."""
    header = request.headers.get("Authorization")
    if header is None and sessions.COOKIE in request.cookies:
        principal = await session_principal(request)
    else:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem.http("unauthorized", "send Authorization: Bearer <API key>")
        parsed = access.parse_key(token.strip())
        if parsed is None:
            raise Problem.http("unauthorized")
        stored = await service(request).api_key(parsed.key_id)
        found = access.check(stored, parsed)
        if found is None:
            raise Problem.http("unauthorized")
        principal = found
    request[PRINCIPAL] = principal
    if not access.allowed(principal.role, permission):
        raise Problem.http(
            "forbidden", f"role {principal.role.value} lacks the {permission.value} permission"
        )
    return principal


async def session_principal(request: web.Request) -> Principal:
    """The principal of the console session the request's cookie names. A request that changes
    anything must also carry the session's CSRF token and come from this server's own pages."""
    token = request.cookies.get(sessions.COOKIE, "")
    live = request.app[SESSIONS]
    session = live.find(token)
    if session is None:
        raise Problem.http("unauthorized", "the console session has ended: sign in again")
    principal = access.active(await service(request).api_key(session.key_id))
    if principal is None:
        live.close(token)
        raise Problem.http("unauthorized", "the key this session was signed in with is revoked")
    if request.method not in sessions.SAFE_METHODS:
        origin = request.headers.get("Origin")
        if not sessions.same_origin(origin, request.scheme, request.host):
            raise Problem.http("csrf_invalid", f"a request from {origin} is not this console's")
        if not session.csrf_matches(request.headers.get(sessions.CSRF_HEADER)):
            raise Problem.http("csrf_invalid")
    request[SESSION] = session
    return principal


def client_scope(request: web.Request, principal: Principal) -> str | None:
    """The client a read is about: the key's own; a staff key may name one (`client_id`). A
    client key's `client_id` is checked like any parameter and changes nothing: it sees its own."""
    named = request.query.get("client_id")
    if named is not None and (not is_name(named) or len(named) > limits.client_id_length_max):
        raise Problem.http("parameter_invalid", "client_id: letters, digits, '_', '.', '-'")
    if principal.client_id is not None:
        return principal.client_id
    return named


def page_limit(request: web.Request) -> int:
    text = request.query.get("limit")
    if text is None:
        return limits.page_limit_default
    if not text.isdigit() or not 1 <= int(text) <= limits.page_limit_max:
        raise Problem.http("parameter_invalid", f"limit must be 1 to {limits.page_limit_max}")
    return int(text)


async def visible(
    request: web.Request,
    principal: Principal,
    what: str,
    prefix: str,
    load: Callable[[str], Awaitable[T | None]],
    owner: Callable[[T], str | None],
) -> T:
    """The object the path's `{id}` names, if this principal may see it. Another client's object
    is the same 404 as a missing one (and so is an object with no client, for a client key)."""
    object_id = request.match_info["id"]
    found = await load(object_id) if is_id(object_id, prefix) else None
    client_id = owner(found) if found is not None else None
    if found is None or client_id is None or not principal.sees(client_id):
        raise Problem.http("not_found", f"no {what} {object_id}")
    return found


def page_of(
    found: Sequence[T],
    limit: int,
    render: Callable[[T], Any],
    cursor: Callable[[T], tuple[Any, ...]],
) -> web.Response:
    """A keyset page from `limit + 1` rows: the first `limit`, and a cursor after the last of
    them when the extra row shows there is more."""
    page = found[:limit]
    more = len(found) > limit
    return json(
        {
            "data": [render(item) for item in page],
            "next_cursor": encode_cursor(cursor(page[-1])) if more else None,
            "has_more": more,
        }
    )


def encode_cursor(value: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


def decode_cursor(text: str, kind: type[Any]) -> Any:
    try:
        padded = text + "=" * (-len(text) % 4)
        return msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()), type=kind)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise Problem.http("cursor_invalid") from None


def instant_param(request: web.Request, name: str) -> int | None:
    """An RFC 3339 query parameter, in microseconds."""
    text = request.query.get(name)
    if text is None:
        return None
    found = parse_rfc3339(text)
    if found is None:
        raise Problem.http("parameter_invalid", f"{name} must be an RFC 3339 timestamp")
    return found
