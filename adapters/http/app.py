"""The aiohttp application: the route table registered behind one middleware that gives every
response its X-Request-Id, turns every refusal into problem+json, counts it, and never lets an
unexpected error escape as anything but a logged 500.

    app = build_app(service, clock=clock, ids=ids, config=HttpConfig(...), metrics=Metrics())
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from loguru import logger

from adapters import console
from adapters.http import audit, openapi, sessions
from adapters.http.context import (
    AUDIT,
    CLOCK,
    CONFIG,
    IDS,
    METRICS,
    PRINCIPAL,
    REQUEST_ID,
    SERVICE,
    SESSIONS,
    HttpConfig,
    json,
)
from adapters.http.metrics import Metrics
from adapters.http.problems import Problem
from adapters.http.routes import ROUTES, Handler
from engine import limits
from engine.ports import Clock, Ids
from engine.service import Service

_REQUEST_ID_MAX = 128
_AIOHTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= _REQUEST_ID_MAX and given.isascii() and given.isprintable():
        return given
    return request.app[IDS].new("rq")


def _json_body(request: web.Request) -> bool:
    kind = request.content_type
    return kind == "application/json" or kind.endswith("+json")


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = _request_id(request)
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    with logger.contextualize(request_id=rid):
        try:
            writes = request.method in ("POST", "PUT", "PATCH")
            form = request.path in audit.CONSOLE_ACTIONS
            if writes and request.body_exists and not form and not _json_body(request):
                raise Problem.http("unsupported_media_type")
            if request.method in audit.AUDITED_METHODS:
                request[AUDIT] = audit.recorder(request, rid)
            response = await handler(request)
        except Problem as problem:
            response = problem.response(rid)
        except web.HTTPException as e:
            code = _AIOHTTP_CODES.get(e.status)
            if code is None:
                response = Problem(e.status, "http_error", e.reason).response(rid)
            else:
                response = Problem.http(code).response(rid)
            if e.status == 405:
                response.headers["Allow"] = e.headers.get("Allow", "")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unhandled error in {method} {path}", method=request.method,
                             path=request.path)  # fmt: skip
            response = Problem.http("internal_error").response(rid)
        response.headers["X-Request-Id"] = rid
        if request.method in audit.AUDITED_METHODS:
            await audit.write(request, response, rid)
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, name, str(response.status)).inc()
        metrics.latency.labels(request.method, name).observe(time.perf_counter() - started)
        principal = request.get(PRINCIPAL)
        logger.bind(
            method=request.method,
            route=name,
            status=response.status,
            client_id=getattr(principal, "client_id", None),
            key_id=getattr(principal, "key_id", None),
        ).debug("request")
    return response


async def healthz(request: web.Request) -> web.Response:
    return json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if not request.app[SERVICE].ready:
        raise Problem.http("service_unavailable", "recovering or shutting down")
    return json({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].exposition(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi_document(request: web.Request) -> web.Response:
    return json(openapi.document())


def build_app(
    service: Service, *, clock: Clock, ids: Ids, config: HttpConfig, metrics_: Metrics
) -> web.Application:
    app = web.Application(middlewares=[envelope], client_max_size=limits.request_body_bytes_max)
    app[SERVICE] = service
    app[CLOCK] = clock
    app[IDS] = ids
    app[CONFIG] = config
    app[METRICS] = metrics_
    app[SESSIONS] = sessions.Sessions()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/openapi.json", openapi_document)
    for route in ROUTES:
        if route.simulated_only and not config.simulated:
            continue
        app.router.add_route(route.method, route.path, route.handler)
    console.add_routes(app)
    return app
