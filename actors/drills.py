"""Failpoints and canaries: how the drills prove the runtime survives crashes and that the
simulation's checks can catch the bugs that matter. Both are off unless a drill arms them.

Failpoints are named places where a crash drill stops the process (the action is the drill's:
`sim.crash` sends the process SIGKILL on the Nth pass). Each marks a moment where a crash is
hardest to survive:

    journal.before_commit      the decision is made, nothing is durable yet
    journal.after_commit       durable, but nobody has heard of it and no effect has run
    chain.after_sign           custody signed a payment the journal does not hold yet
    chain.after_broadcast      the node has the transaction, the process never hears back
    offramp.after_payout_call  the provider started a payout the journal does not yet name
    timers.mid_fire            a timer fired, the timers after it in the same poll have not

Canaries are bugs planted on purpose. A run with one planted must fail an invariant, or the
checks are not checking what they claim (`tests/sim/test_canaries.py`):

    skip_idempotency_check     a create does not claim its idempotency key
    reply_before_commit        a create is answered "ok" before its events are durable
    rebroadcast_new_nonce      a broadcast whose answer was lost is re-signed with a new nonce
    ignore_reorgs              a confirmed transaction removed by a reorg goes unnoticed
    worst_price                the pricing desk takes the worst provider's price, not the best
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

FAILPOINTS = frozenset(
    {
        "journal.before_commit",
        "journal.after_commit",
        "chain.after_sign",
        "chain.after_broadcast",
        "offramp.after_payout_call",
        "timers.mid_fire",
    }
)
CANARIES = frozenset(
    {
        "skip_idempotency_check",
        "reply_before_commit",
        "rebroadcast_new_nonce",
        "ignore_reorgs",
        "worst_price",
    }
)


@dataclasses.dataclass(slots=True)
class Drills:
    canaries: frozenset[str] = frozenset()
    armed: dict[str, Callable[[], None]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = self.canaries - CANARIES
        if unknown:
            raise ValueError(f"unknown canaries {sorted(unknown)}; known: {sorted(CANARIES)}")

    def arm(self, name: str, action: Callable[[], None]) -> None:
        if name not in FAILPOINTS:
            raise ValueError(f"unknown failpoint {name!r}; known: {sorted(FAILPOINTS)}")
        self.armed[name] = action

    def failpoint(self, name: str) -> None:
        """A pass through the failpoint `name`: an armed one runs its action."""
        if not self.armed:
            return
        assert name in FAILPOINTS, name
        action = self.armed.get(name)
        if action is not None:
            action()

    def planted(self, canary: str) -> bool:
        return canary in self.canaries
