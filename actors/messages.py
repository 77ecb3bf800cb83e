"""What a transfer actor's mailbox carries: commands (with an optional reply) and the runtime's
own nudges (re-drive pending effects, re-quote, re-broadcast, bump the fee)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from engine.audit import AuditRecord
from engine.commands import TransferCommand
from engine.results import Result
from engine.transfer import TransferState

# How a service answers a create, from the transfer's state once its synchronous steps are
# decided: (HTTP status, body). Stored under the idempotency key and replayed to retries.
Answer = Callable[[TransferState], tuple[int, bytes]]


@dataclasses.dataclass(slots=True)
class Answering:
    """How a create's request is answered, so that its answer is stored in the very commit that
    creates the transfer (and a retry of the request replays it).

    `render` gives the answer from the transfer's state once its synchronous steps are decided;
    None gives the transfer's id with 201 as soon as it is durable (the simulator). `audit`, when
    given, makes the request's audit record from that answer, committed with it. The actor sets
    `state` to the state the stored answer was rendered from; it stays None when the answer was
    not stored in the create's commit (the caller then answers once the steps are decided)."""

    render: Answer | None = None
    audit: Callable[[int, bytes], AuditRecord] | None = None
    state: TransferState | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    command: TransferCommand
    # Answered with the command's result once its events are durable (or it was refused).
    reply: asyncio.Future[Result] | None = None
    request_id: str | None = None
    # A create's answer, stored in the create's commit (see Answering).
    answering: Answering | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Redrive:
    """Run the state's pending effects again (recovery, a restart, a stuck timer)."""

    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Requote:
    """The quote expired before the funds locked: re-take it or expire, by the re-quote policy."""


@dataclasses.dataclass(frozen=True, slots=True)
class Rebroadcast:
    """The node no longer knows the latest transaction: send the same journaled bytes again."""


@dataclasses.dataclass(frozen=True, slots=True)
class BumpFee:
    """The latest transaction sat unmined too long: replace it (same nonce, higher fee)."""


Message = Envelope | Redrive | Requote | Rebroadcast | BumpFee
