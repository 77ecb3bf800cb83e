"""Rebalancing moves over the API (staff operators): one operator proposes moving stablecoin
between held accounts (a treasury wallet to a provider's prefunding; a provider's prefunding to a
treasury wallet or another provider), a second approves (it is carried out at once: paid on chain
by us, or withdrawn by the provider) or rejects. See engine/rebalance.py."""

from __future__ import annotations

from aiohttp import web

from adapters.http import bodies
from adapters.http.context import authorize, json, service
from adapters.http.problems import Problem
from adapters.http.render import JSON, amount
from engine import money
from engine import rebalance as rb
from engine.access import Permission
from engine.ids import is_id
from engine.results import Result
from engine.timefmt import rfc3339


def render(m: rb.Rebalance) -> JSON:
    return {
        "id": m.rebalance_id,
        "kind": m.kind.value,
        "from_account": m.from_account,
        "to_account": m.to_account,
        "currency": m.currency,
        "amount": amount(m.amount, m.currency),
        "chain": m.chain,
        "to_address": m.to_address,
        "reason": m.reason,
        "proposed_by": m.proposed_by,
        "proposed_at": rfc3339(m.proposed_at),
        "state": m.state.value,
        "decided_by": m.decided_by,
        "decided_at": rfc3339(m.decided_at) if m.decided_at is not None else None,
        "decision_reason": m.decision_reason,
        "transactions": [
            {
                "tx_hash": t.tx_hash,
                "nonce": t.nonce,
                "from_address": t.from_address,
                "max_fee_per_gas": str(t.max_fee_per_gas),
                "max_priority_fee_per_gas": str(t.max_priority_fee_per_gas),
            }
            for t in m.txs
        ],
        "mined": (
            None
            if m.mined is None
            else {
                "tx_hash": m.mined.tx_hash,
                "block_number": m.mined.block_number,
                "block_hash": m.mined.block_hash,
            }
        ),
        "confirmed_at": rfc3339(m.confirmed_at) if m.confirmed_at is not None else None,
        "failure": m.failure,
        "withdrawal_id": m.withdrawal_id,
        "withdrawal_tx": m.withdrawal_tx,
    }


def _answer(found: rb.Rebalance | Result, status: int = 200) -> web.Response:
    if isinstance(found, Result):
        raise Problem.of(found)
    return json(render(found), status=status)


async def propose_rebalance(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.RebalanceBody)
    asset = money.asset(body.currency)
    if asset is None or asset.kind is not money.AssetKind.STABLECOIN:
        raise Problem.of(Result.currency_unknown, "a rebalancing move is in a stablecoin")
    minor = money.parse_amount(body.amount, asset)
    if isinstance(minor, Result):
        raise Problem.of(minor)
    found = await service(request).propose_rebalance(
        from_account=body.from_account, to_account=body.to_account, currency=asset.code,
        amount=minor, reason=body.reason, by=principal.user,
    )  # fmt: skip
    return _answer(found, 201)


async def _found(request: web.Request) -> rb.Rebalance:
    rebalance_id = request.match_info["id"]
    found = await service(request).rebalance(rebalance_id) if is_id(rebalance_id, "rb") else None
    if found is None:
        raise Problem.of(Result.rebalance_not_found, f"no rebalancing move {rebalance_id}")
    return found


async def get_rebalance(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    return _answer(await _found(request))


async def list_rebalances(request: web.Request) -> web.Response:
    await authorize(request, Permission.OPERATE)
    found = await service(request).rebalances()
    return json({"data": [render(m) for m in found], "next_cursor": None, "has_more": False})


async def approve_rebalance(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    move = await _found(request)
    raw = await request.read()
    reason = bodies.decode(raw, bodies.ReasonBody).reason if raw.strip() else ""
    decided = await service(request).decide_rebalance(
        move.rebalance_id, principal.user, True, reason
    )
    return _answer(decided)


async def reject_rebalance(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.OPERATE)
    move = await _found(request)
    body = bodies.decode(await request.read(), bodies.ControlBody)
    decided = await service(request).decide_rebalance(
        move.rebalance_id, principal.user, False, body.reason
    )
    return _answer(decided)
