"""Loading a policy rule set from the console, in a real browser: an operator edits the rule set
in force and brings it into force as the next version (journaled, with who and why); a
document with problems is refused with every problem named and nothing changes; text that is
not JSON never leaves the page. An auditor may read and dry-run the rules but gets no form to
change them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.access import Role
from tests.adapters.http.conftest import Api

pytestmark = pytest.mark.anyio


async def test_an_operator_brings_an_edited_rule_set_into_force(console: Any, api: Api) -> None:
    ops = await console()
    await ops.sign_in("staff", Role.OPERATOR)
    await ops.open("/console/policy")
    form = ops.page.locator("form", has=ops.page.get_by_role("button", name="Bring into force"))
    editor = form.get_by_label("Rule set (JSON)")
    document = json.loads(await editor.input_value())
    assert document["rules"][0]["id"] == "block-over-250k"
    await form.get_by_label("Reason for the change").fill("treasury committee, 2026-12-05")

    rows = await api.journal_rows()
    await editor.fill("{not json")
    await form.get_by_role("button", name="Bring into force").click()
    shown = form.locator(".status.error")
    await shown.wait_for()
    assert "does not parse" in await shown.inner_text()

    bad = {**document, "rules": [{"id": "x", "action": "approve", "approvers": 0}]}
    await editor.fill(json.dumps(bad))
    status, text = await ops.refused(form, "Bring into force")
    assert status == 422 and "policy_invalid" in text and "approvers is 1 to 5" in text
    assert await api.journal_rows() == rows

    document["description"] = "default, reviewed by the treasury committee"
    await editor.fill(json.dumps(document, indent=2))
    await ops.act(form, "Bring into force")
    main = await ops.page.locator("main").inner_text()
    assert "Version 2 (in force)" in main and "by operator-staff: treasury committee" in main
    assert "reviewed by the treasury committee" in main
    assert api.node.system.rules.history[-1].version == 2
    await ops.shot("policy-loaded")

    auditor = await console()
    await auditor.sign_in("staff", Role.AUDITOR)
    await auditor.open("/console/policy")
    assert await auditor.page.get_by_role("button", name="Bring into force").count() == 0
    assert await auditor.page.get_by_role("button", name="Dry run").count() == 1
