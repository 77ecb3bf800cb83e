"""What the API writes to the audit log: one record per command (every POST, PUT, PATCH and DELETE
that reaches the server, accepted, refused or unauthorized), written before the answer leaves,
with Series 3's fields: who (the key's user, or the provider, or anonymous), what (the route's
action), which resource, the request id, when, the outcome (ok or the problem code), what changed
(key fields of the answer, never a whole payload) and the context (key, role, client, HTTP status,
the policy decision a transfer was created under)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web
from loguru import logger

from adapters.http.context import AUDITED, CLOCK, PRESENTED, PRINCIPAL, SESSION, service
from adapters.http.routes import ROUTES, Route
from engine.access import STAFF_ROLES, Role, parse_key
from engine.audit import ActorType, AuditRecord

AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BY_PATH = {(r.method, r.path): r for r in ROUTES}
# Answer fields worth a line in diff_summary.
_SUMMARY_FIELDS = ("id", "status", "state", "version", "role", "url", "cancelled", "transfer_id")
_ANSWER_BYTES_MAX = 64 * 1024
_decoder = msgspec.json.Decoder()


def action_of(route: Route) -> str:
    """The route's action name: its handler's, with freezes and halts named for what they do."""
    name = route.handler.__name__
    if name != "control":
        return name
    parts = route.path.split("/")
    scope = {"clients": "client", "corridors": "corridor"}.get(parts[-3], "system")
    return f"{parts[-1]}_{scope}"


def resource_of(path: str) -> str:
    """The resource type a path acts on: the segment after /v1/ (or /v1/ops/)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["console"]:
        return "console_session"
    if parts[:2] == ["v1", "ops"]:
        rest = parts[2:]
        return rest[0] if rest and rest[0] not in ("halt", "resume") else "system"
    return parts[1] if len(parts) > 1 else "unknown"


# The console's own form posts (adapters/console), by path: the action each is recorded as.
CONSOLE_ACTIONS = {"/console/sign-in": "console_sign_in", "/console/sign-out": "console_sign_out"}


def _unrouted(path: str) -> str:
    return CONSOLE_ACTIONS.get(path, "unmatched")


def _answer(body: object) -> dict[str, Any]:
    if not isinstance(body, bytes) or not body or len(body) > _ANSWER_BYTES_MAX:
        return {}
    try:
        found = _decoder.decode(body)
    except msgspec.DecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def record_for(request: web.Request, response: web.StreamResponse, rid: str) -> AuditRecord:
    replayed = bool(response.headers.get("Idempotent-Replayed"))
    return answer_record(request, response.status, getattr(response, "body", None), rid, replayed)


def answer_record(
    request: web.Request, status: int, body: object, rid: str, replayed: bool = False
) -> AuditRecord:
    """The audit record of `request` answered with `status` and `body`."""
    info = request.match_info
    template = info.route.resource.canonical if info.route.resource is not None else ""
    route = _BY_PATH.get((request.method, template))
    answer = _answer(body)
    principal = request.get(PRINCIPAL)
    metadata = {"method": request.method, "path": request.path, "http_status": str(status)}
    if principal is not None:
        actor_id = principal.user
        admin = principal.role in STAFF_ROLES or principal.role is Role.ADMIN
        actor_type = ActorType.ADMIN if admin else ActorType.USER
        metadata.update(key_id=principal.key_id, role=principal.role.value)
        if SESSION in request or request.path in CONSOLE_ACTIONS:
            metadata["via"] = "console"
        if principal.client_id is not None:
            metadata["client_id"] = principal.client_id
    elif route is not None and route.signed and status < 400:
        actor_id, actor_type = info.get("provider", "provider"), ActorType.SERVICE
    else:
        actor_id, actor_type = "anonymous", ActorType.ANONYMOUS
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        parsed = parse_key(presented)
        if parsed is not None:
            metadata["presented_key_id"] = parsed.key_id
        elif PRESENTED in request:
            metadata["presented_key_id"] = request[PRESENTED]
    policy = answer.get("policy")
    if isinstance(policy, dict):
        metadata.update({f"policy_{k}": str(v) for k, v in policy.items()})
    if replayed:
        metadata["idempotent_replayed"] = "true"
    resource_id = info.get("id") or info.get("provider") or answer.get("id")
    if resource_id is None and isinstance(answer.get("transfer_id"), str):
        resource_id = answer["transfer_id"]
    summary = {k: str(answer[k]) for k in _SUMMARY_FIELDS if answer.get(k) is not None}
    outcome = "ok" if status < 400 else str(answer.get("code", status))
    return AuditRecord(
        at=request.app[CLOCK].now_us(),
        actor_id=actor_id,
        actor_type=actor_type,
        action_type=action_of(route) if route is not None else _unrouted(request.path),
        resource_type=resource_of(template or request.path),
        resource_id=str(resource_id) if resource_id is not None else None,
        request_id=rid,
        outcome=outcome,
        diff_summary=summary,
        metadata=metadata,
    )


def recorder(request: web.Request, rid: str) -> Callable[[int, bytes], AuditRecord]:
    """The audit record of `request` for an answer, for a handler that commits it with the
    command itself."""

    def record(status: int, body: bytes) -> AuditRecord:
        return answer_record(request, status, body, rid)

    return record


async def write(request: web.Request, response: web.StreamResponse, rid: str) -> None:
    """Record the command before its answer leaves (unless its handler committed the record
    with the command's own commit: AUDITED). A store that cannot take the record is logged
    loudly; the command itself has already been decided and its facts are journaled."""
    if request.get(AUDITED):
        return
    try:
        await service(request).record_audit(record_for(request, response, rid))
    except Exception:
        logger.exception("audit record not written for {method} {path}", method=request.method,
                         path=request.path)  # fmt: skip
