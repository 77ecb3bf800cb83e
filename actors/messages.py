"""What a transfer actor's mailbox carries: commands (with an optional reply) and the runtime's
own nudges (re-drive pending effects, re-quote, re-broadcast, bump the fee)."""

from __future__ import annotations

import asyncio
import dataclasses

from engine.commands import TransferCommand
from engine.results import Result


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    command: TransferCommand
    # Answered with the command's result once its events are durable (or it was refused).
    reply: asyncio.Future[Result] | None = None
    request_id: str | None = None


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
