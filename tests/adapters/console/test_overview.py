"""The overview's numbers are the viewer's own: a client's person counts only its client's
transfers, staff count every client's; the charts state the same numbers."""

from __future__ import annotations

import re

import pytest

from engine.access import Role
from tests.adapters.console.test_sessions import sign_in
from tests.adapters.http.conftest import Api, wallet_body

pytestmark = pytest.mark.anyio
_ROW = re.compile(r'status=(\w+)">\w+</a></td><td class="num">(\d+)</td>')


async def counts(api: Api, client: str, role: Role) -> dict[str, int]:
    await sign_in(api, client, role)
    page = await (await api.http.get("/console")).text()
    return {status: int(n) for status, n in _ROW.findall(page)}


async def test_a_client_counts_its_own_transfers_and_staff_count_all(api: Api) -> None:
    for client, amount, n in (("acme", "12000.00", 2), ("globex", "11000.00", 1)):
        await api.fund(client)
        for i in range(n):
            r = await api.http.post(
                "/v1/transfers",
                json=wallet_body(amount),
                headers={**api.auth(client, Role.INITIATOR), "Idempotency-Key": f"o-{i}"},
            )
            assert r.status == 201, await r.text()
    acme = await counts(api, "acme", Role.VIEWER)
    globex = await counts(api, "globex", Role.VIEWER)
    staff = await counts(api, "staff", Role.OPERATOR)
    assert (acme["CREATED"], globex["CREATED"], staff["CREATED"]) == (2, 1, 3)
    assert sum(acme.values()) == 2 and sum(staff.values()) == 3
    page = await (await api.http.get("/console")).text()
    assert "CREATED: 3" in page  # the bar chart's description
