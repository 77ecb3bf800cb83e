"""Admin overrides (Series 3 and 10): an operator forces what the state machine would not do by
itself, and only with a reason and a second operator.

Two kinds: `fail_transfer` forces a transfer that is not yet on chain to FAILED
(`operator_failed`), which writes off its hold back to the client's available balance; and
`reconcile_transfer` marks a transfer RECONCILED whose evidence will not come (the override is the
evidence). One operator requests (with a reason), another approves or rejects: the same person
cannot do both, compared by user, not by key. The override is journaled at each step in its own
stream (`ov_…`): requested, decided, then executed with the transfer's answer, so the journal and
the audit log show who asked, who agreed, why and what it did.
"""

from __future__ import annotations

import enum

import msgspec

from engine import commands as c
from engine import limits
from engine.events import OverrideDecided, OverrideExecuted, OverrideRequested
from engine.results import Result

REASON_LENGTH_MAX = 400


class Kind(enum.StrEnum):
    FAIL_TRANSFER = "fail_transfer"
    RECONCILE_TRANSFER = "reconcile_transfer"


class State(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"


class Override(msgspec.Struct, frozen=True, kw_only=True):
    override_id: str
    kind: Kind
    transfer_id: str
    reason: str
    requested_by: str
    requested_at: int
    state: State = State.PENDING
    decided_by: str | None = None
    decided_at: int | None = None
    decision_reason: str = ""
    # The transfer's answer to the forced command ("ok" or its result code).
    outcome: str | None = None
    version: int = 1


def fold(events: list[OverrideRequested | OverrideDecided | OverrideExecuted]) -> Override | None:
    found: Override | None = None
    for event in events:
        match event:
            case OverrideRequested():
                found = Override(
                    override_id=event.override_id,
                    kind=Kind(event.kind),
                    transfer_id=event.transfer_id,
                    reason=event.reason,
                    requested_by=event.by,
                    requested_at=event.at,
                )
            case OverrideDecided():
                assert found is not None
                state = State.APPROVED if event.approved else State.REJECTED
                found = msgspec.structs.replace(
                    found,
                    state=state,
                    decided_by=event.by,
                    decided_at=event.at,
                    decision_reason=event.reason,
                    version=found.version + 1,
                )
            case OverrideExecuted():
                assert found is not None
                found = msgspec.structs.replace(
                    found, state=State.EXECUTED, outcome=event.outcome, version=found.version + 1
                )
    return found


def _reason_ok(reason: str) -> bool:
    return 0 < len(reason.strip()) <= REASON_LENGTH_MAX and reason.isprintable()


def request(
    override_id: str, kind: Kind, transfer_id: str, reason: str, by: str, now: int
) -> OverrideRequested | Result:
    if not _reason_ok(reason):
        return Result.command_malformed
    return OverrideRequested(
        at=now, override_id=override_id, kind=kind.value, transfer_id=transfer_id, reason=reason,
        by=by,
    )  # fmt: skip


def decide(
    override: Override, by: str, approved: bool, reason: str, now: int
) -> OverrideDecided | Result:
    """The second operator's decision: never the requester's own."""
    if override.state is not State.PENDING:
        return Result.override_not_pending
    if by == override.requested_by:
        return Result.maker_cannot_approve
    if not approved and not _reason_ok(reason):
        return Result.command_malformed
    return OverrideDecided(
        at=now, override_id=override.override_id, by=by, approved=approved, reason=reason
    )


def command(override: Override) -> c.TransferCommand:
    """What the approved override makes the transfer do."""
    message = f"override {override.override_id} by {override.requested_by} and"
    message += f" {override.decided_by}: {override.reason}"
    match override.kind:
        case Kind.FAIL_TRANSFER:
            return c.FailTransfer(
                code=Result.operator_failed.code,
                message=message[: limits.failure_message_length_max],
            )
        case Kind.RECONCILE_TRANSFER:
            return c.Reconcile(evidence=(f"override:{override.override_id}",))
