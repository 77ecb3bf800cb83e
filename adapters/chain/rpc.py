"""Ethereum JSON-RPC 2.0 over HTTP (aiohttp): one call or a batch, each with a deadline.

Two kinds of failure, kept apart because they mean different things:
- `RpcUnreachable`: no answer (refused, reset, a deadline, an HTTP 5xx or 429, a body that is not
  JSON-RPC). Retried here, a bounded number of times with growing waits (tenacity); the last one
  is raised. Whether the node acted on the request is not known: a broadcast that ends this way
  is resolved by looking its hash up, never by signing again.
- `RpcError`: the node answered with a JSON-RPC error (`nonce too low`, `execution reverted`).
  Never retried here: the caller reads the message.

The URL is credentials for hosted nodes (an API key in the path), so errors and logs name only
its scheme, host and port.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

call_timeout_s = 10.0
attempts_max = 3
retry_wait_min_s = 0.2
retry_wait_max_s = 2.0
batch_size_max = 100
answer_bytes_max = 64 * 1024 * 1024


_Params = Sequence[object] | dict[str, object]


class RpcUnreachable(Exception):
    """The node gave no usable answer."""


class RpcError(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class _Answer(msgspec.Struct):
    id: int | None = None
    result: Any = None
    error: dict[str, Any] | None = None


def redacted(url: str) -> str:
    """The URL as it may be shown: scheme, host and port, nothing that could be a key."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class JsonRpc:
    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = call_timeout_s,
        attempts: int = attempts_max,
    ) -> None:
        self.url = url
        self.where = redacted(url)
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.attempts = attempts
        self._ids = itertools.count(1)
        self.calls = 0
        self.retries = 0

    async def call(self, method: str, *params: object) -> Any:
        [answer] = await self._post([(method, params)])
        return _result(method, answer)

    async def call_named(self, method: str, params: dict[str, object]) -> Any:
        """A call whose params are one object, not a list (anvil_reorg takes one)."""
        [answer] = await self._post([(method, params)])
        return _result(method, answer)

    async def batch(self, calls: Sequence[tuple[str, Sequence[object]]]) -> list[Any]:
        """Many calls, sent `batch_size_max` to an HTTP request; the results in order. A call
        that the node answers with an error raises its RpcError."""
        results: list[Any] = []
        for start in range(0, len(calls), batch_size_max):
            chunk = calls[start : start + batch_size_max]
            answers = await self._post(chunk)
            results.extend(_result(m, a) for (m, _), a in zip(chunk, answers, strict=True))
        return results

    async def _post(self, calls: Sequence[tuple[str, _Params]]) -> list[_Answer]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(min=retry_wait_min_s, max=retry_wait_max_s),
            retry=retry_if_exception_type(RpcUnreachable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.retries += 1
                return await self._post_once(calls)
        raise AssertionError("tenacity stops by raising")  # pragma: no cover

    async def _post_once(self, calls: Sequence[tuple[str, _Params]]) -> list[_Answer]:
        ids = [next(self._ids) for _ in calls]
        body = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": method,
                "params": params if isinstance(params, dict) else list(params),
            }
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        payload = msgspec.json.encode(body if len(body) > 1 else body[0])
        names = ",".join(sorted({m for m, _ in calls}))
        self.calls += len(calls)
        try:
            async with self.session.post(
                self.url,
                data=payload,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise RpcUnreachable(f"{self.where} answered HTTP {response.status} to {names}")
                raw = await response.content.read(answer_bytes_max + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            kind = "no answer in time" if isinstance(e, asyncio.TimeoutError) else repr(e)
            raise RpcUnreachable(f"{self.where}: {names}: {kind}") from None
        if len(raw) > answer_bytes_max:
            raise RpcUnreachable(f"{self.where}: the answer to {names} is too large")
        try:
            decoded = msgspec.json.decode(raw, type=list[_Answer] | _Answer)
        except msgspec.DecodeError:
            raise RpcUnreachable(
                f"{self.where} did not answer {names} in JSON-RPC (HTTP {response.status})"
            ) from None
        answers = decoded if isinstance(decoded, list) else [decoded]
        by_id = {a.id: a for a in answers}
        if len(answers) == 1 and len(calls) == 1 and answers[0].id is None:
            return answers  # an error about the request itself carries no id
        try:
            return [by_id[i] for i in ids]
        except KeyError:
            raise RpcUnreachable(f"{self.where} left calls of a batch unanswered") from None


def _result(method: str, answer: _Answer) -> Any:
    if answer.error is not None:
        error = answer.error
        code = error.get("code")
        raise RpcError(
            method,
            code if isinstance(code, int) else 0,
            str(error.get("message", "")),
            error.get("data"),
        )
    return answer.result
