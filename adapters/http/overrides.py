"""Admin overrides over the API (staff operators): one operator requests with a reason, a second
one approves (carried out at once) or rejects. See engine/overrides.py."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies
from adapters.http.context import authorize, json, service
from adapters.http.problems import Problem
from engine import overrides
from engine.access import Permission
from engine.ids import is_id
from engine.results import Result
from engine.timefmt import rfc3339


def render(o: overrides.Override) -> dict[str, object]:
    return {
        "id": o.override_id,
        "kind": o.kind.value,
        "transfer_id": o.transfer_id,
        "reason": o.reason,
        "requested_by": o.requested_by,
        "requested_at": rfc3339(o.requested_at),
        "state": o.state.value,
        "decided_by": o.decided_by,
        "decided_at": rfc3339(o.decided_at) if o.decided_at is not None else None,
        "decision_reason": o.decision_reason,
        "outcome": o.outcome,
    }


def _answer(found: overrides.Override | Result, status: int = 200) -> web.Response:
    if isinstance(found, Result):
        raise Problem.of(found)
    return json(render(found), status=status)


async def request_override(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.OverrideBody)
    if body.kind not in tuple(overrides.Kind):
        kinds = ", ".join(overrides.Kind)
        raise Problem.http("field_invalid", f"kind is one of {kinds}")
    if not is_id(body.transfer_id, "tr"):
        raise Problem.of(Result.transfer_not_found)
    found = await service(request).request_override(
        overrides.Kind(body.kind), body.transfer_id, body.reason, principal.user
    )
    return _answer(found, 201)


async def _override_id(request: web.Request) -> str:
    override_id = request.match_info["id"]
    if not is_id(override_id, "ov") or await service(request).override(override_id) is None:
        raise Problem.http("not_found", f"no override {override_id}")
    return override_id


async def get_override(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    found = await service(request).override(await _override_id(request))
    assert found is not None
    return _answer(found)


async def approve_override(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    override_id = await _override_id(request)
    raw = await request.read()
    reason = bodies.decode(raw, bodies.ReasonBody).reason if raw.strip() else ""
    found = await service(request).decide_override(override_id, principal.user, True, reason)
    return _answer(found)


async def reject_override(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    override_id = await _override_id(request)
    body = bodies.decode(await request.read(), bodies.ControlBody)
    found = await service(request).decide_override(override_id, principal.user, False, body.reason)
    return _answer(found)
