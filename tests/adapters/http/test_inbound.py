"""`POST /v1/inbound/{provider}`: messages signed by the `standardwebhooks` reference library are
accepted once and their raw payload kept; a bad, stale or missing signature, an unknown provider
or a payload the provider does not send is refused and leaves the journal as it was; the bank's
statement feed keeps each line once, and a line a statement file could not hold is refused."""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from engine.access import Role
from tests.adapters.http.conftest import INBOUND_SECRETS, Api
from tests.adapters.http.test_api import check_conforms

pytestmark = pytest.mark.anyio
PATH = "/v1/inbound/{provider}"


def signed(
    provider: str, body: bytes, *, age_s: int = 0, secret: str | None = None
) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    at = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(seconds=age_s)
    signature = Webhook(secret or INBOUND_SECRETS[provider]).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


async def post(api: Api, provider: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    r = await api.http.post(f"/v1/inbound/{provider}", data=body, headers=headers)
    raw = await r.read()
    check_conforms(PATH, "POST", r.status, raw, r.headers.get("Content-Type", ""))
    return r.status, json.loads(raw)


def notice(reference: str, amount: str = "250.00") -> bytes:
    return json.dumps(
        {
            "reference": reference,
            "client_id": "acme",
            "currency": "USD",
            "amount": amount,
            "booked_at": "2026-11-29T10:00:00Z",
        }
    ).encode()


async def usd_available(api: Api) -> str:
    r = await api.http.get("/v1/balances", headers=api.auth("acme", Role.VIEWER))
    found = [b["available"] for b in (await r.json())["data"] if b["currency"] == "USD"]
    return found[0] if found else "0.00"


async def test_a_bank_credit_is_credited_once_and_its_raw_payload_kept(api: Api) -> None:
    body = notice("SPEI-0001")
    for _ in range(3):  # the bank redelivers; each delivery is signed anew
        status, answer = await post(api, "bank-sim", body, signed("bank-sim", body))
        assert status == 202 and answer["received"] is True
    assert await usd_available(api) == "250.00"
    row = await api.node.store.reader.fetchone(
        "SELECT raw_payload, count(*) FROM external_events WHERE provider = 'bank-sim'"
        " AND external_ref = 'SPEI-0001'"
    )
    assert row is not None and row[1] == 1 and bytes(row[0]) == body


async def test_a_later_notice_under_the_same_reference_credits_nothing_new(api: Api) -> None:
    first = notice("SPEI-0009", amount="100.00")
    status, _ = await post(api, "bank-sim", first, signed("bank-sim", first))
    assert status == 202
    other = json.dumps(
        {**json.loads(notice("SPEI-0009", amount="900.00")), "booked_at": "2026-11-30T09:00:00Z"}
    ).encode()
    status, _ = await post(api, "bank-sim", other, signed("bank-sim", other))
    assert status == 202
    assert await usd_available(api) == "100.00"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong secret", (401, "signature_invalid")),
        ("stale", (401, "signature_invalid")),
        ("unsigned", (401, "signature_invalid")),
        ("tampered", (401, "signature_invalid")),
        ("unknown provider", (404, "provider_unknown")),
        ("not a notice", (422, "payload_invalid")),
        ("unknown field", (422, "payload_invalid")),
        ("negative amount", (422, "amount_negative")),
    ],
)
async def test_refusals_leave_the_journal_untouched(
    api: Api, case: str, expected: tuple[int, str]
) -> None:
    body = notice("SPEI-0002")
    provider = "bank-sim"
    headers = signed(provider, body)
    match case:
        case "wrong secret":
            headers = signed(provider, body, secret=INBOUND_SECRETS["bitso-sim"])
        case "stale":
            headers = signed(provider, body, age_s=3600)
        case "unsigned":
            headers = {"Content-Type": "application/json"}
        case "tampered":
            body = notice("SPEI-0002", amount="25000.00")
        case "unknown provider":
            provider = "acme-bank"
        case "not a notice":
            body = b'{"hello": "world"}'
            headers = signed(provider, body)
        case "unknown field":
            body = json.dumps({**json.loads(notice("SPEI-0003")), "extra": 1}).encode()
            headers = signed(provider, body)
        case "negative amount":
            body = notice("SPEI-0004", amount="-5.00")
            headers = signed(provider, body)
    before = await api.journal_rows()
    status, answer = await post(api, provider, body, headers)
    assert (status, answer["code"]) == expected, answer
    assert await api.journal_rows() == before


async def test_an_offramp_message_it_does_not_send_is_refused(api: Api) -> None:
    body = b'{"provider_trade_id": 7}'
    before = await api.journal_rows()
    status, answer = await post(api, "bitso-sim", body, signed("bitso-sim", body))
    assert (status, answer["code"]) == (422, "payload_invalid")
    assert await api.journal_rows() == before


def statement_line(line_id: str, amount: str = "1234.56") -> bytes:
    return json.dumps(
        {
            "kind": "statement_line",
            "line_id": line_id,
            "booked_at": "2026-11-29T10:00:00Z",
            "amount": amount,
            "currency": "USD",
            "direction": "credit",
            "reference": "WIRE-77",
            "counterparty": "ACME SA",
        }
    ).encode()


async def test_the_banks_statement_feed_keeps_each_line_once_and_refuses_a_bad_one(
    api: Api,
) -> None:
    body = statement_line("L-77")
    status, answer = await post(api, "bank-sim", body, signed("bank-sim", body))
    assert (status, answer) == (202, {"received": True, "provider": "bank-sim"})
    again = signed("bank-sim", body)  # a redelivery: a new message id, the same line
    assert (await post(api, "bank-sim", body, again))[0] == 202
    rows = await api.node.store.reader.fetchall(
        "SELECT external_ref, event_type, json_extract(normalized_data, '$.amount')"
        " FROM external_events WHERE provider = 'bank-sim'"
    )
    assert rows == [("L-77", "statement_line", "123456")]
    before = await api.journal_rows()
    bad = statement_line("L-78", amount="-3.00")
    status, answer = await post(api, "bank-sim", bad, signed("bank-sim", bad))
    assert (status, answer["code"]) == (422, "payload_invalid")
    assert await api.journal_rows() == before
