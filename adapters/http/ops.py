"""Operations (staff keys) and the simulated rails' controls (API.md "Operations", "Inbound")."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import CONFIG, authorize, json, page_limit, service
from adapters.http.problems import Problem
from engine import money
from engine.access import Permission
from engine.ids import is_id
from engine.ledger import is_name
from engine.results import Result
from engine.states import Status


async def stuck_transfers(request: web.Request) -> web.Response:
    """Transfers past their status's time-in-state threshold (`stuck=true`, the default)."""
    await authorize(request, Permission.OPERATE)
    status = request.query.get("status")
    if status is not None and status not in Status.__members__:
        raise Problem.http("parameter_invalid", f"status is one of {', '.join(Status)}")
    if request.query.get("stuck", "true") != "true":
        raise Problem.http("parameter_invalid", "only stuck=true is served here")
    found = await service(request).stuck_transfers(status, page_limit(request))
    return json({"data": [render.transfer(s) for s in found], "has_more": False})


async def retry_transfer(request: web.Request) -> web.Response:
    """Re-drive a transfer's pending effects (what a restart would do for it)."""
    await authorize(request, Permission.OPERATE)
    transfer_id = request.match_info["id"]
    svc = service(request)
    state = await svc.transfer(transfer_id) if is_id(transfer_id, "tr") else None
    if state is None:
        raise Problem.http("not_found", f"no transfer {transfer_id}")
    if not await svc.redrive(transfer_id):
        raise Problem.of(Result.transfer_busy)
    return json(render.transfer(state), status=202)


async def sim_deposit(request: web.Request) -> web.Response:
    """A bank credit from the simulated bank, booked by the bank first and then reported, as a
    real one is; the client's balance follows once the engine journals it."""
    await authorize(request, Permission.OPERATE)
    if not request.app[CONFIG].simulated:
        raise Problem.http("rails_not_simulated")
    body = bodies.decode(await request.read(), bodies.DepositBody)
    if not is_name(body.client_id):
        raise Problem.of(Result.client_id_invalid)
    asset = money.asset(body.currency)
    if asset is None or asset.kind is not money.AssetKind.FIAT:
        raise Problem.of(Result.currency_unknown, "a deposit is in a fiat currency")
    amount = money.parse_amount(body.amount, asset)
    if isinstance(amount, Result):
        raise Problem.of(amount)
    if amount == 0:
        raise Problem.of(Result.amount_must_be_positive)
    result = await service(request).sim_deposit(body.client_id, asset.code, amount)
    if result is not Result.ok:
        raise Problem.of(result)
    return json(
        {"client_id": body.client_id, "currency": asset.code, "amount": body.amount},
        status=202,
    )


async def sim_advance(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    if not request.app[CONFIG].simulated:
        raise Problem.http("rails_not_simulated")
    bodies.decode(await request.read(), bodies.AdvanceBody)
    raise Problem.http("clock_not_virtual")
