"""Random commands for random walks of transfers, shared by the hypothesis property test (which
draws through hypothesis, so failures shrink) and the seeded store test (which draws from a
printed seed)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

import msgspec
from hypothesis import strategies as st

from engine import commands as c
from engine import limits
from engine.results import FAILURE_CODES
from engine.transfer import TransferState
from tests.builders import block_hash, quote_for, signed_tx

T = TypeVar("T")


class Chooser(Protocol):
    def pick(self, options: Sequence[T]) -> T: ...
    def number(self, low: int, high: int) -> int: ...


class DataChooser:
    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def pick(self, options: Sequence[T]) -> T:
        return self._data.draw(st.sampled_from(options))

    def number(self, low: int, high: int) -> int:
        return self._data.draw(st.integers(low, high))


class SeededChooser:
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def pick(self, options: Sequence[T]) -> T:
        return self._random.choice(options)

    def number(self, low: int, high: int) -> int:
        return self._random.randint(low, high)


COMMANDS = (
    "quote",
    "quote_bad",
    "lock",
    "submit",
    "replace",
    "confirm",
    "confirm_few",
    "reorg",
    "revert",
    "offramp",
    "reroute",
    "settle",
    "returned",
    "reconcile",
    "cancel",
    "fail",
    "expire",
    "approve",
    "reject",
)
USERS = ("alice", "bob", "carol")
# Each step either moves a transfer along its route (most of the time, so walks reach every
# status), takes a side exit that can do something there, or sends any command at all.
FORWARD = {
    "CREATED": ("approve", "quote"),
    "QUOTED": ("lock",),
    "FUNDS_LOCKED": ("submit",),
    "SENT_ON_CHAIN": ("confirm",),
    "CONFIRMED": ("offramp", "reroute", "settle", "reconcile"),
    "FIAT_SETTLED": ("reconcile",),
}
SIDEWAYS = {
    "CREATED": ("reject", "cancel", "fail", "expire"),
    "QUOTED": ("quote", "cancel", "fail", "expire"),
    "FUNDS_LOCKED": ("cancel", "fail"),
    "SENT_ON_CHAIN": ("confirm_few", "replace", "revert"),
    "CONFIRMED": ("reorg", "returned"),
    "FIAT_SETTLED": ("reorg", "returned"),
}


def command_for(kind: str, state: TransferState, now: int, draw: Chooser) -> c.TransferCommand:
    salt = draw.number(0, 3)
    hashes = [t.tx_hash for t in state.txs] or [block_hash(salt)]
    some_hash = draw.pick([*hashes, block_hash(50 + salt)])
    match kind:
        case "quote":
            return c.QuoteTransfer(quote=quote_for(state, now, n=salt + 1))
        case "quote_bad":
            good = quote_for(state, now, n=salt + 1)
            return c.QuoteTransfer(quote=msgspec.structs.replace(good, target_amount=1))
        case "lock":
            return c.LockFunds()
        case "submit":
            return c.SubmitOnChain(tx=signed_tx(state, salt=salt))
        case "replace":
            fee = draw.number(1, 10**12)
            return c.ReplaceDroppedTx(tx=signed_tx(state, fee=fee, salt=salt))
        case "confirm" | "confirm_few":
            enough = kind == "confirm"
            return c.ObserveConfirmation(
                tx_hash=some_hash,
                block_number=100 + salt,
                block_hash=block_hash(100 + salt),
                confirmations=limits.confirmations_required - (0 if enough else 1),
            )
        case "reorg":
            return c.ObserveReorg(tx_hash=some_hash, block_hash=block_hash(1))
        case "revert":
            return c.ObserveRevert(tx_hash=some_hash, block_number=9)
        case "offramp":
            return c.InitiateOffRamp(provider_trade_id=f"trade-{salt}")
        case "reroute":
            provider = draw.pick(("conduit-sim", "rampa-sim", "bitso-sim"))
            return c.RerouteOffRamp(
                provider=provider, previous="bitso-sim", reason="the provider refused it"
            )
        case "settle":
            return c.MarkFiatSettled(bank_reference=f"SPEI-{salt}", amount=1 + salt)
        case "returned":
            return c.RecordFundsReturned(reference=f"RET-{salt}")
        case "reconcile":
            return c.Reconcile(evidence=(f"ev-{salt}",))
        case "cancel":
            return c.CancelTransfer(by=draw.pick(USERS))
        case "fail":
            code = draw.pick(sorted(r.code for r in FAILURE_CODES))
            return c.FailTransfer(code=code)
        case "expire":
            return c.ExpireTransfer()
        case "approve":
            return c.ApproveTransfer(by=draw.pick(USERS))
        case "reject":
            return c.RejectTransfer(by=draw.pick(USERS))
    raise AssertionError(kind)


# Mostly small steps; sometimes past a quote's TTL; rarely past every deadline.
TIME_STEPS = (1_000,) * 12 + (40_000_000, 25 * 3600 * 1_000_000)


def next_command(draw: Chooser, state: TransferState, now: int) -> c.TransferCommand:
    roll = draw.number(0, 19)
    status = state.status.value
    if status in FORWARD and roll < 15:
        kind = draw.pick(FORWARD[status])
    elif status in SIDEWAYS and roll < 19:
        kind = draw.pick(SIDEWAYS[status])
    else:
        kind = draw.pick(COMMANDS)
    return command_for(kind, state, now, draw)
