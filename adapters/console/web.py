"""The console's plumbing: templates, the signed-in person, sign-in and sign-out, error pages,
static assets and the headers every page carries.

A page is a GET that reads through the same Service the API uses and renders the API's own JSON
views (adapters/http/render) into HTML, so a figure on a page is the figure the API answers. A
button is a form the console's script sends to the API route itself, signed by the session, so
roles, maker-checker, tenant isolation, idempotency and the audit log apply exactly as they do
to an API key. A page shows a button only when the person's role holds the permission the
route's row in the route table names, and the API refuses it anyway.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from adapters.http import sessions
from adapters.http.context import (
    CONFIG,
    PRESENTED,
    PRINCIPAL,
    REQUEST_ID,
    SESSION,
    SESSIONS,
    service,
    session_principal,
)
from adapters.http.problems import Problem
from adapters.http.routes import ROUTES
from engine import access
from engine.access import Permission, Principal

CONSOLE = "/console"
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("adapters.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_PERMISSION_OF = {(r.method, r.path): r.permission for r in ROUTES}
_STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
# No script, style or image from anywhere but this server; no framing; forms post only here.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@dataclasses.dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    permission: Permission


NAV = (
    NavItem(CONSOLE, "Overview", Permission.READ),
    NavItem(f"{CONSOLE}/transfers", "Transfers", Permission.READ),
    NavItem(f"{CONSOLE}/approvals", "Approvals", Permission.READ),
    NavItem(f"{CONSOLE}/cases", "Cases", Permission.OPERATE),
    NavItem(f"{CONSOLE}/controls", "Freezes and halts", Permission.OPERATE),
    NavItem(f"{CONSOLE}/treasury", "Treasury", Permission.OPERATE),
    NavItem(f"{CONSOLE}/balances", "Balances", Permission.READ),
    NavItem(f"{CONSOLE}/webhooks", "Webhooks", Permission.READ),
    NavItem(f"{CONSOLE}/policy", "Policy", Permission.POLICY),
    NavItem(f"{CONSOLE}/audit", "Audit log", Permission.AUDIT),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person, as a page sees them."""

    principal: Principal
    csrf: str
    simulated: bool

    def can(self, permission: Permission) -> bool:
        return access.allowed(self.principal.role, permission)

    def may(self, method: str, route: str) -> bool:
        """Whether this person's role may call the API route (its path as the route table
        writes it): the page shows the button only then."""
        permission = _PERMISSION_OF[(method, route)]
        return permission is not None and self.can(permission)

    @property
    def nav(self) -> list[NavItem]:
        return [item for item in NAV if self.can(item.permission)]


Page = Callable[[web.Request, Viewer], Awaitable[web.Response]]


def _secured(response: web.Response) -> web.Response:
    response.headers.update(_HEADERS)
    return response


def html(
    request: web.Request, template: str, http_status: int = 200, **context: Any
) -> web.Response:
    body = _ENV.get_template(template).render(
        request_id=request.get(REQUEST_ID, ""), path=request.path, **context
    )
    return _secured(web.Response(status=http_status, text=body, content_type="text/html"))


def redirect(location: str) -> web.Response:
    return _secured(web.Response(status=303, headers={"Location": location}))


def _next_path(text: str | None) -> str:
    """Where to go after signing in: a console path of this server only (never another site)."""
    if text and text.startswith(CONSOLE) and not text.startswith("//") and "\\" not in text:
        return text
    return CONSOLE


Served = Callable[[web.Request], Awaitable[web.Response]]


def page(permission: Permission) -> Callable[[Page], Served]:
    """A console page that needs `permission`: a visitor with no session is sent to sign in
    (and back here after), a role without the permission gets a 403 page, and a refusal the
    page's reads raise (a bad filter, an object another client owns) gets its own page."""

    def wrap(handler: Page) -> Served:
        async def serve(request: web.Request) -> web.Response:
            if any(value == "" for value in request.query.values()):
                # A filter form sends its blank fields too: drop them, as if never sent.
                kept = [(k, v) for k, v in request.query.items() if v != ""]
                return redirect(f"{request.path}?{urlencode(kept)}" if kept else request.path)
            if sessions.COOKIE not in request.cookies:
                return redirect(f"{CONSOLE}/sign-in?next={quote(request.path_qs, safe='/')}")
            try:
                principal = await session_principal(request)
            except Problem:
                return redirect(f"{CONSOLE}/sign-in?next={quote(request.path_qs, safe='/')}")
            viewer = Viewer(
                principal=principal,
                csrf=request[SESSION].csrf,
                simulated=request.app[CONFIG].simulated,
            )
            if not viewer.can(permission):
                return problem_page(
                    request,
                    viewer,
                    Problem.http("forbidden", f"role {principal.role.value} cannot open this page"),
                )
            try:
                return await handler(request, viewer)
            except Problem as problem:
                return problem_page(request, viewer, problem)

        serve.__name__ = handler.__name__
        serve.__doc__ = handler.__doc__
        return serve

    return wrap


def problem_page(request: web.Request, viewer: Viewer | None, problem: Problem) -> web.Response:
    return html(request, "problem.html", problem.status, viewer=viewer, problem=problem)


# --- signing in and out ---------------------------------------------------------------------------


async def sign_in_form(request: web.Request) -> web.Response:
    return html(
        request, "sign_in.html", viewer=None, next=_next_path(request.query.get("next")), error=None
    )


async def sign_in(request: web.Request) -> web.Response:
    """Check the key once, then hold only a session token in the browser."""
    if not sessions.same_origin(request.headers.get("Origin"), request.scheme, request.host):
        raise Problem.http("csrf_invalid", "sign in from this console's own page")
    form = await request.post()
    text = str(form.get("api_key", "")).strip()
    target = _next_path(str(form.get("next", "")))
    parsed = access.parse_key(text)
    if parsed is not None:
        request[PRESENTED] = parsed.key_id
    stored = await service(request).api_key(parsed.key_id) if parsed is not None else None
    principal = access.check(stored, parsed) if parsed is not None else None
    if principal is None:
        error = "That key is not one this server knows: it is mistyped, revoked or unknown."
        return html(request, "sign_in.html", 401, viewer=None, next=target, error=error)
    request[PRINCIPAL] = principal
    live = request.app[SESSIONS]
    # A new session every time (never the token the browser came with), the old one ended.
    live.close(request.cookies.get(sessions.COOKIE, ""))
    token, _ = live.open(principal.key_id)
    response = redirect(target)
    response.set_cookie(
        sessions.COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        max_age=sessions.ABSOLUTE_S,
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    """End the session (its CSRF token in the form: another site cannot sign you out)."""
    token = request.cookies.get(sessions.COOKIE, "")
    live = request.app[SESSIONS]
    session = live.find(token)
    if session is not None:
        form = await request.post()
        if not session.csrf_matches(str(form.get("csrf", ""))):
            raise Problem.http("csrf_invalid")
        principal = access.active(await service(request).api_key(session.key_id))
        if principal is not None:
            request[PRINCIPAL] = principal
        live.close(token)
    response = redirect(f"{CONSOLE}/sign-in")
    response.del_cookie(sessions.COOKIE, path="/")
    return response


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = _STATIC.get(name)
    if kind is None:
        raise Problem.http("not_found", f"no console asset {name}")
    body = resources.files("adapters.console").joinpath("static", name).read_bytes()
    response = web.Response(body=body, content_type=kind)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def idempotency_key() -> str:
    """A fresh Idempotency-Key for a create form: a form sent twice is one transfer."""
    return "console-" + secrets.token_hex(16)
