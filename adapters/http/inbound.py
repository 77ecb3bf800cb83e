"""`POST /v1/inbound/{provider}`: webhooks from the providers and the bank (API.md "Inbound").

Each provider signs the Standard Webhooks way with the secret configured for it
(`[inbound.secrets]`); a provider without one is not accepted (404), a bad or stale signature is
401 and nothing is kept. A genuine message is handed to the engine, which keeps the raw payload
with the evidence it yields, deduplicated by (provider, external_ref, event_type): a redelivery
is answered 202 like the first and adds nothing."""

from __future__ import annotations

from aiohttp import web

from adapters.http.context import CLOCK, CONFIG, json, service
from adapters.http.problems import Problem
from engine import webhooks
from engine.results import Result


async def inbound(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    secret = request.app[CONFIG].inbound_secrets.get(provider)
    if secret is None:
        raise Problem.http("provider_unknown", f"no inbound webhooks from {provider}")
    raw = await request.read()
    h = request.headers
    genuine = webhooks.verify(
        secret,
        h.get("webhook-id", ""),
        h.get("webhook-timestamp", ""),
        h.get("webhook-signature", ""),
        raw,
        request.app[CLOCK].now_us() // 1_000_000,
    )
    if not genuine:
        raise Problem.http("signature_invalid")
    result = await service(request).inbound(provider, raw)
    if result is Result.command_malformed:
        raise Problem.http("payload_invalid")
    if result is not Result.ok:
        raise Problem.of(result)
    return json({"received": True, "provider": provider}, status=202)
