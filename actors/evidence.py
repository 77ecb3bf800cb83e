"""Recording what an external system told us: raw payload and normalized fields, once.

Evidence goes into its own journal stream (ex_...) with the sha256 of the raw payload, and into
external_events, deduplicated by (provider, external_ref, event_type): a webhook delivered twice
or a status polled again names the evidence already stored instead of adding another row.
"""

from __future__ import annotations

import hashlib

from actors.context import Context
from engine.events import EvidenceRecorded
from engine.records import Committed, Duplicate, Rejected


class EvidenceNotRecorded(Exception):
    pass


async def record_evidence(
    ctx: Context,
    *,
    provider: str,
    event_type: str,
    external_ref: str,
    occurred_at: int,
    transfer_id: str | None,
    normalized: dict[str, str],
    raw: bytes,
) -> str:
    """The evidence id (a new one, or the one already stored for the same fact)."""
    evidence_id = ctx.ids.new("ex")
    event = EvidenceRecorded(
        at=ctx.clock.now_us(),
        evidence_id=evidence_id,
        provider=provider,
        event_type=event_type,
        external_ref=external_ref,
        occurred_at=occurred_at,
        transfer_id=transfer_id,
        normalized=normalized,
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )
    outcome = await ctx.journal.append(evidence_id, 0, [event], evidence_raw={evidence_id: raw})
    match outcome:
        case Committed():
            return evidence_id
        case Duplicate(evidence_id=existing) if existing is not None:
            return existing
        case Rejected(result=result, detail=detail):
            raise EvidenceNotRecorded(
                f"{provider}/{event_type}/{external_ref}: {result.code} {detail}"
            )
    raise EvidenceNotRecorded(f"{provider}/{event_type}/{external_ref}: {outcome}")
