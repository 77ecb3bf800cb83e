"""Raising an operator alert, once per cause.

The alert's stream id is derived from its cause (kind, transfer, and the instant the cause began),
so raising the same alert again, from a second timer poll or after a restart, finds the stream
already there and adds nothing: an operator sees one alert per stuck episode, not one per poll.
"""

from __future__ import annotations

import hashlib

from actors.context import Context
from engine.events import AlertRaised
from engine.ids import format_id
from engine.records import Committed, Rejected
from engine.results import Result


def alert_id(kind: str, transfer_id: str | None, cause_at_us: int, subject: str = "") -> str:
    cause = f"{kind}|{transfer_id}|{cause_at_us}" + (f"|{subject}" if subject else "")
    digest = hashlib.sha256(cause.encode()).digest()
    return format_id("al", cause_at_us // 1_000, digest[:10])


async def raise_alert(
    ctx: Context,
    *,
    kind: str,
    transfer_id: str | None,
    status: str | None,
    cause_at_us: int,
    detail: str,
    subject: str = "",
) -> bool:
    """Whether this call raised the alert (False: it was raised before). `subject` tells apart
    causes that are not a transfer's (an account whose balance left its bounds)."""
    aid = alert_id(kind, transfer_id, cause_at_us, subject)
    event = AlertRaised(
        at=ctx.clock.now_us(),
        alert_id=aid,
        kind=kind,
        transfer_id=transfer_id,
        status=status,
        detail=detail,
    )
    outcome = await ctx.journal.append(aid, 0, [event])
    if isinstance(outcome, Rejected) and outcome.result is Result.stream_exists:
        return False
    assert isinstance(outcome, Committed), outcome
    return True
