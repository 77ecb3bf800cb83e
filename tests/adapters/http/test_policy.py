"""Policy through the running service: the shipped rules at work on creates (approval above
10,000.00, refusal above 250,000.00, kept FAILED for audit and naming the rule), rolling limits
that concurrent creates cannot squeeze under, rule sets as journaled versions an operator
changes and everyone can read back, a dry run that stores nothing, and every corridor the
engine's validation allows checked against the providers that serve it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from engine import money, policy
from engine.access import Role
from engine.destinations import BANK_COUNTRIES
from engine.transfer import check_corridor
from sim.providers import CORRIDORS
from tests.adapters.http.conftest import CLABE, WALLET, Api, wallet_body
from tests.adapters.http.test_api import call, route

pytestmark = pytest.mark.anyio


async def create(api: Api, body: dict[str, Any], client: str = "acme") -> tuple[int, Any]:
    return await call(
        api,
        route("POST", "/v1/transfers"),
        "/v1/transfers",
        {**api.auth(client, Role.INITIATOR), "Idempotency-Key": str(uuid.uuid4())},
        body,
    )


async def load_rules(api: Api, rule_set: dict[str, Any], reason: str = "test") -> tuple[int, Any]:
    return await call(
        api,
        route("POST", "/v1/ops/policy"),
        "/v1/ops/policy",
        api.auth("staff", Role.OPERATOR),
        {"reason": reason, "rule_set": rule_set},
    )


async def test_above_10k_a_second_person_approves(api: Api) -> None:
    await api.fund("acme", "50000.00")
    status, transfer = await create(api, wallet_body("12000.00"))
    assert status == 201, transfer
    assert transfer["status"] == "CREATED"
    assert {k: v for k, v in transfer["approval"].items() if k != "terms_hash"} == {
        "required": True,
        "state": "pending",
        "approved_by": [],
    }
    assert transfer["policy"] == {
        "rule_id": "approve-over-10k",
        "version": 1,
        "action": "approve",
        "approvals_required": 1,
    }
    # The same person with an approver key is still the maker.
    same_person = await api.add_key("acme", Role.APPROVER, "initiator-acme")
    path = f"/v1/transfers/{transfer['id']}/approve"
    status, problem = await call(
        api, route("POST", "/v1/transfers/{id}/approve"), path,
        {"Authorization": f"Bearer {same_person}"}, {},
    )  # fmt: skip
    assert (status, problem["code"]) == (403, "maker_cannot_approve")
    # An approval names the terms its approver saw: other terms are refused.
    approver = api.auth("acme", Role.APPROVER)
    stale = {"terms_hash": "0" * 64}
    status, problem = await call(
        api, route("POST", "/v1/transfers/{id}/approve"), path, approver, stale
    )
    assert (status, problem["code"]) == (409, "approval_terms_mismatch")
    seen = {"terms_hash": transfer["approval"]["terms_hash"]}
    status, approved = await call(
        api, route("POST", "/v1/transfers/{id}/approve"), path, approver, seen
    )
    assert status == 200, approved
    assert approved["approval"]["state"] == "approved"
    assert approved["approval"]["approved_by"] == ["approver-acme"]
    state = await api.node.system.supervisors.watch.until(
        transfer["id"],
        api.node.transfer,
        lambda s: s.locked_at is not None,
        10,
    )
    assert state is not None and state.policy is not None
    # The events say who decided what: the rule on creation, the approver after.
    status, history = await call(
        api, route("GET", "/v1/transfers/{id}/events"), f"/v1/transfers/{transfer['id']}/events",
        api.auth("acme", Role.VIEWER),
    )  # fmt: skip
    created = history["data"][0]
    assert created["data"]["policy"]["rule_id"] == "approve-over-10k"
    assert history["data"][1]["type"] == "ApprovalGranted"


async def test_above_250k_is_refused_and_kept_failed(api: Api) -> None:
    await api.fund("acme", "300000.00")
    status, problem = await create(api, wallet_body("250000.01"))
    assert (status, problem["code"]) == (422, "policy_blocked"), problem
    status, transfer = await call(
        api, route("GET", "/v1/transfers/{id}"), f"/v1/transfers/{problem['transfer_id']}",
        api.auth("acme", Role.VIEWER),
    )  # fmt: skip
    assert transfer["status"] == "FAILED"
    assert transfer["policy"]["rule_id"] == "block-over-250k"
    assert "block-over-250k" in transfer["failure"]["message"]
    balances = await api.node.balances("acme")
    assert [(b.currency, b.available, b.held) for b in balances] == [("USD", 300_000_00, 0)]


LIMITED = {
    "usd_rates": {"EUR": "1.08", "EURC": "1.08", "MXN": "0.058"},
    "rules": [{"id": "allow", "action": "allow"}],
    "limits": [
        {"id": "tiny-daily", "scope": "client", "window_hours": 24, "volume_max": "100.00"},
        {"id": "two-per-beneficiary", "scope": "beneficiary", "window_hours": 1, "count_max": 2,
         "clients": ["globex"]},
    ],
}  # fmt: skip


async def test_concurrent_creates_cannot_squeeze_under_a_rolling_limit(api: Api) -> None:
    status, loaded = await load_rules(api, LIMITED)
    assert status == 200 and loaded["version"] == 2, loaded
    await api.fund("acme", "1000.00")
    answers = await asyncio.gather(*(create(api, wallet_body("30.00")) for _ in range(10)))
    statuses = sorted(s for s, _ in answers)
    assert statuses == [201] * 3 + [422] * 7, answers
    refused = [body for s, body in answers if s == 422]
    assert {p["code"] for p in refused} == {"limit_exceeded"}
    assert all("tiny-daily" in p["detail"] for p in refused), refused
    # 90.00 held (or already paid out); nothing else left the available balance.
    (usd,) = await api.node.balances("acme")
    assert usd.available == 910_00


async def test_a_beneficiary_count_limit_applies_to_its_clients_only(api: Api) -> None:
    assert (await load_rules(api, LIMITED))[0] == 200
    await api.fund("globex", "1000.00")
    codes = [(await create(api, wallet_body("1.00"), client="globex"))[0] for _ in range(3)]
    assert codes == [201, 201, 422]
    other = {**wallet_body("1.00"), "destination": {**wallet_body()["destination"],
                                                     "address": "0x" + "12" * 20}}  # fmt: skip
    assert (await create(api, other, client="globex"))[0] == 201


async def test_rule_sets_are_versions_an_operator_loads_and_anyone_staff_reads(api: Api) -> None:
    read = route("GET", "/v1/ops/policy")
    status, first = await call(api, read, "/v1/ops/policy", api.auth("staff", Role.AUDITOR))
    assert status == 200 and first["version"] == 1 and first["loaded_by"] == "system"
    assert first["document"]["rules"][0]["id"] == "block-over-250k"
    status, _ = await call(api, read, "/v1/ops/policy", api.auth("acme", Role.ADMIN))
    assert status == 403
    # A document with problems changes nothing and names them all.
    bad = {**LIMITED, "rules": [{"id": "x", "action": "approve", "approvers": 0}]}
    status, problem = await load_rules(api, bad)
    assert (status, problem["code"]) == (422, "policy_invalid")
    assert "approvers is 1 to 5" in problem["detail"]
    status, unknown = await load_rules(api, {**LIMITED, "colour": "red"})
    assert (status, unknown["code"]) == (422, "unknown_field")
    status, second = await load_rules(api, LIMITED, reason="tighten for the audit")
    assert status == 200
    assert (second["version"], second["loaded_by"], second["reason"]) == (
        2,
        "operator-staff",
        "tighten for the audit",
    )
    # The same rules again are not a new version.
    assert (await load_rules(api, LIMITED))[1]["version"] == 2
    status, again = await call(
        api, read, "/v1/ops/policy?version=1", api.auth("staff", Role.OPERATOR)
    )
    assert again["digest"] == first["digest"]
    status, _ = await call(api, read, "/v1/ops/policy?version=9", api.auth("staff", Role.OPERATOR))
    assert status == 404
    await api.fund("acme", "100.00")
    status, transfer = await create(api, wallet_body("10.00"))
    assert transfer["policy"]["version"] == 2
    # The versions are journaled: a restart finds version 2 in force.
    rows = await api.node.store.stream("policy")
    assert [r.event.version for r in rows] == [1, 2]  # type: ignore[union-attr]


async def test_a_dry_run_explains_and_stores_nothing(api: Api) -> None:
    before = await api.journal_rows()
    body = {
        "client_id": "acme",
        "source_currency": "USD",
        "target_currency": "USDC",
        "amount": "12000.00",
        "destination": {"kind": "wallet", "chain": "ethereum", "address": WALLET},
    }
    status, explained = await call(
        api, route("POST", "/v1/ops/policy/dry-run"), "/v1/ops/policy/dry-run",
        api.auth("staff", Role.OPERATOR), body,
    )  # fmt: skip
    assert status == 200, explained
    decision = explained["decision"]
    assert (decision["rule_id"], decision["action"], decision["approvals_required"]) == (
        "approve-over-10k",
        "approve",
        1,
    )
    assert decision["usd_amount"] == "12000.00"
    assert decision["limits"][0]["id"] == "client-24h-volume"
    assert explained["passed"] == [
        {"rule_id": "block-over-250k", "reason": "amount not over the bound"}
    ]
    assert await api.journal_rows() == before
    status, problem = await call(
        api, route("POST", "/v1/ops/policy/dry-run"), "/v1/ops/policy/dry-run",
        api.auth("staff", Role.OPERATOR), {**body, "amount": "-1"},
    )  # fmt: skip
    assert (status, problem["code"]) == (422, "amount_negative")


def _allowed_corridors() -> list[tuple[str, str, str]]:
    """Every (source, target, destination kind) the engine's validation lets a client ask for."""
    from engine.destinations import BankDestination, WalletDestination

    found = []
    for source in money.ASSETS.values():
        for target in money.ASSETS.values():
            for kind, destination in (
                ("wallet", WalletDestination(chain="ethereum", address=WALLET)),
                ("bank", BankDestination(country="MX", clabe=CLABE, name="Ana")),
            ):
                if check_corridor(source, target, destination).name == "ok":
                    found.append((source.code, target.code, kind))
    return found


