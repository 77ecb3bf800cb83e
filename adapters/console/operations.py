"""The console's operations pages: the discrepancy queue and a case, freezes and halts, balances
and the trial balance, webhook endpoints and their deliveries, the policy rule set with its
versions and dry run, and the audit log."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from adapters.console import runbooks
from adapters.console.web import Viewer, html, page
from adapters.http import render
from adapters.http.context import (
    CLOCK,
    client_scope,
    decode_cursor,
    encode_cursor,
    instant_param,
    service,
)
from adapters.http.discrepancies import RESOLUTIONS, case_of, render_case, render_summary
from adapters.http.policy import rule_set
from adapters.http.problems import Problem
from adapters.http.rebalances import render as render_move
from engine import controls, limits
from engine import discrepancies as dc
from engine.access import Permission
from engine.policy import CORRIDOR_IDS
from engine.reconciliation import Kind
from engine.service import CaseQuery
from engine.timefmt import rfc3339

PAGE_SIZE = 50


def _choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in choices:
        raise Problem.http("parameter_invalid", f"{name} is one of {', '.join(choices)}")
    return value


@page(Permission.OPERATE)
async def cases(request: web.Request, viewer: Viewer) -> web.Response:
    """The discrepancy queue: open and investigating cases by default, with owner, SLA and age
    bucket (0-24 h, 24-72 h, 72 h+)."""
    statuses = tuple(s.value for s in dc.Status)
    status = _choice(request, "status", statuses)
    kind = _choice(request, "type", tuple(k.value for k in Kind))
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, tuple[int, str]) if cursor else None
    query = CaseQuery(status=status, kind=kind, before=before, limit=PAGE_SIZE + 1)
    svc = service(request)
    found = await svc.discrepancies(query)
    now = request.app[CLOCK].now_us()
    shown = found[:PAGE_SIZE]
    if status is None:
        shown = [k for k in shown if not k.closed]
    last = found[PAGE_SIZE - 1] if len(found) > PAGE_SIZE else None
    summary = render_summary(await svc.status_counts(), await svc.reconciliation_summary(now), now)
    rows = [render_case(k, now) | {"runbook": runbooks.for_case(k.kind.value)} for k in shown]
    return html(
        request,
        "cases.html",
        viewer=viewer,
        rows=rows,
        status=status,
        kind=kind,
        statuses=statuses,
        kinds=[k.value for k in Kind],
        discrepancies=summary["discrepancies"],
        buckets=[b.value for b in dc.Bucket],
        next_cursor=encode_cursor((last.created_at, last.discrepancy_id)) if last else None,
    )


@page(Permission.OPERATE)
async def case(request: web.Request, viewer: Viewer) -> web.Response:
    """One case: what was expected and observed, its notes, and take / note / resolve."""
    found = await case_of(request)
    now = request.app[CLOCK].now_us()
    return html(
        request,
        "case.html",
        viewer=viewer,
        k=render_case(found, now),
        pretty=_pretty,
        resolutions=RESOLUTIONS,
        runbook=runbooks.for_case(found.kind.value),
        closed=found.closed,
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@page(Permission.OPERATE)
async def controls_page(request: web.Request, viewer: Viewer) -> web.Response:
    """What is frozen or halted now, by whom and why, every change before it, and the forms
    that switch them."""
    changes = await service(request).control_changes()
    in_force: dict[tuple[str, str], Any] = {}
    for change in reversed(changes):
        in_force[(change.scope, change.target)] = change
    rows = [
        {"scope": c.scope, "target": c.target, "by": c.by, "reason": c.reason, "at": rfc3339(c.at)}
        for c in in_force.values()
        if c.on
    ]
    history = [
        {"scope": c.scope, "target": c.target, "on": c.on, "by": c.by, "reason": c.reason,
         "at": rfc3339(c.at)}
        for c in changes[: limits.page_limit_max]
    ]  # fmt: skip
    return html(
        request,
        "controls.html",
        viewer=viewer,
        rows=rows,
        history=history,
        corridors=CORRIDOR_IDS,
        system_target=controls.SYSTEM_TARGET,
    )


@page(Permission.OPERATE)
async def treasury(request: web.Request, viewer: Viewer) -> web.Response:
    """Held balances against their floors and ceilings, the suggested moves (each one a
    proposal away), and every rebalancing move with approve / reject for a second operator."""
    svc = service(request)
    view = render.liquidity_view(await svc.liquidity())
    moves = [render_move(m) for m in await svc.rebalances()]
    return html(request, "treasury.html", viewer=viewer, view=view, moves=moves)


@page(Permission.READ)
async def balances(request: web.Request, viewer: Viewer) -> web.Response:
    """A client's balances (a client's own; staff pick one), and for operators the trial
    balance of every ledger account."""
    svc = service(request)
    client = client_scope(request, viewer.principal)
    found = [render.balance(b) for b in await svc.balances(client)] if client else None
    trial = None
    if viewer.can(Permission.OPERATE):
        trial = render.trial_balance(await svc.trial_balance(), request.app[CLOCK].now_us())
    return html(
        request,
        "balances.html",
        viewer=viewer,
        client=client or "",
        balances=found,
        trial=trial,
    )


@page(Permission.READ)
async def webhooks(request: web.Request, viewer: Viewer) -> web.Response:
    """Webhook endpoints and, for the one picked, its latest delivery attempts."""
    svc = service(request)
    client = client_scope(request, viewer.principal)
    endpoints = await svc.endpoints(client)
    picked = request.query.get("endpoint")
    attempts = None
    if picked:
        chosen = next((e for e in endpoints if e.endpoint_id == picked), None)
        if chosen is None:
            raise Problem.http("not_found", f"no webhook endpoint {picked}")
        found = await svc.attempts(chosen.endpoint_id, None, limits.page_limit_max)
        attempts = [render.attempt(a) for a in found]
    return html(
        request,
        "webhooks.html",
        viewer=viewer,
        client=request.query.get("client_id", "") if viewer.principal.staff else "",
        endpoints=[render.endpoint(e) | {"client_id": e.client_id} for e in endpoints],
        picked=picked,
        attempts=attempts,
    )


@page(Permission.POLICY)
async def policy(request: web.Request, viewer: Viewer) -> web.Response:
    """The rule set in force (or the version picked), every version with who loaded it and why,
    and the dry-run form."""
    svc = service(request)
    current = svc.rules_in_force()
    text = request.query.get("version")
    shown = current
    if text:
        if not text.isdigit() or len(text) > 9:
            raise Problem.http("parameter_invalid", "version is a positive integer")
        found = svc.rules_version(int(text))
        if found is None:
            raise Problem.http("not_found", f"no rule set version {text}")
        shown = found
    versions = [svc.rules_version(n) for n in range(current.version, 0, -1)]
    listed = [rule_set(v) for v in versions if v is not None]
    document = rule_set(shown)
    return html(
        request,
        "policy.html",
        viewer=viewer,
        shown=document,
        current_version=current.version,
        document=_pretty(document["document"]),
        versions=listed,
    )


@page(Permission.AUDIT)
async def audit(request: web.Request, viewer: Viewer) -> web.Response:
    """The audit log, newest first, filtered by actor, resource, action and time."""
    cursor = request.query.get("cursor")
    before: int | None = decode_cursor(cursor, tuple[int])[0] if cursor else None
    filters = {k: request.query.get(k, "") for k in ("actor", "resource", "action", "from", "to")}
    rows = await service(request).audit_page(
        actor=filters["actor"] or None,
        resource=filters["resource"] or None,
        action=filters["action"] or None,
        from_at=instant_param(request, "from") if filters["from"] else None,
        to_at=instant_param(request, "to") if filters["to"] else None,
        before_seq=before,
        limit=PAGE_SIZE + 1,
    )
    shown = rows[:PAGE_SIZE]
    more = len(rows) > PAGE_SIZE
    return html(
        request,
        "audit.html",
        viewer=viewer,
        rows=[render.audit_row(r) for r in shown],
        filters=filters,
        next_cursor=encode_cursor((shown[-1].seq,)) if more else None,
    )
