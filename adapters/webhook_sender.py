"""Sends one webhook attempt over HTTP (aiohttp), within a deadline, to a URL checked again for
private addresses before each attempt (unless the configuration allows them)."""

from __future__ import annotations

import time

import aiohttp

from adapters.http.urls import refusal
from engine import limits
from engine.webhooks import Sent

_ERROR_LENGTH_MAX = 300


class HttpSender:
    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSender:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=limits.webhook_timeout_s),
            headers={"User-Agent": "stablerail-webhooks/1"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Sent:
        assert self.session is not None, "use HttpSender as an async context manager"
        started = time.perf_counter()
        why = await refusal(url, allow_private=self.allow_private)
        if why is not None:
            return Sent(http_status=None, error=why, duration_ms=0)
        try:
            async with self.session.post(url, data=body, headers=headers,
                                         allow_redirects=False) as response:  # fmt: skip
                await response.read()
                status: int | None = response.status
                error = None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            status = None
            error = (f"{type(e).__name__}: {e}")[:_ERROR_LENGTH_MAX]
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        return Sent(http_status=status, error=error, duration_ms=elapsed_ms)
