"""Pricing through the API, against the simulated market (five providers):
- `GET /v1/quotes/{id}` shows a quote with every provider's answer to the same request: the
  chosen one is the best quoted price; staff keys also see each provider's raw response, client
  keys do not; another client's quote is 404 (test_api's tenant matrix);
- `GET /v1/ops/providers` shows each provider's corridors, terms and breaker, and `/metrics`
  counts the answers;
- the operator's terms (`[providers.NAME]`) take a provider out of the choice;
- a payout rerouted to another provider is counted in `/metrics`;
- `GET /v1/ops/liquidity` shows each held balance against its bounds, with a rebalancing plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.config import ConfigError, ServeConfig
from adapters.http.metrics import Metrics
from adapters.main import running
from adapters.pricing_config import PricingSettings
from engine import commands as c
from engine.access import Role
from engine.liquidity import Threshold
from engine.pricing import ProviderTerms
from engine.quotes import Quote
from engine.states import Route
from sim.world import prefunding_usdc
from tests.adapters.http.conftest import Api
from tests.adapters.http.test_api import call, check_conforms, create, route
from tests.builders import walk_to

pytestmark = pytest.mark.anyio


async def get_quote(api: Api, quote_id: str, client: str, role: Role) -> tuple[int, Any]:
    path = f"/v1/quotes/{quote_id}"
    return await call(api, route("GET", "/v1/quotes/{id}"), path, api.auth(client, role))


def best_of(quote: dict[str, Any]) -> dict[str, Any]:
    quoted = [a for a in quote["alternatives"] if a["outcome"] == "quoted"]
    return max(quoted, key=lambda a: (float(a["target_amount"]), -float(a["fee"])))


async def test_a_transfers_quote_shows_every_answer_and_raw_bodies_only_to_staff(api: Api) -> None:
    await api.fund("acme")
    status, transfer = await create(api, amount="5000.00")
    assert status == 201, transfer
    status, quote = await get_quote(api, transfer["quote_id"], "acme", Role.VIEWER)
    assert status == 200, quote
    assert {a["provider"] for a in quote["alternatives"]} == {"circle-sim", "paxos-sim"}
    assert [a["provider"] for a in quote["alternatives"] if a["chosen"]] == [quote["provider"]]
    assert best_of(quote)["provider"] == quote["provider"]
    assert quote["target_amount"] == transfer["target_amount"]
    assert all("raw" not in a for a in quote["alternatives"])
    status, seen = await get_quote(api, transfer["quote_id"], "staff", Role.AUDITOR)
    assert status == 200
    for answer in seen["alternatives"]:
        if answer["outcome"] == "quoted":
            assert json.loads(answer["raw"])["id"] == answer["provider_quote_id"]


async def test_an_issued_bank_quote_is_the_best_of_the_three_off_ramps(api: Api) -> None:
    status, issued = await call(
        api,
        route("POST", "/v1/quotes"),
        "/v1/quotes",
        api.auth("acme", Role.INITIATOR),
        {"source_currency": "USD", "target_currency": "MXN", "source_amount": "2500.00",
         "destination_kind": "bank"},
    )  # fmt: skip
    assert status == 201, issued
    status, quote = await get_quote(api, issued["id"], "acme", Role.VIEWER)
    assert status == 200
    assert {a["provider"] for a in quote["alternatives"]} == {
        "bitso-sim", "conduit-sim", "rampa-sim"
    }  # fmt: skip
    assert best_of(quote)["provider"] == issued["provider"] == quote["provider"]
    assert quote["target_amount"] == issued["target_amount"]


async def test_operators_see_each_provider_and_metrics_count_the_answers(api: Api) -> None:
    await api.fund("acme")
    assert (await create(api))[0] == 201
    path = "/v1/ops/providers"
    status, desk = await call(api, route("GET", path), path, api.auth("staff", Role.OPERATOR))
    assert status == 200, desk
    by_name = {p["provider"]: p for p in desk["data"]}
    assert sorted(by_name) == ["bitso-sim", "circle-sim", "conduit-sim", "paxos-sim", "rampa-sim"]
    assert by_name["rampa-sim"]["corridors"] == ["USD-MXN"]
    assert by_name["circle-sim"]["circuit"]["state"] == "closed"
    assert by_name["circle-sim"]["answers"]["quoted"] >= 1
    assert desk["breaker"]["failures_to_open"] == 5
    text = await (await api.http.get("/metrics")).text()
    assert 'stablerail_provider_answers_total{outcome="quoted",provider="circle-sim"}' in text
    assert 'stablerail_provider_circuit_state{provider="rampa-sim",state="closed"} 1.0' in text


async def test_a_provider_the_operator_disabled_is_not_asked(tmp_path: Path) -> None:
    config = ServeConfig(
        data_dir=tmp_path / "data",
        sim_speed=50,
        pricing=PricingSettings(terms=(("paxos-sim", ProviderTerms(enabled=False)),)),
    )
    async with running(config) as (node, app), TestClient(TestServer(app)):
        quote = await node.system.issue_quote("acme", "USD", "USDC", 10**9, bank=False)
        assert isinstance(quote, Quote), quote
        answers = {a.provider: a.answered.value for a in quote.alternatives}
        assert answers == {"circle-sim": "quoted", "paxos-sim": "ineligible"}
        assert quote.provider == "circle-sim", "paxos-sim would be cheaper for this amount"


async def test_terms_for_a_provider_the_rails_do_not_have_stop_the_start(tmp_path: Path) -> None:
    config = ServeConfig(
        data_dir=tmp_path / "data",
        pricing=PricingSettings(terms=(("bitso", ProviderTerms(enabled=False)),)),
    )
    with pytest.raises(BaseExceptionGroup) as group:
        async with running(config):
            pass
    found = group.value
    while isinstance(found, BaseExceptionGroup):  # the CLI unwraps it the same way
        found = found.exceptions[0]
    assert isinstance(found, ConfigError)
    assert str(found).startswith("[providers.bitso]: no such provider (known: ['bitso-sim',")


def test_a_reroute_is_counted_in_the_metrics() -> None:
    walk = walk_to("CONFIRMED", route=Route.BANK)
    before = walk.s
    walk.apply(
        c.RerouteOffRamp(
            provider="conduit-sim", previous="bitso-sim", reason="bitso-sim refused it"
        )
    )
    metrics = Metrics()
    metrics.transfer_changed(before, walk.s)
    text = metrics.exposition().decode()
    assert (
        'stablerail_payout_failovers_total{from_provider="bitso-sim",to_provider="conduit-sim"}'
        " 1.0" in text
    )


async def test_operators_see_each_balance_against_its_bounds_and_a_plan(tmp_path: Path) -> None:
    """bitso-sim's floor above its prefunding: it is below it (not yet alerted: the watch runs
    at the next balance check) and the plan refills it from the treasury."""
    floor = Threshold(
        account="provider:bitso-sim", currency="USDC", min_amount=prefunding_usdc + 10**6
    )
    config = ServeConfig(
        data_dir=tmp_path / "data", sim_speed=50, pricing=PricingSettings(liquidity=(floor,))
    )
    async with running(config) as (node, app), TestClient(TestServer(app)) as http:
        key = await Api(node, http, {}).add_key(None, Role.OPERATOR, "ops")
        r = await http.get("/v1/ops/liquidity", headers={"Authorization": f"Bearer {key}"})
        body = await r.read()
        check_conforms("/v1/ops/liquidity", "GET", r.status, body, r.headers["Content-Type"])
        view = json.loads(body)
    by_account = {s["account"]: s for s in view["data"]}
    bitso = by_account["provider:bitso-sim"]
    assert (bitso["state"], bitso["alerted"], bitso["min"]) == (
        "below_min",
        False,
        "1000001.000000",
    )
    assert by_account["provider:rampa-sim"]["state"] == "unbounded"
    (move,) = view["plan"]
    assert move["to"] == "provider:bitso-sim" and move["from"].startswith("treasury:ethereum:")
    assert move["amount"] == "1.000000"
