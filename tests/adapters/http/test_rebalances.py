"""Rebalancing moves through the API (operators), against the simulated chain and off-ramps:

- one operator proposes moving USDC from the treasury wallet to a provider's prefunding, the
  destination taken from the address book; the proposer cannot approve it (even with another
  key), a second operator does; the payment is mined and confirmed, the wallet and the provider
  move by exactly the amount in the ledger, the move lists with its transaction and block, and
  it cannot be decided again;
- a move out of a provider's prefunding back to the treasury wallet is a withdrawal: approved by
  a second operator, asked of the provider, sent by it, and booked once confirmed;
- what cannot be carried out is refused by name and stores nothing: a move from the wallet to
  itself, an account we do not hold, a fiat currency, a malformed or zero amount; an approval
  the wallet cannot cover is refused; a rejection needs a reason and then pays nothing.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from engine.access import Role
from tests.adapters.http.conftest import Api
from tests.adapters.http.test_api import call, route

pytestmark = pytest.mark.anyio

PROPOSE = route("POST", "/v1/ops/rebalances")


async def treasury_account(api: Api) -> str:
    status, view = await call(
        api,
        route("GET", "/v1/ops/liquidity"),
        "/v1/ops/liquidity",
        api.auth("staff", Role.OPERATOR),
    )
    assert status == 200
    (account,) = [s["account"] for s in view["data"] if s["account"].startswith("treasury:")]
    return str(account)


async def held(api: Api) -> dict[str, int]:
    return {account: b for account, _, b in await api.node.store.held_balances()}


async def propose(api: Api, **changes: str) -> tuple[int, Any]:
    body = {
        "from_account": await treasury_account(api), "to_account": "provider:bitso-sim",
        "currency": "USDC", "amount": "1000.00", "reason": "bitso-sim below its floor",
    }  # fmt: skip
    body.update(changes)
    return await call(api, PROPOSE, "/v1/ops/rebalances", api.auth("staff", Role.OPERATOR), body)


async def decide(api: Api, move_id: str, verdict: str, key: str, body: Any) -> tuple[int, Any]:
    path = f"/v1/ops/rebalances/{move_id}/{verdict}"
    headers = {"Authorization": f"Bearer {key}"}
    return await call(
        api, route("POST", f"/v1/ops/rebalances/{{id}}/{verdict}"), path, headers, body
    )


async def get(api: Api, move_id: str) -> tuple[int, Any]:
    path = f"/v1/ops/rebalances/{move_id}"
    return await call(
        api, route("GET", "/v1/ops/rebalances/{id}"), path, api.auth("staff", Role.OPERATOR)
    )


async def test_a_move_approved_by_a_second_operator_is_paid_and_booked(api: Api) -> None:
    before = await held(api)
    wallet = await treasury_account(api)
    status, move = await propose(api)
    assert status == 201, move
    assert (move["state"], move["proposed_by"], move["amount"]) == (
        "proposed",
        "operator-staff",
        "1000.000000",
    )
    assert move["to_address"] == api.node.world.rails.offramp.addresses["bitso-sim"]
    again = await api.add_key(None, Role.OPERATOR, "operator-staff")
    status, problem = await decide(api, move["id"], "approve", again, {})
    assert (status, problem["code"]) == (403, "maker_cannot_approve")
    second = await api.add_key(None, Role.OPERATOR, "second-operator")
    status, approved = await decide(api, move["id"], "approve", second, {"reason": "ok"})
    assert status == 200, approved
    assert (approved["state"], approved["decided_by"]) == ("approved", "second-operator")

    with anyio.fail_after(60):
        while True:
            status, seen = await get(api, move["id"])
            assert status == 200
            if seen["state"] == "confirmed":
                break
            await anyio.sleep(0.05)
    (tx,) = seen["transactions"]
    assert seen["mined"]["tx_hash"] == tx["tx_hash"] and seen["confirmed_at"] is not None
    after = await held(api)
    assert after["provider:bitso-sim"] - before["provider:bitso-sim"] == 1_000_000_000
    assert before[wallet] - after[wallet] == 1_000_000_000
    status, listed = await call(
        api,
        route("GET", "/v1/ops/rebalances"),
        "/v1/ops/rebalances",
        api.auth("staff", Role.OPERATOR),
    )
    assert status == 200 and [m["id"] for m in listed["data"]] == [move["id"]]
    status, problem = await decide(api, move["id"], "approve", second, {})
    assert (status, problem["code"]) == (409, "rebalance_not_pending")
    events = [r.event_type for r in await api.node.store.stream(move["id"])]
    assert events == [
        "RebalanceProposed", "RebalanceDecided", "RebalanceSubmitted", "RebalanceConfirmed"
    ]  # fmt: skip


async def test_what_cannot_be_paid_is_refused_and_stores_nothing(api: Api) -> None:
    wallet = await treasury_account(api)
    refused = {
        "rebalance_route_unsupported": {"to_account": wallet},
        "rebalance_account_unknown": {"from_account": "treasury:ethereum:0x" + "11" * 20},
        "currency_unknown": {"currency": "USD"},
        "amount_malformed": {"amount": "1,000"},
        "amount_must_be_positive": {"amount": "0"},
        "command_malformed": {"reason": ""},
    }
    for code, changes in refused.items():
        status, problem = await propose(api, **changes)
        assert (status, problem["code"]) == (422, code), changes
    assert await api.node.store.rebalance_ids(10) == []

    status, move = await propose(api, amount="1000000001.00")  # the wallet holds 1e9
    assert status == 201, move
    second = await api.add_key(None, Role.OPERATOR, "second-operator")
    status, problem = await decide(api, move["id"], "approve", second, {})
    assert (status, problem["code"]) == (422, "insufficient_funds")
    status, problem = await decide(api, move["id"], "reject", second, {"reason": " "})
    assert status == 422, problem
    status, rejected = await decide(api, move["id"], "reject", second, {"reason": "too much"})
    assert (status, rejected["state"], rejected["transactions"]) == (200, "rejected", [])
    status, problem = await get(api, "rb_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C")
    assert (status, problem["code"]) == (404, "rebalance_not_found")
    assert wallet in await held(api)


async def test_a_withdrawal_from_a_provider_comes_back_to_the_wallet(api: Api) -> None:
    before = await held(api)
    wallet = await treasury_account(api)
    status, move = await propose(
        api, from_account="provider:rampa-sim", to_account=wallet, amount="2000.00"
    )
    assert status == 201, move
    assert (move["kind"], move["to_address"]) == ("withdrawal", wallet.split(":")[2])
    second = await api.add_key(None, Role.OPERATOR, "second-operator")
    status, approved = await decide(api, move["id"], "approve", second, {})
    assert status == 200, approved
    with anyio.fail_after(60):
        while True:
            status, seen = await get(api, move["id"])
            if seen["state"] == "confirmed":
                break
            await anyio.sleep(0.05)
    assert seen["withdrawal_id"] and seen["mined"]["tx_hash"] == seen["withdrawal_tx"]
    assert seen["transactions"] == [], "not ours: the provider sent it"
    after = await held(api)
    assert before["provider:rampa-sim"] - after["provider:rampa-sim"] == 2_000_000_000
    assert after[wallet] - before[wallet] == 2_000_000_000
    events = [r.event_type for r in await api.node.store.stream(move["id"])]
    assert events == [
        "RebalanceProposed", "RebalanceDecided", "RebalanceRequested", "RebalanceSent",
        "RebalanceConfirmed",
    ]  # fmt: skip
