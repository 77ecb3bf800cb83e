"""Operations (staff keys) and the simulated rails' controls (API.md "Operations", "Inbound")."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import (
    CLOCK,
    CONFIG,
    authorize,
    decode_cursor,
    instant_param,
    json,
    page_limit,
    page_of,
    service,
)
from adapters.http.problems import Problem
from engine import controls, money
from engine.access import Permission
from engine.ids import is_id
from engine.ledger import is_name
from engine.policy import CORRIDOR_IDS
from engine.results import Result
from engine.states import Status
from engine.timefmt import rfc3339


async def providers(request: web.Request) -> web.Response:
    """Every pricing provider: corridors, the operator's terms, its circuit breaker, its answers
    since start; and the breaker's settings and the quote deadline in force."""
    await authorize(request, Permission.OPERATE)
    return json(render.desk(service(request).providers()))


async def liquidity(request: web.Request) -> web.Response:
    """Every held balance (treasury wallets, providers' prefunding, bank accounts) against its
    floor and ceiling, the episode it is in, and the suggested rebalancing moves."""
    await authorize(request, Permission.OPERATE)
    return json(render.liquidity_view(await service(request).liquidity()))


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


# --- controls, audit and the trial balance ------------------------------------------------------
# Freezes and halts are journaled and enforced (System.control). Reconciliation cases and the
# summary live in adapters/http/discrepancies.py.


CONTROL_REASON_LENGTH_MAX = 400
_SWITCHES = {
    "freeze": (controls.Scope.CLIENT, True),
    "unfreeze": (controls.Scope.CLIENT, False),
    "halt": (controls.Scope.CORRIDOR, True),
    "resume": (controls.Scope.CORRIDOR, False),
}
_STATES = {
    (controls.Scope.CLIENT, True): "frozen",
    (controls.Scope.CORRIDOR, True): "halted",
    (controls.Scope.SYSTEM, True): "halted",
}


async def control(request: web.Request) -> web.Response:
    """Freeze or unfreeze a client, halt or resume a corridor or the whole system. Switching one
    on cancels the transfers it covers that are not yet on chain (holds released); the answer
    says how many. Switching to the state already in force changes nothing."""
    principal = await authorize(request, Permission.OPERATE)
    action = request.path.rsplit("/", 1)[-1]
    target = request.match_info.get("id")
    if target is None:
        scope, on = controls.Scope.SYSTEM, action == "halt"
        target = controls.SYSTEM_TARGET
    else:
        scope, on = _SWITCHES[action]
    if scope is controls.Scope.CLIENT and not is_name(target):
        raise Problem.of(Result.client_id_invalid)
    if scope is controls.Scope.CORRIDOR and target not in CORRIDOR_IDS:
        raise Problem.http("not_found", f"no corridor {target}: one of {', '.join(CORRIDOR_IDS)}")
    body = bodies.decode(await request.read(), bodies.ControlBody)
    reason = body.reason.strip()
    if not reason or len(reason) > CONTROL_REASON_LENGTH_MAX or not reason.isprintable():
        raise Problem.http("field_invalid", f"reason: 1 to {CONTROL_REASON_LENGTH_MAX} characters")
    change, cancelled = await service(request).control(scope, target, on, principal.user, reason)
    return json(
        {
            "scope": scope.value,
            "id": None if scope is controls.Scope.SYSTEM else target,
            "state": _STATES.get((scope, change.on), "active"),
            "reason": change.reason,
            "by": change.by,
            "at": rfc3339(change.at),
            "cancelled": cancelled,
        }
    )


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise Problem.http("parameter_invalid", f"{name} is one of {', '.join(allowed)}")
    return value


async def audit(request: web.Request) -> web.Response:
    """The audit log, newest first: every command that reached the API (accepted, refused or
    unauthorized), every admin action and the system's own control-plane changes. Filters: actor
    (an actor id: a user name, a provider), resource (an id), action, from and to (RFC 3339,
    from inclusive, to exclusive)."""
    await authorize(request, Permission.AUDIT)
    limit = page_limit(request)
    cursor = request.query.get("cursor")
    before: int | None = decode_cursor(cursor, tuple[int])[0] if cursor else None
    rows = await service(request).audit_page(
        actor=request.query.get("actor"),
        resource=request.query.get("resource"),
        action=request.query.get("action"),
        from_at=instant_param(request, "from"),
        to_at=instant_param(request, "to"),
        before_seq=before,
        limit=limit + 1,
    )
    return page_of(rows, limit, render.audit_row, lambda row: (row.seq,))


async def trial_balance(request: web.Request) -> web.Response:
    """Every ledger account's debits and credits, and per currency whether they balance."""
    await authorize(request, Permission.OPERATE)
    rows = await service(request).trial_balance()
    return json(render.trial_balance(rows, request.app[CLOCK].now_us()))
