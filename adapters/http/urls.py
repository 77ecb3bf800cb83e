"""Webhook URLs a server may call: http(s) to a public address only (no SSRF into the operator's
own network), unless the configuration allows private addresses (local development, tests).

The host is resolved and every address it resolves to is checked, at registration and again
before each delivery (a name can be re-pointed after it was registered).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from engine import limits


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may not be called, or None if it may."""
    if len(url) > limits.webhook_url_length_max:
        return "the URL is too long"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL is malformed"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the URL must be http:// or https:// with a host"
    if parts.username or parts.password:
        return "the URL may not carry credentials"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except (OSError, UnicodeError):
        return f"the host {parts.hostname} does not resolve"
    if not infos:
        return f"the host {parts.hostname} does not resolve"
    if allow_private:
        return None
    for info in infos:
        if not _public(str(info[4][0])):
            return f"the host {parts.hostname} resolves to a private address"
    return None
