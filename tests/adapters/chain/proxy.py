"""A JSON-RPC proxy on 127.0.0.1 in front of a node, for the drills: it passes every request on,
but the first `eth_sendRawTransaction` it sees reaches the node and its answer is held back for
`hold_s` (longer than the client's deadline): a node that accepted a transaction and then timed
out. Runs its own event loop in a thread; `close()` stops it."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
from aiohttp import web

from adapters.chain.anvil import free_port


class StallingProxy:
    def __init__(self, upstream: str, hold_s: float = 3.0) -> None:
        self.upstream = upstream
        self.hold_s = hold_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.held = 0
        self.sends = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:

            async def forward(request: web.Request) -> web.Response:
                body = await request.read()
                async with session.post(
                    self.upstream, data=body, headers={"Content-Type": "application/json"}
                ) as answer:
                    payload = await answer.read()
                if b"eth_sendRawTransaction" in body:
                    self.sends += 1
                    if self.held == 0:
                        self.held += 1
                        await asyncio.sleep(self.hold_s)
                return web.Response(body=payload, content_type="application/json")

            app = web.Application()
            app.router.add_post("/", forward)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
