"""An override is a two-person action: requested with a reason, decided by someone else, once;
what it makes a transfer do is fixed by its kind."""

from __future__ import annotations

from engine import commands as c
from engine import overrides
from engine.events import OverrideExecuted
from engine.overrides import Kind, State
from engine.results import Result

T0 = 1_795_564_800_000_000


def requested(kind: Kind = Kind.FAIL_TRANSFER) -> overrides.Override:
    event = overrides.request("ov_1", kind, "tr_1", "ticket 9", "ann", T0)
    assert not isinstance(event, Result)
    found = overrides.fold([event])
    assert found is not None and found.state is State.PENDING
    return found


def test_the_requester_never_decides_their_own() -> None:
    assert overrides.decide(requested(), "ann", True, "", T0) is Result.maker_cannot_approve
    assert overrides.decide(requested(), "ann", False, "no", T0) is Result.maker_cannot_approve


def test_a_reason_is_required_to_ask_and_to_reject() -> None:
    assert overrides.request("ov_1", Kind.FAIL_TRANSFER, "tr_1", " ", "ann", T0) is (
        Result.command_malformed
    )
    assert overrides.decide(requested(), "bob", False, "", T0) is Result.command_malformed


def test_decided_once_then_executed() -> None:
    first = requested()
    decided = overrides.decide(first, "bob", True, "", T0 + 1)
    assert not isinstance(decided, Result)
    request_event = overrides.request("ov_1", Kind.FAIL_TRANSFER, "tr_1", "ticket 9", "ann", T0)
    assert not isinstance(request_event, Result)
    approved = overrides.fold([request_event, decided])
    assert approved is not None and approved.state is State.APPROVED
    assert overrides.decide(approved, "cy", False, "late", T0 + 2) is Result.override_not_pending
    done = OverrideExecuted(at=T0 + 3, override_id="ov_1", outcome="ok")
    executed = overrides.fold([request_event, decided, done])
    assert executed is not None and (executed.state, executed.outcome) == (State.EXECUTED, "ok")


def test_what_each_kind_makes_the_transfer_do() -> None:
    failed = overrides.command(requested(Kind.FAIL_TRANSFER))
    assert isinstance(failed, c.FailTransfer) and failed.code == "operator_failed"
    assert "ticket 9" in failed.message
    reconciled = overrides.command(requested(Kind.RECONCILE_TRANSFER))
    assert reconciled == c.Reconcile(evidence=("override:ov_1",))
