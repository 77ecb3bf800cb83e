"""`stablerail demo`: a first walk through the product on a fresh data dir.

Funds a client from a simulated bank deposit, then runs four transfers through the real engine and
store with the scripted world: a USD -> USDC wallet payout and a US -> Mexico USD -> MXN off-ramp
payout to RECONCILED, one cancelled after its funds were locked (the hold is released), and one
refused for insufficient funds (kept, FAILED, for audit). Deterministic for a given seed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec

from engine import commands as c
from engine import money
from engine.destinations import BankDestination, Destination, WalletDestination
from engine.hashing import request_hash
from engine.records import Committed
from engine.transfer import TransferState, approval_state
from sim.clock import ManualClock, SeededIds
from sim.scripted import ScriptedWorld, Step, deposit
from store.executor import ExecutorKind
from store.store import Store

CLIENT = "acme"
WALLET = "0x" + "b0" * 20
CLABE = "032180000118359719"  # a valid CLABE (check digit 9)


class DemoTransfer(msgspec.Struct, kw_only=True):
    transfer_id: str
    label: str
    status: str
    steps: list[Step]


class DemoResult(msgspec.Struct, kw_only=True):
    data_dir: str
    transfers: list[DemoTransfer]
    balances: dict[str, dict[str, str]]
    journal_rows: int


async def run_demo(data_dir: Path, *, seed: int = 7, fresh: bool = False) -> DemoResult:
    data_dir = Path(data_dir)
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    clock = ManualClock(tick_us=1_000)
    ids = SeededIds(seed, clock)
    async with Store.open(
        data_dir, clock=clock, executor=ExecutorKind.INLINE, migrate=True
    ) as store:
        world = ScriptedWorld(store.append, clock, ids)
        credit = deposit(ids.new("dp"), CLIENT, "25000.00", clock.now_us())
        assert isinstance(await store.append(credit.deposit_id, 0, [credit]), Committed)

        plan: list[tuple[str, str, str, str, Destination, bool]] = [
            ("wallet payout USD->USDC", "USD", "USDC", "1500.00", _wallet(), False),
            ("off-ramp USD->MXN (SPEI)", "USD", "MXN", "12000.00", _bank(), False),
            ("cancelled after the funds lock", "USD", "USDC", "700.00", _wallet(), True),
            ("approved; insufficient funds", "USD", "USDC", "50000.00", _wallet(), False),
            ("policy: over 250,000.00", "USD", "USDC", "300000.00", _wallet(), False),
        ]  # fmt: skip
        transfers = []
        for number, (label, source, target, amount, destination, cancel) in enumerate(plan, 1):
            transfer_id = ids.new("tr")
            body = {"source": source, "target": target, "amount": amount, "n": number}
            create = c.CreateTransfer(
                transfer_id=transfer_id,
                client_id=CLIENT,
                initiator="demo-user",
                idempotency_key=f"demo-{number}",
                request_hash=request_hash("POST /v1/transfers", body),
                source_currency=source,
                target_currency=target,
                amount=amount,
                destination=destination,
                reference=label,
            )
            if cancel:
                state, steps = await _create_and_lock(world, create)
                state, more = await world.run(
                    state, c.CancelTransfer(by="demo-user", reason="demo")
                )
                steps += more
            else:
                state, steps = await world.run(None, create)
            if state is not None and approval_state(state) == "pending":
                # Above 10,000.00 the default policy wants a second person.
                state, more = await world.run(state, c.ApproveTransfer(by="demo-checker"))
                steps += more
            assert state is not None
            transfers.append(
                DemoTransfer(
                    transfer_id=transfer_id, label=label, status=state.status.value, steps=steps
                )
            )
        balances = {
            b.currency: {
                "available": money.format_amount(b.available, money.ASSETS[b.currency]),
                "held": money.format_amount(b.held, money.ASSETS[b.currency]),
            }
            for b in await store.client_balances(CLIENT)
        }
        head, _ = await store.head()
    return DemoResult(
        data_dir=str(data_dir), transfers=transfers, balances=balances, journal_rows=head
    )


async def _create_and_lock(
    world: ScriptedWorld, create: c.CreateTransfer
) -> tuple[TransferState | None, list[Step]]:
    """Create, quote and lock, stopping before the chain: a transfer a client can still cancel."""
    return await world.run(None, create, stop_after=3)


def _wallet() -> WalletDestination:
    return WalletDestination(chain="ethereum", address=WALLET)


def _bank() -> BankDestination:
    return BankDestination(country="MX", clabe=CLABE, name="Proveedora del Norte SA de CV")
