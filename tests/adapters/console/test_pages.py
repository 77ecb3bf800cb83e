"""Every console page in a real browser, as every role: the navigation offers exactly the pages
the role may open and a page shows no button its role cannot use; the server refuses such a
request anyway, even sent from the page with the session's token; a client sees only its own
objects (another client's transfer is a 404 page). Accessibility basics hold on every page:
one h1, a language, a label for every field, a caption for every table, a title for every
chart, a name for every button and link, unique ids; a keyboard alone reaches the skip link
first, signs in and approves. Each page is kept as a screenshot under artifacts/console/."""

from __future__ import annotations

from typing import Any

import pytest

from engine.access import Permission, Role, allowed
from tests.adapters.console.conftest import Console
from tests.adapters.console.test_walk import until_shown
from tests.adapters.http.conftest import CLABE, WALLET, Api, wallet_body
from tests.adapters.http.test_discrepancies import open_case

pytestmark = pytest.mark.anyio

PAGES = {
    "/console": Permission.READ,
    "/console/transfers": Permission.READ,
    "/console/approvals": Permission.READ,
    "/console/cases": Permission.OPERATE,
    "/console/controls": Permission.OPERATE,
    "/console/treasury": Permission.OPERATE,
    "/console/balances": Permission.READ,
    "/console/webhooks": Permission.READ,
    "/console/policy": Permission.POLICY,
    "/console/audit": Permission.AUDIT,
}
ROLES = [
    ("acme", Role.VIEWER),
    ("acme", Role.INITIATOR),
    ("acme", Role.APPROVER),
    ("acme", Role.ADMIN),
    ("staff", Role.OPERATOR),
    ("staff", Role.AUDITOR),
]
# Buttons on any page that act on nothing (filters, navigation, the session).
NEUTRAL = {"Sign out", "Filter", "Show balances"}

A11Y = """() => {
  const problems = [];
  const named = (el) => (el.labels && el.labels.length) || el.getAttribute("aria-label");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (!named(el)) problems.push(`field without a label: ${el.name || el.id}`);
  }
  for (const t of document.querySelectorAll("table")) {
    if (!t.querySelector("caption")) problems.push("table without a caption");
  }
  for (const s of document.querySelectorAll("svg")) {
    const titled = s.getAttribute("role") === "img" && s.querySelector("title");
    if (!titled) problems.push("untitled chart");
  }
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  if (!document.documentElement.lang) problems.push("no lang");
  for (const b of document.querySelectorAll("button")) {
    if (!b.textContent.trim()) problems.push("button without a name");
  }
  for (const a of document.querySelectorAll("a")) {
    if (!a.textContent.trim()) problems.push(`link without a name: ${a.href}`);
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  const repeated = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (repeated.length) problems.push(`repeated ids: ${repeated}`);
  return problems;
}"""


async def _world(api: Api) -> dict[str, str]:
    """A client with a transfer waiting for approval, another client's transfer, an open case
    and a webhook endpoint, so every page has something on it."""
    await api.fund("acme")
    await api.fund("globex")
    made = {}
    # Registered first: an endpoint is owed the events that come after it.
    r = await api.http.post(
        "/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["transfer.approval_required"]},
        headers=api.auth("acme", Role.ADMIN),
    )
    assert r.status == 201, await r.text()
    made["endpoint"] = (await r.json())["id"]
    bank = {
        "source_currency": "USD",
        "target_currency": "MXN",
        "amount": "25.00",
        "destination": {"kind": "bank", "country": "MX", "clabe": CLABE, "name": "Ana Ruiz"},
    }
    for client, body in (("acme", wallet_body("12000.00")), ("globex", bank)):
        r = await api.http.post(
            "/v1/transfers",
            json=body,
            headers={**api.auth(client, Role.INITIATOR), "Idempotency-Key": f"pages-{client}"},
        )
        assert r.status == 201, await r.text()
        made[client] = (await r.json())["id"]
    made["case"] = await open_case(api)
    return made


def _may_act(role: Role) -> set[Permission]:
    acting = {Permission.INITIATE, Permission.APPROVE, Permission.OPERATE, Permission.MANAGE}
    return {p for p in acting if allowed(role, p)}


async def _buttons(person: Console) -> set[str]:
    texts = await person.page.locator("main button, header button").all_inner_texts()
    return {t.strip() for t in texts} - NEUTRAL