async def test_every_corridor_validation_allows_is_served_or_refused_at_creation(api: Api) -> None:
    """Policy and execution agree (Series 1): each corridor a client may ask for either has a
    provider and goes through, or is refused at creation with corridor_unsupported; and every
    corridor a provider serves is one a client can ask for."""
    allowed = _allowed_corridors()
    served = {policy.corridor_id(s, t) for s, t in CORRIDORS}
    assert served <= {policy.corridor_id(s, t) for s, t, _ in allowed}
    # The corridor ids operators halt are exactly the ones validation allows.
    assert set(policy.CORRIDOR_IDS) == {policy.corridor_id(s, t) for s, t, _ in allowed}
    await api.fund("acme", "1000.00")  # the simulated bank books USD deposits only
    outcomes = {}
    for source, target, kind in allowed:
        destination: dict[str, Any] = (
            {"kind": "wallet", "chain": "ethereum", "address": WALLET}
            if kind == "wallet"
            else {"kind": "bank", "country": "MX", "clabe": CLABE, "name": "Ana"}
        )
        body = {
            "source_currency": source,
            "target_currency": target,
            "amount": "10.00",
            "destination": destination,
        }
        status, answer = await create(api, body)
        outcomes[(source, target, kind)] = (status, answer.get("code") or answer["status"])
        if policy.corridor_id(source, target) in served:
            # Served: policy let it through to execution (a client without EUR is refused
            # for its balance, not for the corridor).
            tid = answer["id"] if status == 201 else answer["transfer_id"]
            state = await api.node.transfer(tid)
            assert state is not None and state.policy is not None, (source, target, answer)
            assert state.policy.rule_id == "allow-up-to-10k", (source, target, state.policy)
            assert status == 201 or answer["code"] == "insufficient_funds", answer
        else:
            assert (status, answer["code"]) == (422, "corridor_unsupported"), (source, target)
    assert BANK_COUNTRIES == {"MX": "MXN"}, "a new bank country needs its corridors enumerated"
    print(outcomes)
    # Eight corridors a client may ask for: three served, five refused at creation.
    refused = [k for k, v in outcomes.items() if v == (422, "corridor_unsupported")]
    assert (len(outcomes), len(refused)) == (8, 5), outcomes


