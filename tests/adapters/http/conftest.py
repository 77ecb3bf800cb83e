"""A running service (store, actors, simulated world at 50x speed, webhook dispatcher) behind an
aiohttp test server on 127.0.0.1, with keys for two clients in every role and a staff operator."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.config import ServeConfig
from adapters.main import Node, mint_key, running
from engine import access
from engine.access import Role
from store import service as tables

CLIENTS = ("acme", "globex")
# Signing secrets of the providers whose webhooks the service accepts.
INBOUND_SECRETS = {
    "bank-sim": "whsec_" + base64.b64encode(b"bank-sim inbound secret 24").decode(),
    "bitso-sim": "whsec_" + base64.b64encode(b"offramp inbound secret 24").decode(),
}
WALLET = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
CLABE = "002010077777777771"


def wallet_body(amount: str = "10.00", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source_currency": "USD",
        "target_currency": "USDC",
        "amount": amount,
        "destination": {"kind": "wallet", "chain": "ethereum", "address": WALLET},
    }
    body.update(extra)
    return body


@dataclasses.dataclass
class Api:
    node: Node
    http: TestClient[Any, Any]
    # (client or "staff", role) -> the key's text
    keys: dict[tuple[str, Role], str]

    def auth(self, client: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[(client, role)]}"}

    async def add_key(self, client: str | None, role: Role, user: str) -> str:
        ctx = self.node.system.ctx
        key, text = mint_key(ctx.clock, ctx.ids, client=client, role=role, user=user, env="test")
        await tables.insert_key(self.node.store, key)
        return text

    async def fund(self, client: str, amount: str = "100000.00") -> None:
        r = await self.http.post(
            "/v1/sim/deposits",
            json={"client_id": client, "currency": "USD", "amount": amount},
            headers=self.auth("staff", Role.OPERATOR),
        )
        assert r.status == 202, await r.text()

    async def journal_rows(self) -> int:
        row = await self.node.store.reader.fetchone("SELECT count(*) FROM journal")
        assert row is not None
        return int(row[0])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = ServeConfig(
        data_dir=tmp_path / "data",
        sim_speed=50,
        webhooks_allow_private=True,
        inbound_secrets=tuple(INBOUND_SECRETS.items()),
    )
    async with running(config) as (node, app), TestClient(TestServer(app)) as http:
        found = Api(node, http, {})
        for client in CLIENTS:
            for role in Role:
                if role not in access.STAFF_ROLES:
                    found.keys[(client, role)] = await found.add_key(
                        client, role, f"{role.value}-{client}"
                    )
        for role in access.STAFF_ROLES:
            found.keys[("staff", role)] = await found.add_key(None, role, f"{role.value}-staff")
        yield found
