"""The console's transfer pages: the overview (charts and the stuck list), transfers by state,
one transfer's timeline, the approvals queue and the form that creates a transfer."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiohttp import web

from adapters.console import charts, runbooks
from adapters.console.web import Viewer, html, idempotency_key, page
from adapters.http import render
from adapters.http.context import (
    CLOCK,
    client_scope,
    decode_cursor,
    encode_cursor,
    service,
    visible,
)
from adapters.http.discrepancies import render_case, render_summary
from adapters.http.problems import Problem
from engine import limits
from engine.access import Permission
from engine.events import EvidenceRecorded
from engine.records import Recorded
from engine.sanctions import Screening
from engine.service import CaseQuery, LedgerQuery, TransferQuery
from engine.states import TERMINAL, Status
from engine.timefmt import rfc3339
from engine.transfer import TransferState

OPEN = tuple(s.value for s in Status if s not in TERMINAL)
# Time-in-state buckets of the overview's histogram: (label, upper bound in seconds).
AGE_BUCKETS = (
    ("< 1 min", 60),
    ("1-5 min", 300),
    ("5-15 min", 900),
    ("15-60 min", 3600),
    ("1-24 h", 86_400),
    ("> 24 h", None),
)
PAGE_SIZE = 50


def duration(us: int) -> str:
    """A time in state for people: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    s = max(us // 1_000_000, 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86_400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86_400} d {s % 86_400 // 3600} h"


def row(state: TransferState, now: int) -> dict[str, Any]:
    """The API's view of the transfer, with its time in state and whether it is stuck."""
    found = render.transfer(state)
    threshold = limits.stuck_after_us.get(state.status.value)
    in_state = now - state.status_since
    found["in_state"] = duration(in_state)
    found["stuck"] = threshold is not None and in_state > threshold
    found["runbook"] = runbooks.for_status(state.status.value)
    return found


def _age_bucket(seconds: int) -> str:
    for label, bound in AGE_BUCKETS:
        if bound is None or seconds < bound:
            return label
    raise AssertionError("the last bucket has no bound")


@page(Permission.READ)
async def overview(request: web.Request, viewer: Viewer) -> web.Response:
    """Transfers by state, created per hour by the state they are in now, how long open ones
    have been in their state; for staff, the stuck list and reconciliation's aging."""
    svc = service(request)
    now = request.app[CLOCK].now_us()
    board = await svc.dashboard(viewer.principal.client_id)
    counts = [(s.value, board.by_status.get(s.value, 0)) for s in Status]
    hours: dict[int, dict[str, int]] = defaultdict(dict)
    first = (now // 3_600_000_000 - 23) * 3_600_000_000
    for i in range(24):
        hours[first + i * 3_600_000_000] = {}
    for hour, status, n in board.created_by_hour:
        hours[hour][status] = n
    columns = [(rfc3339(h)[11:16], v) for h, v in sorted(hours.items())]
    ages: dict[str, dict[str, int]] = {label: {} for label, _ in AGE_BUCKETS}
    for status, since in board.open_since:
        bucket = ages[_age_bucket((now - since) // 1_000_000)]
        bucket[status] = bucket.get(status, 0) + 1
    statuses = [s.value for s in Status]
    context: dict[str, Any] = {
        "counts": counts,
        "by_state": charts.bars("Transfers by state", counts),
        "volume": charts.stacked(
            "Transfers created per hour (UTC), last 24 hours, by their state now", columns, statuses
        ),
        "ages": charts.stacked(
            "Open transfers by time in their state", list(ages.items()), list(OPEN)
        ),
        "age_rows": [(label, sum(v.values())) for label, v in ages.items()],
        "stuck": None,
        "summary": None,
    }
    if viewer.can(Permission.OPERATE):
        stuck = await svc.stuck_transfers(None, limits.page_limit_max)
        context["stuck"] = [row(s, now) for s in stuck]
        summary = render_summary(
            await svc.status_counts(), await svc.reconciliation_summary(now), now
        )
        aging = summary["discrepancies"]["open_by_age"]  # type: ignore[index]
        context["summary"] = summary
        context["aging"] = charts.bars(
            "Open reconciliation cases by age", [(k, int(v)) for k, v in aging.items()]
        )
    return html(request, "overview.html", viewer=viewer, **context)


def _status_param(request: web.Request) -> str | None:
    status = request.query.get("status") or None
    if status is not None and status not in Status.__members__:
        raise Problem.http("parameter_invalid", f"status is one of {', '.join(Status)}")
    return status


@page(Permission.READ)
async def transfers(request: web.Request, viewer: Viewer) -> web.Response:
    """Transfers newest first, by state, with their time in state."""
    status = _status_param(request)
    client = client_scope(request, viewer.principal) or None
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, tuple[int, str]) if cursor else None
    query = TransferQuery(client_id=client, status=status, before=before, limit=PAGE_SIZE + 1)
    found = await service(request).transfers(query)
    now = request.app[CLOCK].now_us()
    page_rows = found[:PAGE_SIZE]
    more = len(found) > PAGE_SIZE
    last = page_rows[-1] if page_rows else None
    return html(
        request,
        "transfers.html",
        viewer=viewer,
        rows=[row(s, now) for s in page_rows],
        statuses=[s.value for s in Status],
        status=status,
        client=request.query.get("client_id", "") if viewer.principal.staff else "",
        next_cursor=encode_cursor((last.created_at, last.transfer_id)) if more and last else None,
    )


@page(Permission.READ)
async def transfer(request: web.Request, viewer: Viewer) -> web.Response:
    """One transfer: its terms, its journal events as a timeline, its ledger lines, its
    reconciliation cases and, for those who may read the audit log, who did what to it."""
    svc = service(request)
    state = await visible(
        request, viewer.principal, "transfer", "tr", svc.transfer, lambda s: s.client_id
    )
    now = request.app[CLOCK].now_us()
    records = await svc.history(state.transfer_id)
    history = render.history(records)
    lines = await svc.ledger(
        LedgerQuery(client_id=None, transfer_id=state.transfer_id, limit=limits.page_limit_max)
    )
    cases = []
    if viewer.can(Permission.OPERATE):
        found = await svc.discrepancies(
            CaseQuery(transfer_id=state.transfer_id, limit=limits.page_limit_max)
        )
        cases = [render_case(k, now) for k in found]
    staff = viewer.principal.staff
    evidence = (
        [_evidence(e) for e in await svc.transfer_evidence(state.transfer_id)] if staff else []
    )
    deliveries = [
        render.attempt(a) | {"endpoint_id": a.endpoint_id}
        for a in await svc.transfer_attempts(state.transfer_id)
    ]
    audit = []
    if viewer.can(Permission.AUDIT):
        rows = await svc.audit_page(
            actor=None, resource=state.transfer_id, action=None, from_at=None, to_at=None,
            before_seq=None, limit=limits.page_limit_max,
        )  # fmt: skip
        audit = [render.audit_row(r) for r in rows]
    return html(
        request,
        "transfer.html",
        viewer=viewer,
        t=row(state, now),
        history=history,
        lines=[_sided(render.ledger_line(line), line.debit) for line in lines],
        cases=cases,
        audit=audit,
        screenings=_screenings(records) if staff else [],
        evidence=evidence,
        deliveries=deliveries,
        awaiting=state.status is Status.CREATED and state.approvals_required > 0,
        cancellable=state.status in (Status.CREATED, Status.QUOTED, Status.FUNDS_LOCKED),
    )


def _screenings(records: list[Recorded]) -> list[dict[str, Any]]:
    """Every sanctions screening the transfer's events carry (staff only: a client is never
    told of a hit), each with the list it was screened against and what it hit."""
    found = []
    for record in records:
        screening = getattr(record.event, "screening", None)
        if isinstance(screening, Screening):
            found.append(
                {
                    "at": rfc3339(record.event.at),
                    "stage": screening.stage.value,
                    "list_digest": screening.list_digest,
                    "entries": screening.entries,
                    "hits": [f"{h.party} {h.kind} {h.value!r}: {h.list} entry {h.entry}"
                             for h in screening.hits],
                }
            )  # fmt: skip
    return found


def _evidence(e: EvidenceRecorded) -> dict[str, Any]:
    return {
        "id": e.evidence_id,
        "source": e.provider,
        "type": e.event_type,
        "reference": e.external_ref,
        "occurred_at": rfc3339(e.occurred_at),
        "recorded_at": rfc3339(e.at),
        "facts": dict(e.normalized),
    }


def _sided(line: dict[str, Any], debit: int) -> dict[str, Any]:
    """A ledger line with only its one side's amount (each line is a debit or a credit)."""
    return line | ({"credit": None} if debit else {"debit": None})


@page(Permission.READ)
async def approvals(request: web.Request, viewer: Viewer) -> web.Response:
    """Transfers waiting in CREATED for an approval, oldest first; an approver approves or
    rejects as themselves (never their own transfer: the engine refuses the maker)."""
    query = TransferQuery(
        client_id=viewer.principal.client_id,
        status=Status.CREATED.value,
        approval_state="pending",
        limit=limits.page_limit_max,
    )
    found = await service(request).transfers(query)
    now = request.app[CLOCK].now_us()
    return html(
        request, "approvals.html", viewer=viewer, rows=[row(s, now) for s in reversed(found)]
    )


@page(Permission.INITIATE)
async def new_transfer(request: web.Request, viewer: Viewer) -> web.Response:
    """The create form: sent to POST /v1/transfers with a fresh Idempotency-Key, so sending it
    twice makes one transfer."""
    return html(request, "new_transfer.html", viewer=viewer, idempotency_key=idempotency_key())
