"""Console sessions over plain HTTP (no browser needed): the key is checked once and never comes
back in a page or a cookie; the cookie is HttpOnly and SameSite=Strict; a session-signed write
without the session's CSRF token, or from another origin, is refused and changes nothing; with
it, the API route acts and the audit log says it came through the console; revoking the key
ends its sessions; signing out needs the token; a bad key is a 401 page; after sign-in the
console only ever sends a person to one of its own pages. The session store's idle and absolute
expiry and its bound are checked on a fake clock."""

from __future__ import annotations

import re
from typing import Any

import pytest

from adapters.http.sessions import COOKIE, CSRF_HEADER, Sessions
from engine.access import Role
from tests.adapters.http.conftest import Api

pytestmark = pytest.mark.anyio
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


async def sign_in(api: Api, client: str, role: Role, next_path: str = "/console") -> Any:
    """A fresh cookie jar signed in as that key; the sign-in answer."""
    api.http.session.cookie_jar.clear()
    return await api.http.post(
        "/console/sign-in",
        data={"api_key": api.keys[(client, role)], "next": next_path},
        allow_redirects=False,
    )


async def csrf_token(api: Api) -> str:
    page = await (await api.http.get("/console")).text()
    found = _CSRF.search(page)
    assert found is not None, page[:500]
    return found.group(1)


async def test_the_key_is_checked_once_and_only_a_session_cookie_is_held(api: Api) -> None:
    key = api.keys[("staff", Role.OPERATOR)]
    r = await sign_in(api, "staff", Role.OPERATOR)
    assert (r.status, r.headers["Location"]) == (303, "/console")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and key not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    for path in ("/console", "/console/transfers", "/console/cases", "/console/balances"):
        page = await api.http.get(path)
        assert page.status == 200, path
        assert key not in await page.text()
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


async def test_signing_in_again_starts_a_new_session_and_ends_the_old(api: Api) -> None:
    await sign_in(api, "staff", Role.OPERATOR)
    first = api.http.session.cookie_jar.filter_cookies(api.http.make_url("/"))[COOKIE].value
    r = await api.http.post(
        "/console/sign-in",
        data={"api_key": api.keys[("acme", Role.VIEWER)]},
        allow_redirects=False,
    )
    second = api.http.session.cookie_jar.filter_cookies(api.http.make_url("/"))[COOKIE].value
    assert r.status == 303 and second != first
    assert (await api.http.get("/v1/transfers", cookies={COOKIE: first})).status == 401
    assert (await api.http.get("/v1/transfers", cookies={COOKIE: second})).status == 200


async def test_a_write_without_the_token_or_from_another_origin_changes_nothing(api: Api) -> None:
    await sign_in(api, "staff", Role.OPERATOR)
    token = await csrf_token(api)
    body = {"reason": "KYC review"}
    rows = await api.journal_rows()
    r = await api.http.post("/v1/ops/clients/acme/freeze", json=body)
    assert (r.status, (await r.json())["code"]) == (403, "csrf_invalid")
    r = await api.http.post(
        "/v1/ops/clients/acme/freeze", json=body, headers={CSRF_HEADER: "not-the-token"}
    )
    assert (r.status, (await r.json())["code"]) == (403, "csrf_invalid")
    r = await api.http.post(
        "/v1/ops/clients/acme/freeze",
        json=body,
        headers={CSRF_HEADER: token, "Origin": "https://evil.example"},
    )
    assert (r.status, (await r.json())["code"]) == (403, "csrf_invalid")
    assert await api.journal_rows() == rows

    r = await api.http.post("/v1/ops/clients/acme/freeze", json=body, headers={CSRF_HEADER: token})
    assert (r.status, (await r.json())["state"]) == (200, "frozen")
    audit = await api.http.get(
        "/v1/ops/audit?action=freeze_client", headers=api.auth("staff", Role.AUDITOR)
    )
    records = (await audit.json())["data"]
    accepted = [a for a in records if a["outcome"] == "ok"]
    assert len(accepted) == 1 and accepted[0]["metadata"]["via"] == "console"
    assert accepted[0]["actor_id"] == "operator-staff"
    refused = [a for a in records if a["outcome"] == "csrf_invalid"]
    assert len(refused) == 3


async def test_a_session_has_its_keys_role_and_tenant(api: Api) -> None:
    await sign_in(api, "acme", Role.VIEWER)
    assert (await api.http.get("/v1/transfers")).status == 200
    r = await api.http.get("/v1/ops/discrepancies")
    assert (r.status, (await r.json())["code"]) == (403, "forbidden")
    page = await api.http.get("/console/cases")
    assert page.status == 403 and "cannot open this page" in await page.text()
    page = await api.http.get("/console/transfers?client_id=globex")
    assert page.status == 200  # a client key's client_id changes nothing: it sees its own


