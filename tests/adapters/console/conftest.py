"""The console in a real browser: Debian's chromium (installed by the Makefile), headless,
driven by Playwright's Python client, against the service's real aiohttp server on 127.0.0.1
(the `api` fixture: store, actors and the simulated world at 50x).

Every page a test visits is kept as a PNG under artifacts/console/ for people to look at."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    async_playwright,
)

from engine.access import Role
from tests.adapters.http.conftest import Api, api  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "artifacts" / "console"
CHROMIUM = shutil.which("chromium")
# As the machine's probe starts it: no sandbox (root in CI), and none of the background
# connections a closed network refuses.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait in a browser test is bounded.
TIMEOUT_MS = 20_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM is not None, "Debian's chromium is missing: `make test` installs it"
    async with async_playwright() as pw:
        found = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield found
        finally:
            await found.close()


@dataclasses.dataclass
class Console:
    """One person's browser (its own cookie jar) on the console."""

    api: Api
    page: Page
    base: str

    async def open(self, path: str) -> None:
        await self.page.goto(self.base + path)

    async def sign_in(self, client: str, role: Role) -> None:
        await self.open("/console/sign-in")
        await self.page.get_by_label("API key").fill(self.api.keys[(client, role)])
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_url(re.compile(r".*/console(\?.*)?$"))

    async def sign_out(self) -> None:
        await self.page.get_by_role("button", name="Sign out").click()
        await self.page.wait_for_url(re.compile(r".*/console/sign-in$"))

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    async def act(self, form: Locator, button: str) -> Response:
        """Press a form's button, expecting the API to accept it and the page to load again
        (reloaded, or the next page the form names)."""
        async with (
            self.page.expect_response(_api_write) as answer,
            self.page.expect_event("load"),
        ):
            await form.get_by_role("button", name=button).click()
        found = await answer.value
        assert found.ok, f"{found.status} {await found.text()}"
        return found

    async def refused(self, form: Locator, button: str) -> tuple[int, str]:
        """Press a form's button, expecting a refusal: its status and the text the form shows."""
        async with self.page.expect_response(_api_write) as answer:
            await form.get_by_role("button", name=button).click()
        found = await answer.value
        assert not found.ok, found.status
        shown = form.locator(".status.error")
        await shown.wait_for()
        return found.status, str(await shown.inner_text())


def _api_write(response: Response) -> bool:
    return response.request.method != "GET" and "/v1/" in response.url


@pytest.fixture
async def console(
    api: Api,  # noqa: F811 (the fixture imported above)
    browser: Browser,
) -> AsyncIterator[Any]:
    """A factory: each call is a new person in a new browser context."""
    contexts = []
    base = str(api.http.make_url("")).rstrip("/")

    # What the browser itself complained of: a script error, a blocked resource (the
    # Content-Security-Policy), anything but the API's own refusals the tests ask for.
    complaints: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            complaints.append(message.text)

    async def person() -> Console:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("console", heard)
        page.on("pageerror", lambda error: complaints.append(f"page error: {error}"))
        return Console(api=api, page=page, base=base)

    try:
        yield person
    finally:
        for context in contexts:
            await context.close()
    assert complaints == [], complaints
