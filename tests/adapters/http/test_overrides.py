"""Admin overrides need a reason and a second operator: the requester cannot approve their own
(even with another key), a rejection needs a reason, an approved `fail_transfer` forces a stuck
pre-chain transfer to FAILED and writes its hold off back to the client, each step is journaled,
and a decided override cannot be decided again."""

from __future__ import annotations

import pytest

from engine.access import Role
from tests.adapters.http.conftest import Api
from tests.adapters.http.test_api import call, create, route

pytestmark = pytest.mark.anyio


async def test_a_second_operator_carries_out_an_override(api: Api) -> None:
    await api.fund("acme", "50000.00")
    # Awaiting approval: a transfer an operator may need to force out of CREATED.
    status, transfer = await create(api, amount="12000.00")
    assert status == 201 and transfer["status"] == "CREATED"
    first = api.auth("staff", Role.OPERATOR)
    status, requested = await call(
        api, route("POST", "/v1/ops/overrides"), "/v1/ops/overrides", first,
        {"kind": "fail_transfer", "transfer_id": transfer["id"], "reason": "ticket 88"},
    )  # fmt: skip
    assert status == 201, requested
    assert (requested["state"], requested["requested_by"]) == ("pending", "operator-staff")
    path = f"/v1/ops/overrides/{requested['id']}/approve"
    approve = route("POST", "/v1/ops/overrides/{id}/approve")
    # The same person with another key is still the requester.
    again = await api.add_key(None, Role.OPERATOR, "operator-staff")
    status, problem = await call(api, approve, path, {"Authorization": f"Bearer {again}"}, {})
    assert (status, problem["code"]) == (403, "maker_cannot_approve")
    second = await api.add_key(None, Role.OPERATOR, "second-operator")
    status, done = await call(api, approve, path, {"Authorization": f"Bearer {second}"}, {})
    assert status == 200, done
    assert (done["state"], done["decided_by"], done["outcome"]) == (
        "executed",
        "second-operator",
        "ok",
    )
    state = await api.node.transfer(transfer["id"])
    assert state is not None and state.status.value == "FAILED"
    assert state.failure_code == "operator_failed" and "ticket 88" in (state.failure_message or "")
    (usd,) = await api.node.balances("acme")
    assert (usd.available, usd.held) == (50_000_00, 0)
    status, problem = await call(api, approve, path, {"Authorization": f"Bearer {second}"}, {})
    assert (status, problem["code"]) == (409, "override_not_pending")
    events = [r.event_type for r in await api.node.store.stream(requested["id"])]
    assert events == ["OverrideRequested", "OverrideDecided", "OverrideExecuted"]


async def test_rejected_overrides_change_nothing(api: Api) -> None:
    await api.fund("acme", "50000.00")
    _, transfer = await create(api, amount="12000.00")
    ops = api.auth("staff", Role.OPERATOR)
    status, requested = await call(
        api, route("POST", "/v1/ops/overrides"), "/v1/ops/overrides", ops,
        {"kind": "fail_transfer", "transfer_id": transfer["id"], "reason": "r"},
    )  # fmt: skip
    reject = route("POST", "/v1/ops/overrides/{id}/reject")
    path = f"/v1/ops/overrides/{requested['id']}/reject"
    second = {"Authorization": f"Bearer {await api.add_key(None, Role.OPERATOR, 'other')}"}
    status, _ = await call(api, reject, path, second, {"reason": " "})
    assert status == 422
    status, rejected = await call(api, reject, path, second, {"reason": "not justified"})
    assert (status, rejected["state"], rejected["outcome"]) == (200, "rejected", None)
    state = await api.node.transfer(transfer["id"])
    assert state is not None and state.status.value == "CREATED"
    for body in (
        {"kind": "delete_everything", "transfer_id": transfer["id"], "reason": "x"},
        {"kind": "fail_transfer", "transfer_id": "tr_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C", "reason": "x"},
        {"kind": "fail_transfer", "transfer_id": transfer["id"], "reason": ""},
    ):
        status, _ = await call(api, route("POST", "/v1/ops/overrides"), "/v1/ops/overrides",
                               ops, body)  # fmt: skip
        assert status in (404, 422), body
    status, _ = await call(
        api, route("POST", "/v1/ops/overrides"), "/v1/ops/overrides",
        api.auth("acme", Role.ADMIN), {"kind": "fail_transfer", "transfer_id": transfer["id"],
                                        "reason": "x"},
    )  # fmt: skip
    assert status == 403
