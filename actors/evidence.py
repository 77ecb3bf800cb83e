"""Recording what an external system told us: raw payload and normalized fields, once.

Evidence goes into its own journal stream (ex_...) with the sha256 of the raw payload, and into
external_events, deduplicated by (provider, external_ref, event_type): a webhook delivered twice
or a status polled again names the evidence already stored instead of adding another row.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import msgspec

from engine import matching
from engine.events import EvidenceRecorded
from engine.ports import Clock, Ids, Journal
from engine.provider_reports import ReportLine
from engine.rails import PayoutState
from engine.records import Committed, Duplicate, Rejected
from engine.statements import StatementLine


class Recorder(Protocol):
    """What recording needs (the actors' Context has it; so can a command-line tool)."""

    @property
    def journal(self) -> Journal: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def ids(self) -> Ids: ...


class EvidenceNotRecorded(Exception):
    pass


async def record_evidence(
    ctx: Recorder,
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
    found, _ = await record_evidence_fresh(
        ctx,
        provider=provider,
        event_type=event_type,
        external_ref=external_ref,
        occurred_at=occurred_at,
        transfer_id=transfer_id,
        normalized=normalized,
        raw=raw,
    )
    return found


async def record_evidence_fresh(
    ctx: Recorder,
    *,
    provider: str,
    event_type: str,
    external_ref: str,
    occurred_at: int,
    transfer_id: str | None,
    normalized: dict[str, str],
    raw: bytes,
) -> tuple[str, bool]:
    """The evidence id, and whether this call stored it (False: it was stored before)."""
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
            return evidence_id, True
        case Duplicate(evidence_id=existing) if existing is not None:
            return existing, False
        case Rejected(result=result, detail=detail):
            raise EvidenceNotRecorded(
                f"{provider}/{event_type}/{external_ref}: {result.code} {detail}"
            )
    raise EvidenceNotRecorded(f"{provider}/{event_type}/{external_ref}: {outcome}")


async def record_statement(ctx: Recorder, lines: list[StatementLine]) -> tuple[list[str], int]:
    """Keep each statement line as evidence (the reconciler pairs it with the ledger): the
    evidence ids, and how many lines were new (a statement read twice adds nothing)."""
    found: list[str] = []
    new = 0
    for line in lines:
        evidence_id, fresh = await record_evidence_fresh(
            ctx,
            provider=line.bank,
            event_type=matching.STATEMENT_LINE,
            external_ref=line.line_id,
            occurred_at=line.booked_at,
            transfer_id=None,
            normalized=line.normalized(),
            raw=line.raw(),
        )
        found.append(evidence_id)
        new += fresh
    return found, new


async def record_provider_report(
    ctx: Recorder, lines: list[ReportLine]
) -> tuple[list[str], int, int]:
    """Keep each row of a provider's trade report as the provider's payout report: the evidence
    ids, how many rows were new, and how many disagreed with what the provider had told us
    about the same trade (kept beside it, once per distinct content, for the matcher to see).
    A row that agrees with what is stored adds nothing."""
    found: list[str] = []
    new = differing = 0
    for line in lines:
        status = line.status()
        kind = (
            matching.PAYOUT_PAID if status.state is PayoutState.PAID else matching.PAYOUT_RETURNED
        )
        facts = matching.payout_facts(status)
        transfer_id = await ctx.journal.transfer_for_trade(line.trade_id)
        evidence_id, fresh = await record_evidence_fresh(
            ctx, provider=line.provider, event_type=kind, external_ref=line.trade_id,
            occurred_at=line.reported_at, transfer_id=transfer_id, normalized=facts,
            raw=line.raw(),
        )  # fmt: skip
        if not fresh:
            [stored] = [r.event for r in await ctx.journal.stream(evidence_id)]
            assert isinstance(stored, EvidenceRecorded)
            if stored.normalized != facts:
                digest = hashlib.sha256(msgspec.json.encode(facts)).hexdigest()[:16]
                evidence_id, fresh = await record_evidence_fresh(
                    ctx, provider=line.provider, event_type=kind,
                    external_ref=f"{line.trade_id}{matching.REPORTED_AGAIN}{digest}",
                    occurred_at=line.reported_at, transfer_id=transfer_id or stored.transfer_id,
                    normalized=facts, raw=line.raw(),
                )  # fmt: skip
                differing += fresh
        found.append(evidence_id)
        new += fresh
    return found, new, differing
