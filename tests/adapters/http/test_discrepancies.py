"""The reconciliation queue over the API: a case is listed with its severity, confidence, SLA and
age bucket, filtered by status and type; an operator takes it and adds notes; a write-off to
suspense is a correcting posting that waits for a second operator (the proposer cannot approve
it, even with another key), is posted to the ledger when approved, and closes the case for good;
bad input is a clear 4xx that changes nothing; the summary counts it all and shows each held
account's latest balance reading."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from actors.evidence import record_evidence
from engine import discrepancies as dc
from engine.access import Role
from engine.balances import BALANCE_READING, Reading
from engine.reconciliation import CERTAIN, Finding, Kind, Severity, Source
from engine.records import Committed
from tests.adapters.http.conftest import Api
from tests.adapters.http.test_api import call, route

pytestmark = pytest.mark.anyio

UNKNOWN_WIRE = Finding(
    kind=Kind.EXTERNAL_ONLY, severity=Severity.HIGH, confidence=CERTAIN, source=Source.BANK,
    transfer_id=None, evidence_ids=("ex_01M8802WK0T8J0G8YM99C3ZBYF",), expected={},
    actual={"amount": "50000", "currency": "USD", "key": "WIRE7"},
)  # fmt: skip
WRITE_OFF = [
    {"account": "bank:bank-sim", "currency": "USD", "debit": "500.00"},
    {"account": "suspense", "currency": "USD", "credit": "500.00"},
]


async def open_case(api: Api) -> str:
    ctx = api.node.system.ctx
    opened = dc.open_case(ctx.ids.new("dc"), UNKNOWN_WIRE, ctx.clock.now_us())
    assert isinstance(await api.node.store.append(opened.discrepancy_id, 0, [opened]), Committed)
    return opened.discrepancy_id


async def act(
    api: Api, case_id: str, verb: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    path = f"/v1/ops/discrepancies/{case_id}/{verb}"
    return await call(
        api, route("POST", f"/v1/ops/discrepancies/{{id}}/{verb}"), path, headers, body
    )


async def test_a_write_off_is_worked_proposed_approved_and_posted(api: Api) -> None:
    ops = api.auth("staff", Role.OPERATOR)
    case_id = await open_case(api)
    listing = route("GET", "/v1/ops/discrepancies")
    status, page = await call(
        api, listing, "/v1/ops/discrepancies?status=open&type=external_only", ops
    )
    assert status == 200 and [c["id"] for c in page["data"]] == [case_id]
    case = page["data"][0]
    assert (case["status"], case["severity"], case["confidence"], case["age_bucket"]) == (
        "OPEN", "HIGH", "1.00", "0-24h",
    )  # fmt: skip
    assert case["sla_breached"] is False and case["observed"]["key"] == "WIRE7"
    status, page = await call(api, listing, "/v1/ops/discrepancies?type=fee_mismatch", ops)
    assert (status, page["data"]) == (200, [])

    status, case = await act(api, case_id, "assign", ops)
    assert (status, case["status"], case["owner"]) == (200, "INVESTIGATING", "operator-staff")
    status, case = await act(api, case_id, "notes", ops, {"note": "no client wired this"})
    assert status == 200 and [n["text"] for n in case["notes"]] == ["no client wired this"]

    rows_before = await api.journal_rows()
    status, problem = await act(
        api, case_id, "resolve", ops, {"resolution": "written_off", "notes": "parked"}
    )
    assert (status, problem["code"]) == (422, "correction_invalid")
    assert "suspense" in problem["detail"] and await api.journal_rows() == rows_before

    body = {"resolution": "written_off", "notes": "no payer found", "correction": WRITE_OFF}
    status, case = await act(api, case_id, "resolve", ops, body)
    assert (status, case["status"]) == (202, "INVESTIGATING")
    assert case["proposal"]["correction"] == WRITE_OFF and case["correction"] == []
    again = await api.add_key(None, Role.OPERATOR, "operator-staff")
    status, problem = await act(api, case_id, "approve", {"Authorization": f"Bearer {again}"}, {})
    assert (status, problem["code"]) == (403, "maker_cannot_approve")
    second = await api.add_key(None, Role.OPERATOR, "second-operator")
    status, case = await act(api, case_id, "approve", {"Authorization": f"Bearer {second}"}, {})
    assert status == 200, case
    assert (case["status"], case["resolved_by"], case["approved_by"]) == (
        "WRITTEN_OFF", "operator-staff", "second-operator",
    )  # fmt: skip
    assert case["correction"] == WRITE_OFF and case["age_bucket"] is None

    lines = await api.node.store.reader.fetchall(
        "SELECT account_id, debit_amount, credit_amount, entry_type FROM ledger_entries"
        " WHERE account_id = 'suspense'"
    )
    assert lines == [("suspense", 0, 500_00, "ADJUSTMENT")]
    events = [r.event_type for r in await api.node.store.stream(case_id)]
    assert events == [
        "DiscrepancyOpened", "DiscrepancyAssigned", "DiscrepancyNoted",
        "DiscrepancyResolutionProposed", "DiscrepancyResolved",
    ]  # fmt: skip
    status, problem = await act(api, case_id, "notes", ops, {"note": "late"})
    assert (status, problem["code"]) == (409, "discrepancy_closed")
    # Every step, refused ones too, is in the audit log under its own action.
    audited = await api.node.store.reader.fetchall(
        "SELECT action_type, outcome FROM audit_log WHERE resource_type = 'discrepancies'"
        " ORDER BY seq"
    )
    assert audited == [
        ("assign_discrepancy", "ok"), ("note_discrepancy", "ok"),
        ("resolve_discrepancy", "correction_invalid"), ("resolve_discrepancy", "ok"),
        ("approve_correction", "maker_cannot_approve"), ("approve_correction", "ok"),
        ("note_discrepancy", "discrepancy_closed"),
    ]  # fmt: skip

    status, summary = await call(
        api, route("GET", "/v1/ops/reconciliation/summary"), "/v1/ops/reconciliation/summary", ops
    )
    assert status == 200
    assert summary["open_discrepancies"] == 0
    assert summary["discrepancies"]["by_status"]["WRITTEN_OFF"] == 1
    assert summary["discrepancies"]["by_type"]["external_only"] == 1
    assert {s["source"] for s in summary["sources"]} == {"chain", "bank", "provider"}


async def test_a_rejected_proposal_leaves_the_case_open_and_bad_input_changes_nothing(
    api: Api,
) -> None:
    ops = api.auth("staff", Role.OPERATOR)
    case_id = await open_case(api)
    body = {"resolution": "written_off", "notes": "x", "correction": WRITE_OFF}
    assert (await act(api, case_id, "resolve", ops, body))[0] == 202
    second = {"Authorization": f"Bearer {await api.add_key(None, Role.OPERATOR, 'bo')}"}
    status, case = await act(api, case_id, "reject", second, {"reason": "wrong bank"})
    assert (status, case["status"], case["proposal"]) == (200, "OPEN", None)
    assert case["notes"][-1]["text"] == "proposal rejected: wrong bank"
    rows = await api.journal_rows()
    for bad, code in (
        ({"resolution": "matched", "notes": "x"}, "field_invalid"),
        ({"resolution": "false_positive", "notes": "x", "correction": WRITE_OFF},
         "correction_invalid"),
        ({"resolution": "resolved", "notes": "x", "correction": WRITE_OFF[:1]},
         "correction_invalid"),
        ({"resolution": "resolved", "notes": "x", "correction": [
            {"account": "client:acme:held", "currency": "USD", "debit": "1.00"},
            {"account": "suspense", "currency": "USD", "credit": "1.00"}]}, "correction_invalid"),
        ({"resolution": "resolved", "notes": "x", "correction": [
            {"account": "suspense", "currency": "USD", "debit": "1.00", "credit": "1.00"}]},
         "correction_invalid"),
        ({"resolution": "resolved", "notes": "   "}, "command_malformed"),
    ):  # fmt: skip
        status, problem = await act(api, case_id, "resolve", ops, bad)
        assert (status, problem["code"]) == (422, code), (bad, problem)
    assert await api.journal_rows() == rows
    status, problem = await act(api, "dc_01M8802WK0T8J0G8YM99C3ZBYF", "resolve", ops,
                                {"resolution": "resolved", "notes": "x"})  # fmt: skip
    assert (status, problem["code"]) == (404, "discrepancy_not_found")
    listing = route("GET", "/v1/ops/discrepancies")
    status, problem = await call(api, listing, "/v1/ops/discrepancies?type=bogus", ops)
    assert (status, problem["code"]) == (422, "parameter_invalid")
    viewer = api.auth("acme", Role.VIEWER)
    status, problem = await call(api, listing, "/v1/ops/discrepancies", viewer)
    assert status == 403


async def test_the_summary_shows_each_held_accounts_latest_balance_reading(api: Api) -> None:
    ctx = api.node.system.ctx
    account = "treasury:ethereum:0x" + "aa" * 20
    for external, at in ((1_000_000, 1), (1_250_000, 2)):  # the later reading is the one shown
        reading = Reading(
            source=Source.CHAIN, holder="chain:ethereum", account=account, currency="USDC",
            ledger=1_000_000, external=external, low=-10, high=0, at=at,
        )  # fmt: skip
        await record_evidence(
            ctx, provider=reading.holder, event_type=BALANCE_READING,
            external_ref=f"{account}/USDC/{at}", occurred_at=ctx.clock.now_us(),
            transfer_id=None, normalized=reading.normalized(), raw=msgspec.json.encode(reading),
        )  # fmt: skip
    ops = api.auth("staff", Role.OPERATOR)
    status, summary = await call(
        api, route("GET", "/v1/ops/reconciliation/summary"), "/v1/ops/reconciliation/summary", ops
    )
    assert status == 200
    [shown] = [b for b in summary["balances"] if b["account"] == account]
    assert (shown["ledger"], shown["holder_reports"], shown["drift"]) == (
        "1.000000", "1.250000", "0.250000",
    )  # fmt: skip
    assert shown["in_flight"] == {"low": "-0.000010", "high": "0.000000"}
    assert shown["explained"] is False and shown["source"] == "chain"
