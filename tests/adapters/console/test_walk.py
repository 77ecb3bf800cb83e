"""The console's whole walk in a real browser, each step as the person who would take it: an
operator signs in and funds a client through the simulated bank; the client's initiator creates
a transfer that needs an approval; the same person holding an approver key is refused (maker
and checker differ); a second person approves it from the queue; the transfer reaches
RECONCILED on its own; the operator takes, notes and resolves a reconciliation case and freezes
the client, after which the initiator's next create is refused on the page. Every page visited
is kept as a screenshot under artifacts/console/. A client's person never sees the
sanctions screenings; staff see them with the external evidence."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from engine.access import Role
from tests.adapters.console.conftest import Console
from tests.adapters.http.conftest import WALLET, Api
from tests.adapters.http.test_discrepancies import open_case

pytestmark = pytest.mark.anyio


async def until_shown(person: Console, path: str, text: str, timeout_s: float = 60) -> None:
    """Reload `path` until the page shows `text` (the engine works on its own meanwhile)."""
    with anyio.fail_after(timeout_s):
        while True:
            await person.open(path)
            if text in await person.page.locator("main").inner_text():
                return
            await anyio.sleep(0.25)


def form_with(person: Console, button: str) -> Any:
    return person.page.locator("form", has=person.page.get_by_role("button", name=button))


async def test_fund_create_approve_reconcile_resolve_freeze(console: Any, api: Api) -> None:
    ops = await console()
    await ops.sign_in("staff", Role.OPERATOR)
    await ops.shot("overview-operator")
    await ops.open("/console/balances?client_id=acme")
    deposit = form_with(ops, "Deposit")
    await deposit.get_by_label("Amount").fill("50000.00")
    await ops.act(deposit, "Deposit")
    await until_shown(ops, "/console/balances?client_id=acme", "50000.00")
    await ops.shot("balances-operator")

    alice = await console()
    await alice.sign_in("acme", Role.INITIATOR)
    await alice.open("/console/transfers/new")
    await alice.shot("new-transfer")
    create = form_with(alice, "Create transfer")
    await create.get_by_label("Amount").fill("12000.00")
    await create.get_by_label("Address").fill(WALLET)
    await alice.act(create, "Create transfer")
    await alice.page.wait_for_url(re.compile(r".*/console/transfers/tr_\w+$"))
    transfer_id = alice.page.url.rsplit("/", 1)[-1]
    state = alice.page.locator("#transfer-state")
    assert "CREATED" in await state.inner_text()
    # An initiator holds no approval permission: the page offers no button for it.
    assert await alice.page.get_by_role("button", name="Approve").count() == 0
    await alice.shot("transfer-awaiting-approval")

    # The initiator's own approver key: the engine refuses the maker as checker.
    same = await console()
    api.keys[("acme-maker", Role.APPROVER)] = await api.add_key(
        "acme", Role.APPROVER, "initiator-acme"
    )
    await same.sign_in("acme-maker", Role.APPROVER)
    await same.open("/console/approvals")
    card = same.page.locator("section.card", has_text=transfer_id)
    status, shown = await same.refused(card.locator("form").first, f"Approve {transfer_id}")
    assert status == 403 and "maker_cannot_approve" in shown, shown

    bob = await console()
    await bob.sign_in("acme", Role.APPROVER)
    await bob.open("/console/approvals")
    await bob.shot("approvals")
    card = bob.page.locator("section.card", has_text=transfer_id)
    await bob.act(card.locator("form").first, f"Approve {transfer_id}")
    assert "Nothing is waiting" in await bob.page.locator("main").inner_text()
    await until_shown(bob, f"/console/transfers/{transfer_id}", "RECONCILED for")
    timeline = await bob.page.locator(".timeline").inner_text()
    assert "ApprovalGranted" in timeline and "approver-acme" in timeline
    assert "Sanctions screenings" not in await bob.page.locator("main").inner_text()
    await bob.shot("transfer-reconciled")
    # Staff also see the screenings and the evidence reconciliation matched.
    await ops.open(f"/console/transfers/{transfer_id}")
    screenings = ops.page.get_by_role("table", name="Every screening")
    assert "creation" in await screenings.inner_text()
    assert "broadcast" in await screenings.inner_text()
    evidence = await ops.page.get_by_role("table", name="What the chain").inner_text()
    assert "No evidence yet" not in evidence
    await ops.shot("transfer-operator")

    case_id = await open_case(api)
    await ops.open("/console/cases")
    await ops.shot("cases")
    await ops.page.get_by_role("link", name=case_id).click()
    await ops.act(form_with(ops, "Take this case"), "Take this case")
    note = form_with(ops, "Add note")
    await note.get_by_label("Note").fill("no client of ours wired this")
    await ops.act(note, "Add note")
    resolve = form_with(ops, "Resolve")
    await resolve.get_by_label("Resolution", exact=True).select_option("false_positive")
    await resolve.get_by_label("Resolution notes").fill("a test wire from the bank")
    await ops.act(resolve, "Resolve")
    assert "FALSE_POSITIVE" in await ops.page.locator("#case-status").inner_text()
    await ops.shot("case-resolved")

    await ops.open("/console/controls")
    freeze = form_with(ops, "Freeze client")
    await freeze.get_by_label("Client").fill("acme")
    await freeze.get_by_label("Reason").fill("KYC review")
    await ops.act(freeze, "Freeze client")
    in_force = ops.page.get_by_role("table", name="In force now")
    assert "KYC review" in await in_force.inner_text()
    await ops.shot("controls")

    await alice.open("/console/transfers/new")
    create = form_with(alice, "Create transfer")
    await create.get_by_label("Amount").fill("10.00")
    await create.get_by_label("Address").fill(WALLET)
    status, shown = await alice.refused(create, "Create transfer")
    assert status == 422 and "client_frozen" in shown
