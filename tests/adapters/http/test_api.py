"""The HTTP API against a running service: every response conforms to the OpenAPI document, the
role matrix (every route x every role) and the tenant matrix (every id-bearing route x another
client's key -> 404), idempotency under 50 concurrent identical requests, bad input that leaves
the journal untouched, and the service endpoints."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from adapters.http.openapi import document
from adapters.http.routes import ROUTES, Route
from engine import access
from engine.access import Role
from tests.adapters.http.conftest import CLABE, Api, wallet_body

pytestmark = pytest.mark.anyio

DOC = document()


def check_conforms(route_path: str, method: str, status: int, body: bytes, kind: str) -> None:
    """The response is one the document declares, and its body matches the declared schema."""
    operation = DOC["paths"][route_path][method.lower()]
    assert str(status) in operation["responses"], (method, route_path, status, body[:300])
    declared = operation["responses"][str(status)].get("content")
    if not declared:
        return
    media = kind.split(";")[0]
    assert media in declared, (method, route_path, status, kind)
    schema = dict(declared[media]["schema"])
    if not schema:
        return
    schema["components"] = DOC["components"]
    jsonschema.validate(json.loads(body), schema)


async def call(
    api: Api, route: Route, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    r = await api.http.request(route.method, path, json=body, headers=headers)
    raw = await r.read()
    assert r.headers.get("X-Request-Id"), (route.method, path)
    check_conforms(route.path, route.method, r.status, raw, r.headers.get("Content-Type", ""))
    assert r.status != 500, raw[:500]
    return r.status, json.loads(raw) if raw else None


def route(method: str, path: str) -> Route:
    return next(r for r in ROUTES if (r.method, r.path) == (method, path))


async def create(
    api: Api, client: str = "acme", amount: str = "10.00", key: str | None = None
) -> tuple[int, Any]:
    return await call(
        api,
        route("POST", "/v1/transfers"),
        "/v1/transfers",
        {**api.auth(client, Role.INITIATOR), "Idempotency-Key": key or str(uuid.uuid4())},
        wallet_body(amount),
    )


async def objects(api: Api) -> dict[str, str]:
    """One of each id-bearing object, owned by acme."""
    await api.fund("acme")
    status, transfer = await create(api)
    assert status == 201, transfer
    status, endpoint = await call(
        api,
        route("POST", "/v1/webhook-endpoints"),
        "/v1/webhook-endpoints",
        api.auth("acme", Role.ADMIN),
        {"url": "http://127.0.0.1:9/hook", "events": ["*"]},
    )
    assert status == 201, endpoint
    status, key = await call(
        api,
        route("POST", "/v1/api-keys"),
        "/v1/api-keys",
        api.auth("acme", Role.ADMIN),
        {"role": "viewer", "user": "vera"},
    )
    assert status == 201, key
    return {
        "transfers": transfer["id"],
        "quotes": transfer["quote_id"],
        "webhook-endpoints": endpoint["id"],
        "api-keys": key["id"],
        # Staff-only paths: a client, a corridor, a discrepancy that does not exist.
        "clients": "acme",
        "corridors": "USD-USDC",
        "discrepancies": "dc_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C",
        "overrides": "ov_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C",
        "rebalances": "rb_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C",
    }


def concrete(r: Route, ids: dict[str, str]) -> str:
    if "{id}" not in r.path:
        return r.path
    for kind, found in ids.items():
        if r.path.startswith(f"/v1/{kind}/") or r.path.startswith(f"/v1/ops/{kind}/"):
            return r.path.replace("{id}", found)
    raise AssertionError(r.path)


async def test_role_matrix_every_route_every_role(api: Api) -> None:
    ids = await objects(api)
    checked = 0
    signed = [r for r in ROUTES if r.signed]  # no key: test_inbound checks their signatures
    for r in ROUTES:
        if r.signed:
            continue
        for (client, role), _ in sorted(api.keys.items()):
            if client == "globex":
                continue
            status, body = await call(api, r, concrete(r, ids), api.auth(client, role), {})
            may = access.allowed(role, r.permission) if r.permission else True
            if may:
                assert status not in (401, 403) or body["code"] == "maker_cannot_approve", (
                    r.method,
                    r.path,
                    role,
                    status,
                    body,
                )
            else:
                assert status == 403 and body["code"] == "forbidden", (r.path, role, status)
            checked += 1
        status, body = await call(api, r, concrete(r, ids), {}, {})
        assert status == 401, (r.path, status)
    assert checked == (len(ROUTES) - len(signed)) * len(Role)


async def test_tenant_matrix_another_clients_object_is_404(api: Api) -> None:
    ids = await objects(api)
    checked = 0
    for r in ROUTES:
        if "{id}" not in r.path or r.permission is None:
            continue
        roles = [role for role in Role if role not in access.STAFF_ROLES]
        roles = [role for role in roles if access.allowed(role, r.permission)]
        if not roles:
            continue  # a staff route: staff keys see every client
        for role in roles:
            status, body = await call(api, r, concrete(r, ids), api.auth("globex", role), {})
            assert status == 404 and body["code"] == "not_found", (r.path, role, status, body)
            checked += 1
    assert checked >= 8
    # Lists never show another client's objects.
    status, page = await call(
        api, route("GET", "/v1/transfers"), "/v1/transfers", api.auth("globex", Role.VIEWER)
    )
    assert status == 200 and page["data"] == []


async def test_fifty_concurrent_identical_creates_make_one_transfer(api: Api) -> None:
    await api.fund("acme")
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(create(api, key=key, amount="3.21") for _ in range(50)))
    statuses = sorted({status for status, _ in answers})
    assert set(statuses) <= {201, 409}, statuses
    made = {body["id"] for status, body in answers if status == 201}
    assert len(made) == 1, made
    for status, body in answers:
        if status == 409:
            assert body["code"] == "idempotency_request_in_progress"
    row = await api.node.store.reader.fetchone(
        "SELECT count(*) FROM transactions WHERE idempotency_key = ?", (key,)
    )
    assert row is not None and row[0] == 1
    # Later retries replay the stored answer, byte for byte.
    r1 = await api.http.post(
        "/v1/transfers",
        json=wallet_body("3.21"),
        headers={**api.auth("acme", Role.INITIATOR), "Idempotency-Key": key},
    )
    r2 = await api.http.post(
        "/v1/transfers",
        json=wallet_body("3.21"),
        headers={**api.auth("acme", Role.INITIATOR), "Idempotency-Key": key},
    )
    assert r1.status == r2.status == 201
    assert r1.headers["Idempotent-Replayed"] == "true"
    assert await r1.read() == await r2.read()


@pytest.mark.parametrize(
    ("headers", "raw", "status", "code"),
    [
        ({}, b"{", 422, "body_malformed"),
        ({}, b"[]", 422, "field_invalid"),
        ({}, b"", 422, "body_malformed"),
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({}, json.dumps(wallet_body("1.00", fee="0.00")).encode(), 422, "unknown_field"),
        ({}, json.dumps(wallet_body("1.00", client_id="globex")).encode(), 422, "unknown_field"),
        ({}, json.dumps(wallet_body(100)).encode(), 422, "field_invalid"),  # type: ignore[arg-type]
        ({}, json.dumps(wallet_body("1e3")).encode(), 422, "amount_malformed"),
        ({}, json.dumps(wallet_body("0.00")).encode(), 422, "amount_must_be_positive"),
        (
            {},
            json.dumps(wallet_body("1.00", reference="x" * 1000)).encode(),
            422,
            "reference_invalid",
        ),
        ({}, b'{"a":"' + b"x" * 70_000 + b'"}', 413, "body_too_large"),
        (
            {"Idempotency-Key": "x" * 256},
            json.dumps(wallet_body()).encode(),
            400,
            "idempotency_key_invalid",
        ),
        (
            {"Idempotency-Key": ""},
            json.dumps(wallet_body()).encode(),
            400,
            "idempotency_key_missing",
        ),
    ],
)
async def test_bad_input_gets_its_problem_and_leaves_no_trace(
    api: Api, headers: dict[str, str], raw: bytes, status: int, code: str
) -> None:
    before = await api.journal_rows()
    sent = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    sent.update(api.auth("acme", Role.INITIATOR))
    sent.update(headers)
    r = await api.http.post("/v1/transfers", data=raw, headers=sent)
    body = await r.read()
    check_conforms("/v1/transfers", "POST", r.status, body, r.headers["Content-Type"])
    assert r.headers["Content-Type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert (r.status, problem["code"]) == (status, code), problem
    assert problem["request_id"] == r.headers["X-Request-Id"]
    assert await api.journal_rows() == before
    keys = await api.node.store.reader.fetchone("SELECT count(*) FROM idempotency_keys")
    assert keys is not None and keys[0] == 0


async def test_a_refused_create_is_stored_as_422_with_its_transfer(api: Api) -> None:
    key = str(uuid.uuid4())
    status, problem = await create(api, client="globex", amount="50.00", key=key)
    assert status == 422 and problem["code"] == "insufficient_funds", problem
    tid = problem["transfer_id"]
    status, transfer = await call(
        api,
        route("GET", "/v1/transfers/{id}"),
        f"/v1/transfers/{tid}",
        api.auth("globex", Role.VIEWER),
    )
    assert status == 200 and transfer["status"] == "FAILED"
    assert transfer["failure"]["code"] == "insufficient_funds"
    again_status, again = await create(api, client="globex", amount="50.00", key=key)
    assert (again_status, again) == (status := 422, problem), again


async def test_a_corridor_no_provider_serves_fails_at_once_with_a_code_it_can_end_with(
    api: Api,
) -> None:
    """EURC to a Mexican bank account passes validation, but no quote provider serves the pair:
    found by schemathesis, the transfer used to wait in CREATED for ever. Policy now checks every
    create against the corridors execution serves (Series 1's policy/data plane drift)."""
    body = {
        "source_currency": "EURC",
        "target_currency": "MXN",
        "amount": "10.00",
        "destination": {"kind": "bank", "country": "MX", "clabe": CLABE, "name": "Ana"},
    }
    status, problem = await call(
        api,
        route("POST", "/v1/transfers"),
        "/v1/transfers",
        {**api.auth("acme", Role.INITIATOR), "Idempotency-Key": str(uuid.uuid4())},
        body,
    )
    assert (status, problem["code"]) == (422, "corridor_unsupported"), problem
    state = await api.node.transfer(problem["transfer_id"])
    assert state is not None and state.status.value == "FAILED"
    # Refused by policy at creation (it knows what execution serves), never quoted.
    assert state.quoted_at is None and state.policy is not None
    assert state.policy.rule_id == "no_provider"
    assert "no provider serves the corridor EURC-MXN" in (state.failure_message or "")


async def test_pages_stay_stable_while_transfers_are_created(api: Api) -> None:
    await api.fund("acme")
    before = []
    for _ in range(7):
        status, body = await create(api, amount="1.00")
        assert status == 201
        before.append(body["id"])
    lister = route("GET", "/v1/transfers")
    viewer = api.auth("acme", Role.VIEWER)
    seen: list[str] = []
    path = "/v1/transfers?limit=3"
    while True:
        status, page = await call(api, lister, path, viewer)
        assert status == 200
        seen += [t["id"] for t in page["data"]]
        # New transfers between pages land before the first page, never inside the walk.
        status, _ = await create(api, amount="1.00")
        assert status == 201
        if not page["has_more"]:
            break
        path = f"/v1/transfers?limit=3&cursor={page['next_cursor']}"
    assert seen == list(reversed(before))
    status, body = await call(api, lister, "/v1/transfers?cursor=bm90LWEtY3Vyc29y", viewer)
    assert (status, body["code"]) == (400, "cursor_invalid")


async def test_service_endpoints(api: Api) -> None:
    for path in ("/healthz", "/readyz", "/v1/openapi.json"):
        r = await api.http.get(path)
        assert r.status == 200, path
    r = await api.http.get("/metrics")
    text = await r.text()
    assert r.status == 200 and "stablerail_http_requests_total" in text
    assert "stablerail_mailbox_depth" in text and "stablerail_webhook_backlog" in text
    r = await api.http.get("/v1/nope", headers={"X-Request-Id": "mine-1"})
    assert r.status == 404 and r.headers["X-Request-Id"] == "mine-1"
    assert (await r.json())["code"] == "not_found"
    r = await api.http.put("/v1/transfers")
    assert r.status == 405 and (await r.json())["code"] == "method_not_allowed"
    assert DOC["openapi"] == "3.1.0"
    assert {(r.method.lower(), r.path) for r in ROUTES} <= {
        (m, p) for p, ops in DOC["paths"].items() for m in ops
    }
