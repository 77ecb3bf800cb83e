"""The operator console: server-rendered pages at /console for treasury operators, approvers,
auditors and client users, signed in with their API key and held by a session cookie."""

from __future__ import annotations

from aiohttp import web

from adapters.console import operations, runbooks, transfers
from adapters.console.web import (
    CONSOLE,
    Viewer,
    html,
    page,
    sign_in,
    sign_in_form,
    sign_out,
    static,
)
from adapters.http.problems import Problem
from engine.access import Permission


@page(Permission.READ)
async def runbook(request: web.Request, viewer: Viewer) -> web.Response:
    name = request.match_info["name"]
    found = runbooks.load(name)
    if found is None:
        raise Problem.http("not_found", f"no runbook {name}")
    title, body = found
    return html(request, "runbook.html", viewer=viewer, title=title, body=body, name=name)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(CONSOLE, transfers.overview)
    r.add_get(f"{CONSOLE}/sign-in", sign_in_form)
    r.add_post(f"{CONSOLE}/sign-in", sign_in)
    r.add_post(f"{CONSOLE}/sign-out", sign_out)
    r.add_get(f"{CONSOLE}/static/{{name}}", static)
    r.add_get(f"{CONSOLE}/transfers", transfers.transfers)
    r.add_get(f"{CONSOLE}/transfers/new", transfers.new_transfer)
    r.add_get(f"{CONSOLE}/transfers/{{id}}", transfers.transfer)
    r.add_get(f"{CONSOLE}/approvals", transfers.approvals)
    r.add_get(f"{CONSOLE}/cases", operations.cases)
    r.add_get(f"{CONSOLE}/cases/{{id}}", operations.case)
    r.add_get(f"{CONSOLE}/controls", operations.controls_page)
    r.add_get(f"{CONSOLE}/treasury", operations.treasury)
    r.add_get(f"{CONSOLE}/balances", operations.balances)
    r.add_get(f"{CONSOLE}/webhooks", operations.webhooks)
    r.add_get(f"{CONSOLE}/policy", operations.policy)
    r.add_get(f"{CONSOLE}/audit", operations.audit)
    r.add_get(f"{CONSOLE}/runbooks/{{name}}", runbook)
