"""The sanctions list over the API: what the list in force holds, and a reload of the configured
files (operators), which re-screens every transfer not yet on chain."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import CLOCK, authorize, json, service
from adapters.http.problems import Problem
from engine.access import Permission
from engine.service import ReloadRefused

REASON_LENGTH_MAX = 400


async def get_sanctions(request: web.Request) -> web.Response:
    """The list in force: where it came from, its date and whether it is past its age, and what
    it holds (entries, names, aliases, wallet addresses per asset, its files and digest)."""
    await authorize(request, Permission.POLICY)
    found = service(request).sanctions_in_force()
    return json(render.sanctions_list(found, request.app[CLOCK].now_us()))


async def reload_sanctions(request: web.Request) -> web.Response:
    """Read the configured files again; a list that cannot be read changes nothing (422
    `sanctions_list_invalid`, naming why). The answer has what the new list holds and what the
    re-screening of the transfers not yet on chain found."""
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.ControlBody)
    reason = body.reason.strip()
    if not reason or len(reason) > REASON_LENGTH_MAX or not reason.isprintable():
        raise Problem.http("field_invalid", f"reason: 1 to {REASON_LENGTH_MAX} characters")
    outcome = await service(request).reload_sanctions(principal.user, reason)
    if isinstance(outcome, ReloadRefused):
        raise Problem.http(outcome.code, outcome.detail)
    in_force, rescreened = outcome
    view = render.sanctions_list(in_force, request.app[CLOCK].now_us())
    view["rescreened"] = {"screened": rescreened.screened, "failed": list(rescreened.failed)}
    return json(view)
