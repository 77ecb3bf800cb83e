"""Two simulated operators working the reconciliation queue, as people would, so a simulated run
exercises the whole case workflow (and its transfers can finish).

A case is left alone for `patience_s` (the pipeline may close it by itself: a late report
arrives). Then one operator takes it and decides by kind:
  unconfirmed_match             confirmed (resolved): the transfer may reconcile on it
  amount / fee mismatch         resolved with a note (the provider's terms accepted; no money)
  fx mismatch                   the fill accepted: what the ledger parked in suspense for it is
                                moved to FX P&L (proposed by one, approved by the other)
  duplicate (HIGH)              false positive (the report the ledger agrees with stands)
  external_only                 written off to suspense from where the value is (the bank
                                account, the treasury wallet): the first operator proposes the
                                correcting entries, the second approves them (maker-checker)
  balance_drift                 left to the pipeline (it closes when the books agree again)
  missing_evidence              left to the pipeline (it closes when the report comes)

They also keep the off-ramps' prefunding inside its bounds: while `rebalancing`, each move of the
liquidity plan (a payment out of the treasury wallet, or a withdrawal from a provider above its
ceiling) is proposed by the first and approved by the second.
"""

from __future__ import annotations

from collections import Counter

import anyio

from actors.system import System
from engine import discrepancies as dc
from engine import events as ev
from engine import ledger, liquidity
from engine.reconciliation import Kind, Source
from engine.results import Result
from engine.service import CaseDecision
from engine.transfer import RAIL_CHAIN

MAKER, CHECKER = "ops-ana", "ops-bo"


class OpsDesk:
    def __init__(self, system: System, bank: str, patience_s: float = 600) -> None:
        self.system = system
        self.bank = bank
        self.patience_us = int(patience_s * 1_000_000)
        self.done: Counter[str] = Counter()
        self.rebalancing = True

    async def run(self, poll_s: float = 60) -> None:
        while True:
            await anyio.sleep(poll_s)
            await self.work()

    async def work(self) -> None:
        ctx = self.system.ctx
        now = ctx.clock.now_us()
        if self.rebalancing:
            await self._rebalance()
        for case in await ctx.journal.discrepancies(open_only=True):
            if now - case.created_at < self.patience_us:
                continue
            if case.proposal is not None:
                await self._act(case, lambda k: dc.decide_proposal(k, True, "", CHECKER, now))
                continue
            match case.kind:
                case Kind.UNCONFIRMED_MATCH:
                    await self._resolve(case, dc.Resolution.RESOLVED, "match confirmed", now)
                case Kind.AMOUNT_MISMATCH | Kind.FEE_MISMATCH:
                    note = "provider's terms checked against the contract and accepted"
                    await self._resolve(case, dc.Resolution.RESOLVED, note, now)
                case Kind.FX_MISMATCH:
                    await self._accept_fill(case, now)
                case Kind.DUPLICATE_EXTERNAL_EVENT:
                    note = "two reports of one event: the one the ledger agrees with stands"
                    await self._resolve(case, dc.Resolution.FALSE_POSITIVE, note, now)
                case Kind.EXTERNAL_ONLY:
                    await self._write_off(case, now)

    async def _resolve(
        self, case: dc.Discrepancy, resolution: dc.Resolution, note: str, now: int
    ) -> None:
        await self._act(case, lambda k: dc.resolve(k, resolution, note, (), MAKER, now))

    async def _accept_fill(self, case: dc.Discrepancy, now: int) -> None:
        """A fill beyond the slippage tolerance, accepted after checking the provider's terms:
        the difference the ledger parked in suspense is moved to FX P&L (proposed by the first
        operator, approved by the second)."""
        parked = 0
        if case.transfer_id is not None:
            for record in await self.system.ctx.journal.stream(case.transfer_id):
                if isinstance(record.event, ev.FiatSettled):
                    for e in record.event.entries:
                        if e.account == ledger.SUSPENSE:
                            parked += e.debit - e.credit
                            currency = e.currency
        note = "fill checked against the provider's contract and accepted"
        if parked == 0:
            await self._resolve(case, dc.Resolution.RESOLVED, note, now)
            return
        entries = (
            (
                dc.correction_entry(ledger.FX_PNL, currency, parked, 0),
                dc.correction_entry(ledger.SUSPENSE, currency, 0, parked),
            )
            if parked > 0
            else (
                dc.correction_entry(ledger.SUSPENSE, currency, -parked, 0),
                dc.correction_entry(ledger.FX_PNL, currency, 0, -parked),
            )
        )
        await self._act(
            case, lambda k: dc.resolve(k, dc.Resolution.RESOLVED, note, entries, MAKER, now)
        )

    async def _write_off(self, case: dc.Discrepancy, now: int) -> None:
        """The value is booked where it is (our bank account, or the treasury wallet the chain
        shows it in or out of), against suspense."""
        amount, currency = int(case.actual["amount"]), case.actual["currency"]
        held, suspense = ledger.bank(self.bank), ledger.SUSPENSE
        if case.source == Source.CHAIN:
            custody = self.system.ctx.rails.custody
            held = ledger.treasury(RAIL_CHAIN, custody.address(RAIL_CHAIN))
        if case.actual.get("direction") == "out":
            entries = (
                dc.correction_entry(suspense, currency, amount, 0),
                dc.correction_entry(held, currency, 0, amount),
            )
        else:
            entries = (
                dc.correction_entry(held, currency, amount, 0),
                dc.correction_entry(suspense, currency, 0, amount),
            )
        note = "no payer found: parked in suspense"
        await self._act(
            case, lambda k: dc.resolve(k, dc.Resolution.WRITTEN_OFF, note, entries, MAKER, now)
        )

    async def _rebalance(self) -> None:
        supervisors = self.system.supervisors
        rebalancer = supervisors.rebalancer
        view = liquidity.view(
            self.system.ctx.tuning.liquidity,
            await self.system.ctx.journal.held_balances(),
            supervisors.reconciler.liquidity.episodes,
            rebalancer.pending(),
        )
        for move in view.plan:
            proposed = await rebalancer.propose(
                from_account=move.from_account, to_account=move.to_account,
                currency=move.currency, amount=move.amount,
                reason=f"liquidity plan: {move.to_account} below its floor", by=MAKER,
            )  # fmt: skip
            if isinstance(proposed, Result):
                self.done[f"rebalance_{proposed.code}"] += 1
                continue
            decided = await rebalancer.decide(proposed.rebalance_id, CHECKER, True, "")
            if isinstance(decided, Result):
                # It cannot be approved (the wallet cannot cover it now): rejected, with why.
                reason = f"cannot be approved: {decided.code}"
                await rebalancer.decide(proposed.rebalance_id, CHECKER, False, reason)
            outcome = decided.code if isinstance(decided, Result) else decided.state.value
            self.done[f"rebalance_{outcome}"] += 1

    async def _act(self, case: dc.Discrepancy, decide: CaseDecision) -> None:
        found = await self.system.act_on_case(case.discrepancy_id, decide)
        if not isinstance(found, Result):
            self.done[found.status.value if found.closed else "proposed"] += 1