async def test_a_filter_forms_blank_fields_are_dropped(api: Api) -> None:
    await sign_in(api, "staff", Role.OPERATOR)
    r = await api.http.get("/console/transfers?status=&client_id=", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/console/transfers")
    r = await api.http.get("/console/audit?actor=&action=x&to=", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/console/audit?action=x")
    r = await api.http.get("/console/transfers?status=CREATED&client_id=acme")
    assert r.status == 200
    r = await api.http.get("/console/transfers?status=NOPE")
    assert r.status == 422 and "status is one of" in await r.text()


async def test_revoking_the_key_ends_its_sessions(api: Api) -> None:
    await sign_in(api, "acme", Role.ADMIN)
    assert (await api.http.get("/v1/transfers")).status == 200
    key_id = "ak_" + api.keys[("acme", Role.ADMIN)].split("_")[2]
    r = await api.http.delete(f"/v1/api-keys/{key_id}", headers=api.auth("staff", Role.OPERATOR))
    assert r.status == 200, await r.text()
    r = await api.http.get("/v1/transfers")
    assert (r.status, (await r.json())["code"]) == (401, "unauthorized")
    page = await api.http.get("/console", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/console/sign-in")


async def test_signing_out_needs_the_token_and_ends_the_session(api: Api) -> None:
    await sign_in(api, "staff", Role.OPERATOR)
    token = await csrf_token(api)
    r = await api.http.post("/console/sign-out", data={"csrf": "forged"}, allow_redirects=False)
    assert r.status == 403
    assert (await api.http.get("/v1/transfers")).status == 200
    cookie = api.http.session.cookie_jar.filter_cookies(api.http.make_url("/"))[COOKIE].value
    r = await api.http.post("/console/sign-out", data={"csrf": token}, allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (303, "/console/sign-in")
    r = await api.http.get("/v1/transfers", cookies={COOKIE: cookie})
    assert r.status == 401


async def test_a_bad_key_is_a_401_page_and_the_next_page_is_always_our_own(api: Api) -> None:
    api.http.session.cookie_jar.clear()
    r = await api.http.post("/console/sign-in", data={"api_key": "sk_test_nope"})
    assert r.status == 401 and "not one this server knows" in await r.text()
    assert COOKIE not in {c.key for c in api.http.session.cookie_jar}
    # A refused sign-in with a well-formed key is audited with the key id it presented.
    text = api.keys[("acme", Role.VIEWER)]
    wrong = text[:-4] + ("0000" if not text.endswith("0000") else "1111")
    r = await api.http.post("/console/sign-in", data={"api_key": wrong})
    assert r.status == 401
    audit = await api.http.get(
        "/v1/ops/audit?action=console_sign_in", headers=api.auth("staff", Role.AUDITOR)
    )
    refused = [a for a in (await audit.json())["data"] if a["actor_type"] == "anonymous"]
    assert [a["metadata"].get("presented_key_id") for a in refused] == [
        "ak_" + text.split("_")[2],
        None,
    ]
    for target in ("https://evil.example/", "//evil.example/console", "/v1/transfers"):
        r = await sign_in(api, "staff", Role.OPERATOR, target)
        assert r.headers["Location"] == "/console", target
    r = await sign_in(api, "staff", Role.OPERATOR, "/console/cases?status=OPEN")
    assert r.headers["Location"] == "/console/cases?status=OPEN"
    r = await api.http.post(
        "/console/sign-in",
        data={"api_key": api.keys[("staff", Role.OPERATOR)]},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert r.status == 403


def test_sessions_expire_when_idle_or_old_and_are_bounded() -> None:
    now = [0.0]
    live = Sessions(idle_s=60, absolute_s=300, limit=2, now=lambda: now[0])
    token, session = live.open("ak_1")
    assert live.find(token) is session and session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None) and not session.csrf_matches("x")
    now[0] = 59
    assert live.find(token) is session  # used: its idle time starts again
    now[0] = 118
    assert live.find(token) is session
    now[0] = 179
    assert live.find(token) is None  # idle for 61 s
    token, _ = live.open("ak_1")
    for t in range(0, 300, 50):
        now[0] = 179 + t
        assert live.find(token) is not None
    now[0] = 179 + 301
    assert live.find(token) is None  # older than 300 s, however busy
    first, _ = live.open("ak_1")
    second, _ = live.open("ak_2")
    third, _ = live.open("ak_3")
    assert live.find(first) is None and live.find(second) is not None and len(live) == 2
    live.close(second)
    assert live.find(second) is None and live.find(third) is not None
