"""API keys over the API (create, list, revoke, rotate; who may grant what) and the staff
endpoints: the trial balance balances, the reconciliation summary counts what the store holds,
the audit trail filters and pages the journal, freezes and halts refuse new work with their codes
(clients, corridors, the whole system). Every response is checked against the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from engine.access import Role
from store import anchor
from tests.adapters.http.conftest import Api
from tests.adapters.http.test_api import call, create, route

pytestmark = pytest.mark.anyio


async def new_key(api: Api, grantor: tuple[str, Role], body: dict[str, str]) -> tuple[int, Any]:
    return await call(api, route("POST", "/v1/api-keys"), "/v1/api-keys", api.auth(*grantor), body)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def balances_status(api: Api, key: str) -> int:
    r = await api.http.get("/v1/balances", headers=bearer(key))
    return r.status


async def test_an_admin_creates_revokes_and_rotates_its_clients_keys(api: Api) -> None:
    status, made = await new_key(api, ("acme", Role.ADMIN), {"role": "viewer", "user": "vera"})
    assert status == 201 and made["key"].startswith("sk_test_") and made["client_id"] == "acme"
    assert await balances_status(api, made["key"]) == 200
    # The list never shows a key's text; a client admin sees its own client's keys only.
    status, page = await call(
        api, route("GET", "/v1/api-keys"), "/v1/api-keys", api.auth("acme", Role.ADMIN)
    )
    assert status == 200 and made["id"] in {k["id"] for k in page["data"]}
    assert all("key" not in k and k["client_id"] == "acme" for k in page["data"])
    # Rotation: a new key for the same user and role; the old one stops at its next request.
    status, rotated = await call(
        api,
        route("POST", "/v1/api-keys/{id}/rotate"),
        f"/v1/api-keys/{made['id']}/rotate",
        api.auth("acme", Role.ADMIN),
    )
    assert status == 201 and (rotated["role"], rotated["user"]) == ("viewer", "vera")
    assert await balances_status(api, made["key"]) == 401
    assert await balances_status(api, rotated["key"]) == 200
    status, again = await call(
        api,
        route("POST", "/v1/api-keys/{id}/rotate"),
        f"/v1/api-keys/{made['id']}/rotate",
        api.auth("acme", Role.ADMIN),
    )
    assert status == 409 and again["code"] == "key_revoked"
    # Revocation works at the next request.
    status, revoked = await call(
        api,
        route("DELETE", "/v1/api-keys/{id}"),
        f"/v1/api-keys/{rotated['id']}",
        api.auth("acme", Role.ADMIN),
    )
    assert status == 200 and revoked["revoked_at"] is not None
    assert await balances_status(api, rotated["key"]) == 401


async def test_no_key_can_grant_more_than_it_holds(api: Api) -> None:
    status, body = await new_key(api, ("acme", Role.ADMIN), {"role": "operator", "user": "mallory"})
    assert status == 403 and body["code"] == "forbidden"
    status, body = await new_key(
        api, ("acme", Role.ADMIN), {"role": "viewer", "user": "v", "client_id": "globex"}
    )
    assert status == 422 and body["code"] == "field_invalid"
    status, body = await new_key(api, ("staff", Role.OPERATOR), {"role": "viewer", "user": "v"})
    assert status == 422 and "client_id is required" in body["detail"]
    status, body = await new_key(api, ("acme", Role.ADMIN), {"role": "root", "user": "v"})
    assert status == 422 and body["code"] == "field_invalid"
    # An operator makes client keys for any client.
    status, made = await new_key(
        api, ("staff", Role.OPERATOR), {"role": "initiator", "user": "gina", "client_id": "globex"}
    )
    assert status == 201 and made["client_id"] == "globex"
    # Another client's key is not found; an initiator may not manage keys at all.
    status, body = await call(
        api,
        route("DELETE", "/v1/api-keys/{id}"),
        f"/v1/api-keys/{made['id']}",
        api.auth("acme", Role.ADMIN),
    )
    assert status == 404
    status, body = await new_key(api, ("acme", Role.INITIATOR), {"role": "viewer", "user": "v"})
    assert status == 403
    rows = await api.node.store.reader.fetchone(
        "SELECT count(*) FROM api_keys WHERE role = 'operator' AND user_name = 'mallory'"
    )
    assert rows is not None and rows[0] == 0


async def test_the_trial_balance_balances_and_the_summary_counts_transfers(api: Api) -> None:
    await api.fund("acme")
    for _ in range(3):
        status, _ = await create(api)
        assert status == 201
    ops = api.auth("staff", Role.OPERATOR)
    status, trial = await call(
        api, route("GET", "/v1/ops/ledger/trial-balance"), "/v1/ops/ledger/trial-balance", ops
    )
    assert status == 200 and trial["balanced"] is True
    usd = next(t for t in trial["totals"] if t["currency"] == "USD")
    assert usd["debits"] == usd["credits"] and usd["debits"] != "0.00"
    status, summary = await call(
        api,
        route("GET", "/v1/ops/reconciliation/summary"),
        "/v1/ops/reconciliation/summary",
        ops,
    )
    assert status == 200
    assert sum(summary["transfers_by_status"].values()) == 3
    assert summary["open_discrepancies"] == 0


async def test_every_command_is_audited_accepted_refused_or_unauthorized(api: Api) -> None:
    await api.fund("acme")
    status, transfer = await create(api)
    assert status == 201
    post = route("POST", "/v1/transfers")
    # Refused: unauthorized (a key that does not exist), forbidden (a viewer), malformed.
    bogus = "sk_test_01M8M9WSH3ARFAEA64VQ0F3AH2_" + "0" * 64
    status, _ = await call(api, post, "/v1/transfers", {"Authorization": f"Bearer {bogus}"}, {})
    assert status == 401
    status, _ = await call(
        api, post, "/v1/transfers",
        {**api.auth("acme", Role.VIEWER), "Idempotency-Key": "k-viewer"}, {},
    )  # fmt: skip
    assert status == 403
    status, _ = await call(
        api, post, "/v1/transfers",
        {**api.auth("acme", Role.INITIATOR), "Idempotency-Key": "k-bad"}, {"colour": "red"},
    )  # fmt: skip
    assert status == 422
    auditor = api.auth("staff", Role.AUDITOR)
    audit = route("GET", "/v1/ops/audit")
    status, page = await call(api, audit, f"/v1/ops/audit?resource={transfer['id']}", auditor)
    assert status == 200
    (created,) = page["data"]
    assert (created["actor_id"], created["actor_type"], created["action_type"]) == (
        "initiator-acme",
        "user",
        "create_transfer",
    )
    assert (created["resource_type"], created["outcome"]) == ("transfers", "ok")
    assert created["request_id"] and created["diff_summary"]["status"] == "FUNDS_LOCKED"
    assert created["metadata"]["policy_rule_id"] == "allow-up-to-10k"
    assert created["metadata"]["client_id"] == "acme"
    status, page = await call(api, audit, "/v1/ops/audit?action=create_transfer", auditor)
    outcomes = [(e["actor_id"], e["actor_type"], e["outcome"]) for e in page["data"]]
    assert outcomes == [
        ("initiator-acme", "user", "unknown_field"),
        ("viewer-acme", "user", "forbidden"),
        ("anonymous", "anonymous", "unauthorized"),
        ("initiator-acme", "user", "ok"),
    ]
    (anonymous,) = [e for e in page["data"] if e["actor_id"] == "anonymous"]
    assert anonymous["metadata"]["presented_key_id"] == "ak_01M8M9WSH3ARFAEA64VQ0F3AH2"
    status, page = await call(api, audit, "/v1/ops/audit?actor=operator-staff", auditor)
    assert [(e["action_type"], e["actor_type"]) for e in page["data"]] == [("sim_deposit", "admin")]
    # Paging one row at a time walks the whole log newest first, each row once.
    seen: list[int] = []
    cursor = ""
    while True:
        status, page = await call(api, audit, f"/v1/ops/audit?limit=1{cursor}", auditor)
        assert status == 200
        seen += [e["seq"] for e in page["data"]]
        if not page["has_more"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    # Reads are not commands: the walk itself added nothing.
    assert seen == list(range(seen[0], 0, -1))
    status, body = await call(api, audit, "/v1/ops/audit?from=yesterday", auditor)
    assert status == 422 and body["code"] == "parameter_invalid"
    # An operator runs the ops endpoints but reads no audit log.
    status, _ = await call(api, audit, "/v1/ops/audit", api.auth("staff", Role.OPERATOR))
    assert status == 403
    rows, problem = await anchor.verify(api.node.store.reader, api.node.store.path.parent)
    assert problem is None and rows == seen[0]


async def test_freezes_and_halts_refuse_new_work_with_their_code(api: Api) -> None:
    ops = api.auth("staff", Role.OPERATOR)
    await api.fund("acme")
    await api.fund("globex")
    freeze = route("POST", "/v1/ops/clients/{id}/freeze")
    status, body = await call(
        api, freeze, "/v1/ops/clients/acme/freeze", ops, {"reason": "suspicious activity"}
    )
    assert status == 200, body
    assert (body["scope"], body["id"], body["state"], body["by"]) == (
        "client",
        "acme",
        "frozen",
        "operator-staff",
    )
    status, problem = await create(api, "acme")
    assert (status, problem["code"]) == (422, "client_frozen"), problem
    dry = {"client_id": "acme", "source_currency": "USD", "target_currency": "USDC",
           "amount": "1.00", "destination": {"kind": "wallet", "chain": "ethereum",
                                             "address": "0x" + "12" * 20}}  # fmt: skip
    status, explained = await call(
        api, route("POST", "/v1/ops/policy/dry-run"), "/v1/ops/policy/dry-run", ops, dry
    )
    assert explained["decision"]["rule_id"] == "control_client_freeze"
    assert problem["transfer_id"].startswith("tr_")
    assert (await create(api, "globex"))[0] == 201
    status, body = await call(
        api, route("POST", "/v1/ops/clients/{id}/unfreeze"), "/v1/ops/clients/acme/unfreeze",
        ops, {"reason": "cleared"},
    )  # fmt: skip
    assert (status, body["state"]) == (200, "active")
    assert (await create(api, "acme"))[0] == 201
    halt = route("POST", "/v1/ops/corridors/{id}/halt")
    status, body = await call(api, halt, "/v1/ops/corridors/USD-USDC/halt", ops, {"reason": "x"})
    assert (status, body["state"]) == (200, "halted")
    assert (await create(api, "globex"))[1]["code"] == "corridor_halted"
    status, _ = await call(api, halt, "/v1/ops/corridors/USD-BTC/halt", ops, {"reason": "x"})
    assert status == 404
    status, body = await call(
        api, route("POST", "/v1/ops/halt"), "/v1/ops/halt", ops, {"reason": "incident 7"}
    )
    assert (status, body["scope"], body["id"], body["state"]) == (200, "system", None, "halted")
    assert (await create(api, "globex"))[1]["code"] == "system_halted"
    status, body = await call(
        api, route("POST", "/v1/ops/halt"), "/v1/ops/halt", ops, {"reason": " "}
    )
    assert status == 422
    before = await api.journal_rows()
    status, body = await call(
        api, freeze, "/v1/ops/clients/acme/freeze", api.auth("acme", Role.ADMIN), {"reason": "x"}
    )
    assert status == 403 and await api.journal_rows() == before
    status, page = await call(
        api, route("GET", "/v1/ops/discrepancies"), "/v1/ops/discrepancies?status=open", ops
    )
    assert status == 200 and page["data"] == []
    status, body = await call(
        api, route("GET", "/v1/ops/discrepancies"), "/v1/ops/discrepancies?status=weird", ops
    )
    assert status == 422
    assert await api.journal_rows() == before
