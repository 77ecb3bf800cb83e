"""The checker's held_balances_agree invariant catches books that disagree with a holder: a deposit
credited in the ledger that the bank's statement never shows fails it; once the statement shows
every credit the ledger holds, it passes."""

from __future__ import annotations

from pathlib import Path

from actors.system import System
from engine.results import Result
from sim.checker import OK, Checker
from sim.world import deposit_command
from tests.actors.test_runtime import CLIENT, World, in_world


def test_a_credit_the_bank_never_booked_fails_the_invariant(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        system = System(world.context())
        bank = world.rails.bank
        now = world.clock.now_us()
        assert await system.credit_deposit(deposit_command(now, "DEP-X", CLIENT, 900_00)) is (
            Result.ok
        )
        checker = Checker(world.store)
        await checker.check_held_balances(bank, world.rails.offramp)
        found = checker.results["held_balances_agree"]
        assert "bank:bank-sim USD: ledger 90000, holder 0" in found

        bank.statement.append((now, "DEP-X", CLIENT, 900_00))
        again = Checker(world.store)
        await again.check_held_balances(bank, world.rails.offramp)
        assert again.results["held_balances_agree"] == OK

    in_world(tmp_path, body)
