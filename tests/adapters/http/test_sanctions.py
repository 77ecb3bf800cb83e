"""The sanctions list through the running service, read from OFAC-layout files on disk: what it
holds is visible to staff; a reload brings a new list into force and at once fails every
transfer not yet on chain whose beneficiary it now names (hold released, alert raised, audited),
while a list that cannot be read changes nothing; a list past its age raises one alert.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.config import ServeConfig
from adapters.main import running
from adapters.sanctions_files import SanctionsSource, load_list
from engine import access, sanctions
from engine.access import Role
from tests.adapters.http.conftest import INBOUND_SECRETS, WALLET, Api, wallet_body
from tests.adapters.http.test_api import call, route
from tests.adapters.http.test_policy import create

pytestmark = pytest.mark.anyio

SDN, ALT = sanctions.SAMPLE_FILES


def write_list(folder: Path, *extra_rows: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "SDN.CSV").write_text(SDN.text + "".join(r + "\r\n" for r in extra_rows))
    (folder / "ALT.CSV").write_text(ALT.text)


@dataclasses.dataclass
class Listed:
    api: Api
    folder: Path


async def serve_with(tmp_path: Path, source: SanctionsSource) -> AsyncIterator[Api]:
    config = ServeConfig(
        data_dir=tmp_path / "data",
        sim_speed=50,
        webhooks_allow_private=True,
        inbound_secrets=tuple(INBOUND_SECRETS.items()),
        sanctions=source,
        sanctions_list=load_list(source) if source.paths else None,
    )
    async with running(config) as (node, app), TestClient(TestServer(app)) as http:
        api = Api(node, http, {})
        for role in (Role.INITIATOR, Role.APPROVER, Role.VIEWER):
            api.keys[("acme", role)] = await api.add_key("acme", role, f"{role.value}-acme")
        for role in access.STAFF_ROLES:
            api.keys[("staff", role)] = await api.add_key(None, role, f"{role.value}-staff")
        yield api


@pytest.fixture
async def listed(tmp_path: Path) -> AsyncIterator[Listed]:
    folder = tmp_path / "ofac"
    write_list(folder)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    async for api in serve_with(tmp_path, SanctionsSource(paths=(folder,), published=today)):
        yield Listed(api, folder)


async def get_list(api: Api, role: Role = Role.OPERATOR) -> tuple[int, Any]:
    r = route("GET", "/v1/ops/sanctions")
    return await call(api, r, r.path, api.auth("staff", role))


async def reload(api: Api, reason: str = "OFAC update") -> tuple[int, Any]:
    r = route("POST", "/v1/ops/sanctions/reload")
    return await call(api, r, r.path, api.auth("staff", Role.OPERATOR), {"reason": reason})


async def journal(api: Api, event_type: str) -> list[str]:
    rows = await api.node.store.reader.fetchall(
        "SELECT payload FROM journal WHERE event_type = ?", (event_type,)
    )
    return [row[0] for row in rows]


async def test_the_list_in_force_and_what_it_holds(listed: Listed) -> None:
    api = listed.api
    status, view = await get_list(api, Role.AUDITOR)
    assert status == 200, view
    assert view["sample"] is False and view["stale"] is False
    assert (view["entries"], view["names"], view["aliases"]) == (5, 8, 4)
    assert view["address_assets"] == {"ETH": 2, "USDC": 1} and view["other_addresses"] == 1
    assert [f["name"] for f in view["files"]] == ["ALT.CSV", "SDN.CSV"]
    assert view["file_date"].startswith(dt.datetime.now(dt.UTC).date().isoformat())
    r = route("GET", "/v1/ops/sanctions")
    status, problem = await call(api, r, r.path, api.auth("acme", Role.VIEWER))
    assert (status, problem["code"]) == (403, "forbidden")
    audited = await api.node.store.reader.fetchall(
        "SELECT record FROM audit_log WHERE action_type = 'load_sanctions_list'"
    )
    assert len(audited) == 1 and view["digest"] in audited[0][0]


async def test_a_reload_fails_transfers_not_yet_on_chain_that_it_now_names(
    listed: Listed,
) -> None:
    api = listed.api
    await api.fund("acme", "50000.00")
    # Above 10,000.00 a transfer waits in CREATED for a second person: not yet on chain.
    status, waiting = await create(api, wallet_body("12000.00"))
    assert (status, waiting["status"]) == (201, "CREATED"), waiting
    status, before = await get_list(api)
    assert status == 200

    write_list(listed.folder, sanctions.sdn_row(
        "90100", "NEW DESIGNATION LTD", "", "CYBER2",
        f"Digital Currency Address - USDT {WALLET.lower()}; Website new.example.",
    ))  # fmt: skip
    status, view = await reload(api)
    assert status == 200, view
    assert view["entries"] == 6 and view["digest"] != before["digest"]
    assert view["rescreened"] == {"screened": 1, "failed": [waiting["id"]]}
    state = await api.node.transfer(waiting["id"])
    assert state is not None and state.status.value == "FAILED"
    assert state.failure_code == "sanctions_hit"
    assert "on reload" in (state.failure_message or "")
    balances = await api.node.balances("acme")
    assert [(b.available, b.held) for b in balances] == [(5_000_000, 0)]
    alerts = await journal(api, "AlertRaised")
    assert sum("sanctions_hit" in a and waiting["id"] in a for a in alerts) == 1
    # A new create to the listed wallet is refused at creation.
    status, problem = await create(api, wallet_body("10.00"))
    assert (status, problem["code"]) == (422, "sanctions_hit"), problem
    assert "SDN entry 90100" in problem["detail"]

    # A list that cannot be read changes nothing.
    (listed.folder / "SDN.CSV").write_text('90001,"KOVAL",individual,CYBER2,"-0-"\r\n')
    status, problem = await reload(api)
    assert (status, problem["code"]) == (422, "sanctions_list_invalid"), problem
    assert "SDN.CSV line 1: 5 columns" in problem["detail"]
    status, now = await get_list(api)
    assert now["digest"] == view["digest"]


async def test_a_list_past_its_age_raises_one_alert(tmp_path: Path) -> None:
    folder = tmp_path / "ofac"
    write_list(folder)
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).date().isoformat()
    source = SanctionsSource(paths=(folder,), published=old, max_age_days=7)
    async for api in serve_with(tmp_path, source):
        status, view = await get_list(api)
        assert (status, view["stale"], view["max_age_days"]) == (200, True, 7)
        for _ in range(100):
            stale = [a for a in await journal(api, "AlertRaised") if "sanctions_list_stale" in a]
            if stale:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # more timer polls: still one alert
        stale = [a for a in await journal(api, "AlertRaised") if "sanctions_list_stale" in a]
        assert len(stale) == 1 and "30 days ago" in stale[0]


async def test_without_files_the_sample_is_in_force_and_nothing_reloads(tmp_path: Path) -> None:
    async for api in serve_with(tmp_path, SanctionsSource()):
        status, view = await get_list(api)
        assert (status, view["sample"], view["stale"], view["file_date"]) == (
            200, True, False, None
        )  # fmt: skip
        status, problem = await reload(api)
        assert (status, problem["code"]) == (409, "sanctions_not_configured")
        status, problem = await reload(api, reason="")
        assert (status, problem["code"]) == (422, "field_invalid")


async def test_a_list_updated_while_stopped_fails_waiting_transfers_at_start(
    tmp_path: Path,
) -> None:
    """A transfer created under one list and waiting for approval is screened against the list
    configured at the next start, before anyone approves it."""
    folder = tmp_path / "ofac"
    write_list(folder)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    source = SanctionsSource(paths=(folder,), published=today)
    async for api in serve_with(tmp_path, source):
        await api.fund("acme", "50000.00")
        status, waiting = await create(api, wallet_body("12000.00"))
        assert (status, waiting["status"]) == (201, "CREATED"), waiting
    write_list(folder, sanctions.sdn_row(
        "90101", "LISTED WHILE STOPPED", "", "CYBER2", f"Digital Currency Address - ETH {WALLET}",
    ))  # fmt: skip
    async for api in serve_with(tmp_path, source):
        for _ in range(200):
            state = await api.node.transfer(waiting["id"])
            if state is not None and state.status.value == "FAILED":
                break
            await asyncio.sleep(0.05)
        assert state is not None and state.failure_code == "sanctions_hit"
        assert "SDN entry 90101" in (state.failure_message or "")