async def test_sanctioned_parties_are_refused_at_creation_and_alerted(api: Api) -> None:
    """Screened at creation against the configured list (the shipped sample here): a listed
    beneficiary address (any checksum case), a listed bank holder (any case, diacritics or word
    order) and a listed sender are each refused with sanctions_hit, kept FAILED, and alerted."""
    await api.fund("acme")
    listed = {**wallet_body(), "destination": {"kind": "wallet", "chain": "ethereum",
              "address": "0x5a1c7ed0ddba11000000000000000000000000AB"}}  # fmt: skip
    status, problem = await create(api, listed)
    assert (status, problem["code"]) == (422, "sanctions_hit"), problem
    assert "SDN entry 90001" in problem["detail"]
    bank = {"source_currency": "USD", "target_currency": "MXN", "amount": "10.00",
            "destination": {"kind": "bank", "country": "MX", "clabe": CLABE,
                            "name": "OZTURK, Jose Muller"}}  # fmt: skip
    status, problem = await create(api, bank)
    assert (status, problem["code"]) == (422, "sanctions_hit"), problem
    key = await api.add_key("blocked-co", Role.INITIATOR, "trader")
    status, problem = await call(
        api, route("POST", "/v1/transfers"), "/v1/transfers",
        {"Authorization": f"Bearer {key}", "Idempotency-Key": "k-1"}, wallet_body(),
    )  # fmt: skip
    assert (status, problem["code"]) == (422, "sanctions_hit"), problem
    state = await api.node.transfer(problem["transfer_id"])
    assert state is not None and state.status.value == "FAILED"
    rows = await api.node.store.reader.fetchall(
        "SELECT payload FROM journal WHERE event_type = 'AlertRaised'"
    )
    assert sum("sanctions_hit" in row[0] for row in rows) == 3
    # A clean transfer passes, its clear screening stored with it.
    status, transfer = await create(api, wallet_body())
    assert status == 201
    state = await api.node.transfer(transfer["id"])
    records = await api.node.store.load_stream(transfer["id"])
    created = records[0].event
    assert created.screening is not None and created.screening.hits == ()  # type: ignore[union-attr]