async def test_each_role_sees_its_pages_and_only_buttons_it_may_use(console: Any, api: Api) -> None:
    made = await _world(api)
    for client, role in ROLES:
        person = await console()
        await person.sign_in(client, role)
        nav = await person.page.get_by_role("navigation", name="Console").locator("a").all()
        shown = {await a.get_attribute("href") for a in nav}
        assert shown == {p for p, need in PAGES.items() if allowed(role, need)}, role
        for path, need in PAGES.items():
            await person.open(path)
            main = await person.page.locator("main").inner_text()
            if not allowed(role, need):
                assert "cannot open this page" in main, (role, path)
                continue
            assert await person.page.evaluate(A11Y) == [], (role, path)
            if not _may_act(role):
                # A role that changes nothing gets no button (the policy dry run stores nothing).
                dry_run = {"Dry run"} if allowed(role, Permission.POLICY) else set()
                assert await _buttons(person) <= dry_run, (role, path)
            if role in (Role.OPERATOR, Role.AUDITOR) or path == "/console/approvals":
                await person.shot(f"{path.strip('/').replace('/', '-')}-{role.value}")
        await person.open(f"/console/transfers/{made['acme']}")
        assert await person.page.evaluate(A11Y) == []
        buttons = await _buttons(person)
        approve = {"Approve", "Reject"} <= buttons
        assert approve == allowed(role, Permission.APPROVE), (role, buttons)
        assert ("Cancel transfer" in buttons) == allowed(role, Permission.INITIATE), role
        if role is Role.VIEWER:
            assert buttons == set()
            # Sent from the page with the session's own token, the server still refuses it.
            answer = await person.page.evaluate(
                """async (id) => {
                  const csrf = document.querySelector('meta[name="csrf-token"]').content;
                  const r = await fetch(`/v1/transfers/${id}/approve`, {method: "POST",
                    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                    body: "{}"});
                  return [r.status, (await r.json()).code];
                }""",
                made["acme"],
            )
            assert answer == [403, "forbidden"]
            await person.open(f"/console/transfers/{made['globex']}")
            assert "404 not_found" in await person.page.locator("main").inner_text()
            await person.shot("another-clients-transfer")
    ops = await console()
    await ops.sign_in("staff", Role.OPERATOR)
    await ops.open(f"/console/transfers/{made['globex']}")
    assert CLABE in await ops.page.locator("main").inner_text()
    await ops.shot("transfer-bank")
    auditor = await console()
    await auditor.sign_in("staff", Role.AUDITOR)
    await auditor.open(f"/console/transfers/{made['acme']}")
    who = await auditor.page.get_by_role("table", name="The audit log's records").inner_text()
    assert "create_transfer" in who
    await auditor.shot("transfer-auditor")
    # The policy dry run answers on the page and stores nothing.
    rows = await api.journal_rows()
    await auditor.open("/console/policy")
    dry_run = auditor.page.locator("form", has=auditor.page.get_by_role("button", name="Dry run"))
    await dry_run.get_by_label("Client").fill("acme")
    await dry_run.get_by_label("Amount").fill("50.00")
    await dry_run.get_by_label("Wallet address").fill(WALLET)
    await dry_run.get_by_role("button", name="Dry run").click()
    answer = auditor.page.locator("#dry-run-answer")
    await answer.filter(has_text="allow-up-to-10k").wait_for()
    assert await api.journal_rows() == rows
    await auditor.shot("policy-dry-run")
    # The endpoint on port 9 refuses every delivery; the transfer page shows each attempt.
    await until_shown(ops, f"/console/transfers/{made['acme']}", "transfer.approval_required")
    sent = await ops.page.get_by_role("table", name="Every delivery attempt").inner_text()
    assert made["endpoint"] in sent and ("failed" in sent or "pending" in sent)
    await ops.open(f"/console/webhooks?endpoint={made['endpoint']}&client_id=acme")
    assert await ops.page.evaluate(A11Y) == []
    await ops.shot("webhook-deliveries")
    await ops.open(f"/console/cases/{made['case']}")
    await ops.page.get_by_role("link", name="runbook").click()
    assert "Case: external only" in await ops.page.locator("h1").inner_text()
    assert await ops.page.evaluate(A11Y) == []
    await ops.shot("runbook")


async def test_the_keyboard_alone_signs_in_and_approves(console: Any, api: Api) -> None:
    made = await _world(api)
    bob = await console()
    page = bob.page
    await bob.open("/console/sign-in")
    assert await page.evaluate(A11Y) == []
    await bob.shot("sign-in")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "api-key"
    await page.keyboard.type(api.keys[("acme", Role.APPROVER)])
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await bob.open("/console/approvals")
    focused = ""
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent.trim()")
        if focused == f"Approve {made['acme']}":
            break
    assert focused == f"Approve {made['acme']}"
    async with page.expect_event("load"):
        await page.keyboard.press("Enter")
    assert "Nothing is waiting" in await page.locator("main").inner_text()
