"""The JSON-RPC client against a scripted HTTP server on 127.0.0.1: a batch's answers come back
in the order asked whatever order the server sends them in; a 503 or a body that is not JSON-RPC
is retried (bounded) and then is RpcUnreachable; a JSON-RPC error is the node's answer, raised at
once and never retried; the URL shown in errors hides what could be an API key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.chain.rpc import JsonRpc, RpcError, RpcUnreachable, redacted

pytestmark = pytest.mark.anyio

Script = Callable[[Any], web.Response]
Server = tuple[str, list[Script], list[object]]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A server answering each request with the next script (the last one repeats)."""
    scripts: list[Script] = []
    seen: list[object] = []

    async def handle(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        seen.append(body)
        return scripts[min(len(seen), len(scripts)) - 1](body)

    app = web.Application()
    app.router.add_post("/v2/SECRETKEY", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v2/SECRETKEY", scripts, seen
    await runner.cleanup()


def _results(body: object) -> web.Response:
    assert isinstance(body, list)
    answers = [{"jsonrpc": "2.0", "id": c["id"], "result": c["method"]} for c in body]
    return web.json_response(list(reversed(answers)))


async def test_a_batch_comes_back_in_the_order_asked(
    server: Server,
) -> None:
    url, scripts, _ = server
    scripts.append(_results)
    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(url, session)
        found = await rpc.batch([("eth_blockNumber", ()), ("eth_chainId", ()), ("net_version", ())])
    assert found == ["eth_blockNumber", "eth_chainId", "net_version"]


async def test_an_overloaded_node_is_retried_then_answers(
    server: Server,
) -> None:
    url, scripts, seen = server
    scripts += [
        lambda _: web.Response(status=503),
        lambda _: web.Response(text="<html>gateway</html>"),
        lambda body: web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": "0x1"}),
    ]
    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(url, session, attempts=3)
        assert await rpc.call("eth_chainId") == "0x1"
    assert len(seen) == 3 and rpc.retries == 2


async def test_no_usable_answer_ends_unreachable_naming_no_key(
    server: Server,
) -> None:
    url, scripts, seen = server
    scripts.append(lambda _: web.Response(status=502))
    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(url, session, attempts=2)
        with pytest.raises(RpcUnreachable) as failed:
            await rpc.call("eth_chainId")
    assert len(seen) == 2
    assert "HTTP 502" in str(failed.value) and "SECRETKEY" not in str(failed.value)


async def test_a_node_error_is_raised_at_once(
    server: Server,
) -> None:
    url, scripts, seen = server
    scripts.append(
        lambda body: web.json_response(
            {
                "jsonrpc": "2.0",
                "id": body["id"],
                "error": {"code": -32000, "message": "nonce too low"},
            }
        )
    )
    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(url, session)
        with pytest.raises(RpcError) as refused:
            await rpc.call("eth_sendRawTransaction", "0x02")
    assert (refused.value.code, refused.value.message) == (-32000, "nonce too low")
    assert len(seen) == 1


def test_the_url_is_shown_without_its_path() -> None:
    assert (
        redacted("https://eth-mainnet.example:8443/v2/KEY?x=1")
        == "https://eth-mainnet.example:8443"
    )
