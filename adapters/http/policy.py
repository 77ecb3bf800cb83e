"""The policy rule set over the API: read it (any version), bring a new one into force, and ask
which rule a hypothetical transfer would match (a dry run, nothing stored)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from adapters.http import bodies, render
from adapters.http.context import authorize, json, service
from adapters.http.problems import Problem
from engine import commands as c
from engine import events as ev
from engine.access import Permission
from engine.hashing import request_hash
from engine.ledger import is_name
from engine.results import Result
from engine.timefmt import rfc3339
from engine.transfer import check_create

# A dry run is checked with the create's own ladder; these stand in for what only a real create
# has (an id, an idempotency key).
_DRY_RUN_ID = "tr_00000000000000000000000000"


def rule_set(loaded: ev.RuleSetLoaded) -> dict[str, object]:
    return {
        "version": loaded.version,
        "digest": loaded.digest,
        "loaded_at": rfc3339(loaded.at),
        "loaded_by": loaded.by,
        "reason": loaded.reason,
        "document": msgspec.json.decode(loaded.document),
    }


async def get_policy(request: web.Request) -> web.Response:
    """The rule set in force, or `?version=N`."""
    await authorize(request, Permission.POLICY)
    svc = service(request)
    text = request.query.get("version")
    if text is None:
        return json(rule_set(svc.rules_in_force()))
    if not text.isdigit() or len(text) > 9:
        raise Problem.http("parameter_invalid", "version is a positive integer")
    found = svc.rules_version(int(text))
    if found is None:
        raise Problem.http("not_found", f"no rule set version {text}")
    return json(rule_set(found))


async def load_policy(request: web.Request) -> web.Response:
    """Bring a rule set into force as the next version: checked whole first; any problem and
    nothing changes (422 `policy_invalid`, every problem listed)."""
    principal = await authorize(request, Permission.OPERATE)
    body = bodies.decode(await request.read(), bodies.PolicyBody)
    if not body.reason.strip():
        raise Problem.http("field_invalid", "reason: say why the rules change")
    document = msgspec.json.encode(body.rule_set)
    loaded = await service(request).load_rules(document, principal.user, body.reason)
    if isinstance(loaded, list):
        raise Problem.http("policy_invalid", "; ".join(loaded))
    return json(rule_set(service(request).rules_in_force()))


async def dry_run(request: web.Request) -> web.Response:
    """Which rule a transfer with these terms would match now, and why the rules before it did
    not; the rolling limits it would have to fit. Nothing is stored."""
    principal = await authorize(request, Permission.POLICY)
    body = bodies.decode(await request.read(), bodies.DryRunBody)
    if not is_name(body.client_id):
        raise Problem.of(Result.client_id_invalid)
    command = c.CreateTransfer(
        transfer_id=_DRY_RUN_ID,
        client_id=body.client_id,
        initiator=body.initiator or principal.user,
        idempotency_key="dry-run",
        request_hash=request_hash("dry-run"),
        source_currency=body.source_currency,
        target_currency=body.target_currency,
        amount=body.amount,
        destination=bodies.destination(body.destination),
    )
    checked = check_create(command)
    if checked is not Result.ok:
        raise Problem.of(checked)
    explained = await service(request).explain_policy(command)
    return json(
        {
            "decision": render.decision(explained.decision),
            "passed": [{"rule_id": r, "reason": why} for r, why in explained.passed],
        }
    )
