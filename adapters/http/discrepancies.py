"""Reconciliation cases over the API (staff operators; API.md "Operations"): the queue, one case,
taking it, notes, resolving it (a resolution that moves money needs a second operator to approve
its correcting entries), and the reconciliation summary. See engine/discrepancies.py."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import (
    CLOCK,
    authorize,
    decode_cursor,
    json,
    page_limit,
    page_of,
    service,
)
from adapters.http.problems import Problem
from engine import discrepancies as dc
from engine import ledger, money
from engine.access import Permission
from engine.discrepancies import Discrepancy
from engine.ids import is_id
from engine.reconciliation import Kind, Severity, format_confidence
from engine.results import Result
from engine.service import CaseQuery, ReconciliationSummary
from engine.timefmt import rfc3339

RESOLUTIONS = tuple(r.value for r in dc.Resolution)


def _amount(minor: int, currency: str) -> str:
    asset = money.asset(currency)
    return money.format_amount(minor, asset) if asset is not None else str(minor)


def _entry(e: ledger.Entry) -> dict[str, str]:
    side = {"debit": _amount(e.debit, e.currency)} if e.debit else {}
    side |= {"credit": _amount(e.credit, e.currency)} if e.credit else {}
    return {"account": e.account, "currency": e.currency, **side}


def render_case(case: Discrepancy, now: int) -> dict[str, object]:
    proposal = case.proposal
    age = now - case.created_at
    return {
        "id": case.discrepancy_id,
        "type": case.kind.value,
        "severity": case.severity,
        "confidence": format_confidence(case.confidence),
        "source": case.source,
        "status": case.status.value,
        "transfer_id": case.transfer_id,
        "evidence_ids": list(case.evidence_ids),
        "expected": case.expected,
        "observed": case.actual,
        "owner": case.owner,
        "notes": [{"at": rfc3339(n.at), "by": n.by, "text": n.text} for n in case.notes],
        "proposal": None
        if proposal is None
        else {
            "resolution": proposal.resolution.value,
            "notes": proposal.notes,
            "by": proposal.by,
            "at": rfc3339(proposal.at),
            "correction": [_entry(e) for e in proposal.correction],
        },
        "resolution": case.resolution.value if case.resolution else None,
        "resolution_notes": case.resolution_notes or None,
        "resolved_by": case.resolved_by,
        "approved_by": case.approved_by,
        "correction": [_entry(e) for e in case.correction],
        "sla_deadline": rfc3339(case.sla_deadline),
        "sla_breached": dc.breached(case, now),
        "age_bucket": dc.bucket(age).value if not case.closed else None,
        "created_at": rfc3339(case.created_at),
        "updated_at": rfc3339(case.updated_at),
        "resolved_at": rfc3339(case.resolved_at) if case.resolved_at is not None else None,
    }


def _choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise Problem.http("parameter_invalid", f"{name} is one of {', '.join(choices)}")
    return value


async def list_discrepancies(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    status = request.query.get("status")
    if status is not None:
        status = status.upper()
        if status not in dc.Status.__members__:
            raise Problem.http("parameter_invalid", f"status is one of {', '.join(dc.Status)}")
    kind = _choice(request, "type", tuple(k.value for k in Kind))
    severity = _choice(request, "severity", tuple(s.value for s in Severity))
    transfer_id = request.query.get("transfer_id")
    if transfer_id is not None and not is_id(transfer_id, "tr"):
        raise Problem.http("parameter_invalid", "transfer_id is a transfer id (tr_...)")
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor, tuple[int, str]) if cursor else None
    query = CaseQuery(
        status=status, kind=kind, severity=severity, transfer_id=transfer_id, before=before,
        limit=limit + 1,
    )  # fmt: skip
    found = await service(request).discrepancies(query)
    now = request.app[CLOCK].now_us()
    return page_of(
        found, limit, lambda k: render_case(k, now), lambda k: (k.created_at, k.discrepancy_id)
    )


async def case_of(request: web.Request) -> Discrepancy:
    """The case the path's `{id}` names (404 `discrepancy_not_found` if none)."""
    discrepancy_id = request.match_info["id"]
    found = (
        await service(request).discrepancy(discrepancy_id) if is_id(discrepancy_id, "dc") else None
    )
    if found is None:
        raise Problem.of(Result.discrepancy_not_found, f"no discrepancy {discrepancy_id}")
    return found


