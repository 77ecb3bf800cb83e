"""Console sessions: a person signs in once with their API key and the browser then holds only a
random session token, in an HttpOnly, SameSite=Strict cookie. The key itself never reaches the
browser's storage, a URL or a page.

The server keeps sessions in memory, keyed by the token's sha256, each with its key id and a
CSRF token. Every request re-reads the key, so a key revoked over the API or the command line
signs its sessions out at their next request. Expiry is in real (monotonic) time whatever clock
the engine runs on: 30 minutes idle, 12 hours in all. A restart signs everyone out, which is the
safe side for an appliance.

A request signed by a session that changes anything must carry the session's CSRF token in
`X-CSRF-Token` (the console's forms send it), and its Origin, when the browser sends one, must
be this server's own. SameSite=Strict alone already keeps the cookie off other sites' requests;
the token is the second, independent lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

COOKIE = "stablerail_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE_S = 30 * 60
ABSOLUTE_S = 12 * 60 * 60
# Past this many live sessions the least recently used is signed out.
SESSIONS_MAX = 10_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclasses.dataclass(slots=True)
class Session:
    key_id: str
    csrf: str
    started: float
    seen: float

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf, presented)


class Sessions:
    """Live sessions by the sha256 of their token, least recently used first."""

    def __init__(
        self,
        *,
        idle_s: float = IDLE_S,
        absolute_s: float = ABSOLUTE_S,
        limit: int = SESSIONS_MAX,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.limit = limit
        self.now = now
        self._live: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def open(self, key_id: str) -> tuple[str, Session]:
        """A new session for this key: the token for the cookie, and the session."""
        token = secrets.token_urlsafe(32)
        at = self.now()
        session = Session(key_id=key_id, csrf=secrets.token_urlsafe(32), started=at, seen=at)
        self._live[_digest(token)] = session
        while len(self._live) > self.limit:
            self._live.popitem(last=False)
        return token, session

    def find(self, token: str) -> Session | None:
        """The live session this token opened (its idle time restarts), else None."""
        digest = _digest(token)
        session = self._live.get(digest)
        if session is None:
            return None
        at = self.now()
        if at - session.seen > self.idle_s or at - session.started > self.absolute_s:
            del self._live[digest]
            return None
        session.seen = at
        self._live.move_to_end(digest)
        return session

    def close(self, token: str) -> None:
        self._live.pop(_digest(token), None)


def same_origin(origin: str | None, scheme: str, host: str) -> bool:
    """Whether a request's Origin header (None: the browser sent none) is this server's."""
    return origin is None or origin == f"{scheme}://{host}"
