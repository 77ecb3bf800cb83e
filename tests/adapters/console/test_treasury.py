"""The treasury page in a real browser: held balances against their thresholds, and a
rebalancing move's maker-checker. The operator who proposed a move is refused when approving
it from the page (`maker_cannot_approve`, even signed in); a second operator approves it and
the payment machinery carries it out."""

from __future__ import annotations

from typing import Any

import pytest

from engine.access import Role
from tests.adapters.console.test_walk import until_shown
from tests.adapters.http.conftest import Api
from tests.adapters.http.test_rebalances import propose

pytestmark = pytest.mark.anyio


async def test_a_second_operator_approves_a_move_from_the_treasury_page(
    console: Any, api: Api
) -> None:
    status, move = await propose(api)
    assert status == 201, move
    maker = await console()
    await maker.sign_in("staff", Role.OPERATOR)
    await maker.open("/console/treasury")
    row = maker.page.get_by_role("row", name=move["id"])
    assert "proposed" in await row.inner_text()
    approve = row.locator(
        "form", has=maker.page.get_by_role("button", name=f"Approve {move['id']}")
    )
    status, shown = await maker.refused(approve, f"Approve {move['id']}")
    assert status == 403 and "maker_cannot_approve" in shown

    api.keys[("staff2", Role.OPERATOR)] = await api.add_key(None, Role.OPERATOR, "second-ops")
    checker = await console()
    await checker.sign_in("staff2", Role.OPERATOR)
    await checker.open("/console/treasury")
    row = checker.page.get_by_role("row", name=move["id"])
    approve = row.locator(
        "form", has=checker.page.get_by_role("button", name=f"Approve {move['id']}")
    )
    await checker.act(approve, f"Approve {move['id']}")
    await until_shown(checker, "/console/treasury", "confirmed")
    row = checker.page.get_by_role("row", name=move["id"])
    assert "second-ops" in await row.inner_text()
    assert await row.get_by_role("button").count() == 0
    await checker.shot("treasury")
