"""Freezes and halts (Series 10): an operator freezes a client, halts a corridor or halts the whole
system; new instructions are refused with a clear code, transfers not yet on chain are cancelled
with the control as their reason (their holds released), and those already on chain finish and
reconcile.

The controls in force are a fold of `ControlChanged` events (the journal's "controls" stream), so
the journal alone says who froze what, when and why. Pure: the runtime keeps the folded value and
asks `refusal` at creation (through policy) and before each pre-chain step (the gate that catches
a transfer created while the control was being recorded).
"""

from __future__ import annotations

import enum

import msgspec

from engine.results import Result


class Scope(enum.StrEnum):
    CLIENT = "client"
    CORRIDOR = "corridor"
    SYSTEM = "system"


# The engine's own policy rule ids for a control's refusal (engine.policy records them).
RULE_IDS = {
    Scope.SYSTEM: "control_system_halt",
    Scope.CORRIDOR: "control_corridor_halt",
    Scope.CLIENT: "control_client_freeze",
}
CODES = {
    Scope.SYSTEM: Result.system_halted,
    Scope.CORRIDOR: Result.corridor_halted,
    Scope.CLIENT: Result.client_frozen,
}
SYSTEM_TARGET = "*"


class Controls(msgspec.Struct, frozen=True, kw_only=True):
    frozen_clients: frozenset[str] = frozenset()
    halted_corridors: frozenset[str] = frozenset()
    system_halted: bool = False


def refusal(controls: Controls, client_id: str, corridor: str) -> Scope | None:
    """Which control refuses new work for this client and corridor (None: none). The widest
    first, as Result's precedence orders their codes."""
    if controls.system_halted:
        return Scope.SYSTEM
    if corridor in controls.halted_corridors:
        return Scope.CORRIDOR
    if client_id in controls.frozen_clients:
        return Scope.CLIENT
    return None


def active(controls: Controls, scope: Scope, target: str) -> bool:
    match scope:
        case Scope.SYSTEM:
            return controls.system_halted
        case Scope.CORRIDOR:
            return target in controls.halted_corridors
        case Scope.CLIENT:
            return target in controls.frozen_clients


def applied(controls: Controls, scope: Scope, target: str, on: bool) -> Controls:
    """`controls` with one control switched on or off."""
    match scope:
        case Scope.SYSTEM:
            return msgspec.structs.replace(controls, system_halted=on)
        case Scope.CORRIDOR:
            corridors = controls.halted_corridors
            changed = corridors | {target} if on else corridors - {target}
            return msgspec.structs.replace(controls, halted_corridors=changed)
        case Scope.CLIENT:
            clients = controls.frozen_clients
            changed = clients | {target} if on else clients - {target}
            return msgspec.structs.replace(controls, frozen_clients=changed)