async def get_discrepancy(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    case = await case_of(request)
    return json(render_case(case, request.app[CLOCK].now_us()))


async def _act(
    request: web.Request,
    decide: Callable[[Discrepancy], dc.DiscrepancyEvent | Result],
    status: Callable[[Discrepancy], int] = lambda _: 200,
) -> web.Response:
    case = await case_of(request)
    found = await service(request).act_on_case(case.discrepancy_id, decide)
    if isinstance(found, Result):
        raise Problem.of(found)
    return json(render_case(found, request.app[CLOCK].now_us()), status=status(found))


async def assign_discrepancy(request: web.Request) -> web.Response:
    """Take the case (INVESTIGATING): the owner is the caller, or the user the body names."""
    principal = await authorize(request, Permission.OPERATE)
    raw = await request.read()
    body = bodies.decode(raw, bodies.AssignBody) if raw.strip() else bodies.AssignBody()
    owner = body.owner or principal.user
    now = request.app[CLOCK].now_us()
    return await _act(request, lambda k: dc.assign(k, owner, principal.user, now))


async def note_discrepancy(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.NoteBody)
    now = request.app[CLOCK].now_us()
    return await _act(request, lambda k: dc.note(k, body.note, principal.user, now))


def _correction(lines: list[bodies.CorrectionLine]) -> ledger.Entries:
    entries: list[ledger.Entry] = []
    for n, line in enumerate(lines):
        asset = money.asset(line.currency)
        if asset is None:
            raise Problem.of(Result.currency_unknown, f"correction[{n}]: {line.currency}")
        if (line.debit is None) == (line.credit is None):
            raise Problem.of(
                Result.correction_invalid, f"correction[{n}]: exactly one of debit and credit"
            )
        amount = money.parse_amount(line.debit or line.credit or "", asset)
        if isinstance(amount, Result):
            raise Problem.of(amount, f"correction[{n}]")
        if amount == 0:
            raise Problem.of(Result.amount_must_be_positive, f"correction[{n}]")
        if ledger.account_kind(line.account) is None:
            raise Problem.of(Result.correction_invalid, f"correction[{n}]: unknown account")
        debit, credit = (amount, 0) if line.debit is not None else (0, amount)
        entries.append(dc.correction_entry(line.account, asset.code, debit, credit))
    return tuple(entries)


async def resolve_discrepancy(request: web.Request) -> web.Response:
    """Close the case (200), or, with correcting entries, propose the closing for a second
    operator (202: the case stays open with its proposal)."""
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.ResolveBody)
    if body.resolution not in RESOLUTIONS:
        raise Problem.http("field_invalid", f"resolution is one of {', '.join(RESOLUTIONS)}")
    resolution = dc.Resolution(body.resolution)
    entries = _correction(body.correction)
    problem = dc.correction_problem(resolution, entries)
    if problem is not None:
        raise Problem.of(Result.correction_invalid, problem)
    now = request.app[CLOCK].now_us()
    return await _act(
        request,
        lambda k: dc.resolve(k, resolution, body.notes, entries, principal.user, now),
        lambda k: 202 if k.proposal is not None else 200,
    )


async def approve_correction(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    raw = await request.read()
    if raw.strip():
        bodies.decode(raw, bodies.ReasonBody)
    now = request.app[CLOCK].now_us()
    return await _act(request, lambda k: dc.decide_proposal(k, True, "", principal.user, now))


async def reject_correction(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.ControlBody)
    now = request.app[CLOCK].now_us()
    return await _act(
        request, lambda k: dc.decide_proposal(k, False, body.reason, principal.user, now)
    )


def render_summary(
    counts: dict[str, int], summary: ReconciliationSummary, now: int
) -> dict[str, object]:
    found = render.reconciliation_summary(counts, now)
    found["open_discrepancies"] = (
        summary.cases_by_status[dc.Status.OPEN] + summary.cases_by_status[dc.Status.INVESTIGATING]
    )
    found["sources"] = [
        {
            "source": s.source,
            "matched": {
                "count": s.matched,
                "amounts": {c: _amount(n, c) for c, n in sorted(s.matched_amounts.items())},
            },
            "unmatched": {
                "count": s.unmatched,
                "amounts": {c: _amount(n, c) for c, n in sorted(s.unmatched_amounts.items())},
                "by_age": {b.value: s.unmatched_by_age.get(b.value, 0) for b in dc.Bucket},
            },
        }
        for s in summary.sources
    ]
    found["balances"] = [
        {
            "source": b.source,
            "holder": b.holder,
            "account": b.account,
            "currency": b.currency,
            "ledger": _amount(b.ledger, b.currency),
            "holder_reports": _amount(b.external, b.currency),
            "drift": _amount(b.drift, b.currency),
            "in_flight": {
                "low": _amount(b.in_flight_low, b.currency),
                "high": _amount(b.in_flight_high, b.currency),
            },
            "explained": b.in_flight_low <= b.drift <= b.in_flight_high,
            "read_at": rfc3339(b.read_at),
        }
        for b in summary.balances
    ]
    found["awaiting_by_age"] = summary.awaiting_by_age
    found["discrepancies"] = {
        "by_status": summary.cases_by_status,
        "by_type": summary.cases_by_type,
        "open_by_age": summary.open_cases_by_age,
        "open_by_severity": summary.open_cases_by_severity,
        "sla_breached": summary.sla_breached,
    }
    return found


async def summary(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    svc = service(request)
    now = request.app[CLOCK].now_us()
    counts = await svc.status_counts()
    return json(render_summary(counts, await svc.reconciliation_summary(now), now))
