"""The reconciliation pipeline (Series 5): continuous, not periodic.

Every round the reconciler reads what the sources reported since the last round (external_events,
in journal order), states what the ledger expects of each source for every transfer awaiting
reconciliation (engine.matching), and lets the matcher (engine.reconciliation) pair them and
classify every difference. Then:

- a transfer whose route's sources all matched with certainty (or whose difference an operator
  closed, accepting the report) moves to RECONCILED, naming the evidence;
- every difference becomes a case (engine.discrepancies), opened once per difference: a later
  round that finds it again leaves the open case alone, and a difference an operator closed is
  not reopened; a LOW duplicate (the same event told twice) is opened and closed at once, so it
  is counted, not hidden;
- an open case whose difference went away (the late report arrived, the transfer moved on) is
  closed by the pipeline with a note saying why: no case disappears silently;
- an open case past its SLA deadline raises one alert.

A transfer already RECONCILED is looked at again when a report about it arrives: a report that
contradicts what it reconciled on (a provider's trade report stating another fee) is a case; the
transfer's history stands. Every `Tuning.balance_check_s` a full round also runs the balance-level
checks (actors.balances).

Reports nobody claims (a statement line, a provider report line) stay in a pool: they may match a
transfer later, or after their grace (`Tuning.external_only_grace_s`, an hour) become
`external_only` cases. A round runs soon after a transfer asks (its confirmation, its
settlement) over just the transfers that changed, and every `Tuning.reconcile_round_s` (a
minute) over all of them (only a full round may call a report external-only: a partial one has
not seen every transfer it could belong to).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from actors.alerts import raise_alert
from actors.balances import BalanceChecks
from actors.liquidity import LiquidityWatch
from actors.messages import Envelope
from actors.statement_import import credited_deposit, refs_of
from engine import commands as c
from engine import discrepancies as dc
from engine import limits, matching
from engine.events import EvidenceRecorded
from engine.matching import (
    awaiting,
    checked,
    expectations,
    observe,
    reconcilable,
    sources_needed,
)
from engine.rails import RailError
from engine.reconciliation import (
    CERTAIN,
    Expected,
    Finding,
    Kind,
    Observed,
    Severity,
    Source,
    reconcile,
)
from engine.records import Committed, Rejected
from engine.results import Result
from engine.states import Status
from engine.transfer import TransferState

if TYPE_CHECKING:
    from actors.confirmations import ConfirmationWatcher
    from actors.context import Context
    from actors.registry import Registry

# Closing a case the operator accepted lets its report stand as the source's witness: a mismatch
# closed any way (the difference is explained, booked or not real), a review confirmed.
_ACCEPTING = {
    Kind.AMOUNT_MISMATCH: frozenset(dc.CLOSED),
    Kind.FEE_MISMATCH: frozenset(dc.CLOSED),
    Kind.FX_MISMATCH: frozenset(dc.CLOSED),
    Kind.UNCONFIRMED_MATCH: frozenset({dc.Status.RESOLVED}),
}
_FEED_PAGE = 2_000
_AWAITING_PAGE = 1_000


class Reconciler:
    def __init__(
        self, ctx: Context, registry: Registry, confirmations: ConfirmationWatcher
    ) -> None:
        self.ctx = ctx
        self.registry = registry
        self.confirmations = confirmations
        # Transfers to look at in the next (partial) round.
        self.dirty: set[str] = set()
        # Unclaimed reports: evidence id -> (observation, when first seen, the report).
        self.pool: dict[str, tuple[Observed, int, EvidenceRecorded]] = {}
        # Reports that left the pool: explained by the ledger, or reconciled on.
        self.released: set[str] = set()
        self.watermark = 0
        self.fed = False
        # Open cases by case key; closed ones by case key (several, over time).
        self.open: dict[str, dc.Discrepancy] = {}
        self.closed: dict[str, list[dc.Discrepancy]] = {}
        self.loaded = False
        self.next_full_us = 0
        self.rounds = 0
        self.balances = BalanceChecks(ctx, self)
        self.liquidity = LiquidityWatch(ctx)
        # What transfers still wait for, by (source, key): a report that arrives unclaimed under
        # one of these keys (a chain log of a payment whose replacement was the one broadcast
        # last, a statement line) sends its transfer to the next partial round at once. Full
        # rounds start it afresh, so an ended transfer's entry lasts at most until the next.
        self.waiting: dict[tuple[Source, str], str] = {}
        # Transfers whose sources all agree but whose payment's block is not final yet, by
        # chain: transfer -> block. Each round lets through those the chain's finality passed.
        self.not_final: dict[str, dict[str, int]] = {}
        self._finals: dict[str, int | None] = {}

    @property
    def _grace_us(self) -> int:
        return int(self.ctx.tuning.external_only_grace_s * 1e6)

    @property
    def unclassified(self) -> int:
        """Unclaimed reports no case names yet (still inside their grace, or not yet looked
        at by a full round)."""
        named = {
            e
            for cases in (list(self.open.values()), *self.closed.values())
            for k in cases
            for e in k.evidence_ids
        }
        return sum(1 for evidence_id in self.pool if evidence_id not in named)

    def request(self, transfer_id: str) -> None:
        self.dirty.add(transfer_id)

    def forget(self, transfer_id: str) -> None:
        self.dirty.discard(transfer_id)
        for held in self.not_final.values():
            held.pop(transfer_id, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.tuning.supervisor_poll_s)
            now = self.ctx.clock.now_us()
            if now >= self.next_full_us:
                self.next_full_us = now + int(self.ctx.tuning.reconcile_round_s * 1e6)
                await self.round(full=True)
            elif self.dirty or await self._finality_passed():
                await self.round(full=False)

    # --- one round --------------------------------------------------------------------------

    async def round(self, *, full: bool) -> None:
        now = self.ctx.clock.now_us()
        self._finals.clear()
        await self._refresh_cases()
        await self._read_feed()
        if full:
            await self._recheck_pool(now)
            tids = await self._all_awaiting()
            tids |= {k.transfer_id for k in self.open.values() if k.transfer_id} | self.dirty
        else:
            tids = set(self.dirty)
        tids |= await self._now_final()
        self.dirty.clear()
        states: dict[str, TransferState] = {}
        expected: list[Expected] = []
        observed: list[Observed] = []
        found = await self.ctx.journal.transfer_states(tids)
        for tid in sorted(found):
            if tid in self.confirmations.unverified:
                self.dirty.add(tid)  # Again once the node has confirmed the confirmation.
                continue
            states[tid] = found[tid]
        evidence_of = await self.ctx.journal.evidence_of(
            tid for tid, state in states.items() if checked(state)
        )
        for tid, state in states.items():
            if not checked(state):
                continue
            evidence = evidence_of.get(tid, [])
            expected.extend(expectations(state, evidence))
            observed.extend(o for o in map(observe, evidence) if o is not None)
        observed.extend(o for o, _, _ in self.pool.values())
        outcome = reconcile(expected, observed, now)
        if full:
            self.waiting.clear()
        for item in outcome.waiting:
            if item.key:
                self.waiting[(item.source, item.key)] = item.transfer_id
        findings = [f for f in outcome.findings if full or f.kind is not Kind.EXTERNAL_ONLY]
        findings = [f for f in findings if not self._too_soon(f, now)]
        # A reconciled transfer is checked for reports that contradict it, not for missing
        # ones (an approved override stands in for evidence that never came).
        findings = [
            f
            for f in findings
            if not (
                f.kind is Kind.MISSING_EVIDENCE
                and f.transfer_id is not None
                and states[f.transfer_id].status is Status.RECONCILED
            )
        ]
        findings = [f for f in findings if not await self._reorged_away(f)]
        self.rounds += 1

        witnessed: dict[str, dict[Source, tuple[str, ...]]] = {}
        for m in outcome.matches:
            if m.confidence == CERTAIN:
                witnessed.setdefault(m.transfer_id, {})[m.source] = (m.evidence_id,)
        found_keys: set[str] = set()
        for finding in findings:
            found_keys.add(finding.case_key)
            accepted = await self.case_for(finding, now)
            if accepted is not None and finding.transfer_id is not None:
                witnessed.setdefault(finding.transfer_id, {})[finding.source] = (
                    *finding.evidence_ids,
                    accepted.discrepancy_id,
                )
        for tid, state in states.items():
            seen = witnessed.get(tid, {})
            if (
                reconcilable(state)
                and sources_needed(state.route) <= seen.keys()
                and await self._final(state)
            ):
                ids = tuple(i for source in sorted(seen) for i in seen[source])
                if self.registry.tell(tid, Envelope(c.Reconcile(evidence=ids))):
                    for evidence_id in ids:
                        if self.pool.pop(evidence_id, None) is not None:
                            self.released.add(evidence_id)
                else:
                    self.dirty.add(tid)  # Its mailbox is full: the next round asks again.
        paired = {m.evidence_id for m in outcome.matches} | {
            e for f in findings if f.kind is not Kind.EXTERNAL_ONLY for e in f.evidence_ids
        }
        await self._close_gone(found_keys, states, paired, full, now)
        if full:
            await self.balances.maybe_check(now)
        await self._alert_breaches(now)

    async def _final_block(self, chain: str) -> int | None:
        """Where the chain's finality stands this round (None: the node cannot say now)."""
        if chain not in self._finals:
            try:
                async with asyncio.timeout(limits.rail_call_timeout_s):
                    self._finals[chain] = (await self.ctx.rails.chain.view(chain)).final
            except (RailError, TimeoutError):
                self._finals[chain] = None
        return self._finals[chain]

    async def _final(self, state: TransferState) -> bool:
        """Whether the transfer's payment (if it has one) is in a final block: a payment a
        reorg could still take away is not reconciled, however many confirmations it has."""
        if state.mined is None:
            return True
        chain = state.txs[-1].chain
        final = await self._final_block(chain)
        if final is None or state.mined.block_number > final:
            self.not_final.setdefault(chain, {})[state.transfer_id] = state.mined.block_number
            return False
        self.not_final.get(chain, {}).pop(state.transfer_id, None)
        # Final by its number; still in the block the books name? (A reorg the watcher did not
        # see, while the process was down: the transfer waits, and its time in state alerts.)
        try:
            async with asyncio.timeout(limits.rail_call_timeout_s):
                receipt = await self.ctx.rails.chain.receipt(chain, state.mined.tx_hash)
        except (RailError, TimeoutError):
            return False  # asked again at the next full round
        return receipt is not None and receipt.block_hash == state.mined.block_hash

    async def _finality_passed(self) -> bool:
        """Whether a transfer held back for finality may go now (its chain asked once)."""
        if not any(self.not_final.values()):
            return False
        self._finals.clear()
        self.dirty |= await self._now_final()
        return bool(self.dirty)

    async def _now_final(self) -> set[str]:
        """Transfers held back for finality whose block is now final."""
        ready: set[str] = set()
        for chain, held in self.not_final.items():
            final = await self._final_block(chain) if held else None
            if final is not None:
                passed = {tid for tid, block in held.items() if block <= final}
                for tid in passed:
                    del held[tid]
                ready |= passed
        return ready

    def _too_soon(self, finding: Finding, now: int) -> bool:
        """An unclaimed report is external-only only after its grace (its transfer may be a
        moment behind it)."""
        if finding.kind is not Kind.EXTERNAL_ONLY:
            return False
        pooled = self.pool.get(finding.evidence_ids[0])
        return pooled is not None and now - pooled[1] < self._grace_us

    async def _reorged_away(self, finding: Finding) -> bool:
        """An unclaimed chain log is checked against the node before it is called external-only:
        one from a block a reorg took away leaves the pool (the new fork's log, if the
        transaction was mined again, is its own report). A node that cannot answer now
        postpones the call to a later round."""
        if finding.kind is not Kind.EXTERNAL_ONLY or finding.source is not Source.CHAIN:
            return False
        pooled = self.pool.get(finding.evidence_ids[0])
        if pooled is None:
            return False
        event = pooled[2]
        chain = matching.chain_of(event.provider)
        try:
            async with asyncio.timeout(limits.rail_call_timeout_s):
                receipt = await self.ctx.rails.chain.receipt(chain, event.normalized["tx_hash"])
        except (RailError, TimeoutError):
            return True
        if receipt is not None and receipt.block_hash == event.normalized["block_hash"]:
            return False
        del self.pool[event.evidence_id]
        self.released.add(event.evidence_id)
        return True

    async def _recheck_pool(self, now: int) -> None:
        """A pooled report the ledger came to explain (its deposit was credited after the
        statement was read) leaves the pool before it could be called external-only."""
        for evidence_id, (_, first_seen, event) in list(self.pool.items()):
            if now - first_seen >= self._grace_us // 2 and await self._explained(event):
                del self.pool[evidence_id]
                self.released.add(evidence_id)

    async def _all_awaiting(self) -> set[str]:
        found: set[str] = set()
        after = ""
        while True:
            page = await self.ctx.journal.awaiting_reconciliation(after, _AWAITING_PAGE)
            found.update(page)
            if len(page) < _AWAITING_PAGE:
                return found
            after = page[-1]

    async def _read_feed(self) -> None:
        """New reports: an unclaimed one joins the pool, a claimed one marks its transfer (not
        on the first read after a start: the first round is a full one, over every transfer
        still awaiting, and history's transfers are done)."""
        now = self.ctx.clock.now_us()
        catching_up = not self.fed
        self.fed = True
        while True:
            page = await self.ctx.journal.evidence_since(self.watermark, _FEED_PAGE)
            for seq, event, matched in page:
                self.watermark = seq
                if event.transfer_id is not None:
                    if not catching_up:
                        self.dirty.add(event.transfer_id)
                    continue
                seen = observe(event)
                if seen is not None and not matched and not await self._explained(event):
                    self.pool[event.evidence_id] = (seen, now, event)
                    waiting = self.waiting.pop((seen.source, seen.key), None)
                    if waiting is not None and not catching_up:
                        self.dirty.add(waiting)
            if len(page) < _FEED_PAGE:
                return

    async def _explained(self, event: EvidenceRecorded) -> bool:
        """A report the ledger already holds under its own key: a statement line of a client's
        deposit (credited under one of the line's references),
        stablecoin coming back to the treasury that a provider reported as a returned payout
        (the transfer's FundsReturned booked it), or stablecoin a rebalancing move carried out of
        or into a treasury wallet (booked at its confirmation; the balance checks hold it to the
        amount)."""
        if event.event_type == matching.CHAIN_TRANSFER:
            tx_hash = event.normalized.get("tx_hash", "")
            if await self.ctx.journal.rebalance_paid_by(tx_hash) is not None:
                return True
            if event.normalized.get("direction") != "in":
                return False
            return await self.ctx.journal.transfer_paid_by(tx_hash) is not None
        if event.normalized.get("direction") != "credit":
            return False
        references = refs_of(event.normalized)
        deposit = await credited_deposit(
            self.ctx.journal, event.provider, references, event.occurred_at
        )
        return deposit is not None

    # --- cases --------------------------------------------------------------------------------

    async def _refresh_cases(self) -> None:
        """The open cases as the store has them now (operators change them between rounds)."""
        if not self.loaded:
            for case in await self.ctx.journal.discrepancies(open_only=False):
                self._remember(case)
            self.loaded = True
            return
        now_open = {k.case_key: k for k in await self.ctx.journal.discrepancies(open_only=True)}
        for key, case in list(self.open.items()):
            if key not in now_open:
                closed = await self._load(case.discrepancy_id)
                if closed is not None:
                    self._remember(closed)
        for case in now_open.values():
            self._remember(case)

    async def _load(self, discrepancy_id: str) -> dc.Discrepancy | None:
        return dc.from_records(await self.ctx.journal.stream(discrepancy_id))

    def _remember(self, case: dc.Discrepancy) -> None:
        if case.closed:
            self.open.pop(case.case_key, None)
            history = self.closed.setdefault(case.case_key, [])
            if all(k.discrepancy_id != case.discrepancy_id for k in history):
                history.append(case)
        else:
            self.open[case.case_key] = case

    async def case_for(self, finding: Finding, now: int) -> dc.Discrepancy | None:
        """Open a case for `finding` unless one is open or an operator closed it; returns the
        closed case whose closing accepts the finding's report, if there is one."""
        key = finding.case_key
        if key in self.open:
            return None
        for case in self.closed.get(key, ()):
            if case.evidence_ids == finding.evidence_ids:
                accepting = _ACCEPTING.get(case.kind, frozenset())
                return case if case.status in accepting else None
        opened = dc.open_case(self.ctx.ids.new("dc"), finding, now)
        new = await self.append_case(None, opened)
        if new is None:
            return None
        if finding.kind is Kind.DUPLICATE_EXTERNAL_EVENT and finding.severity is Severity.LOW:
            note = (
                f"the same event reported twice ({', '.join(finding.evidence_ids)}): counted once"
            )
            await self.append_case(new, dc.close_by_pipeline(new, note, now))
        return None

    async def append_case(
        self, case: dc.Discrepancy | None, event: dc.DiscrepancyEvent
    ) -> dc.Discrepancy | None:
        version = 0 if case is None else case.version
        outcome = await self.ctx.journal.append(event.discrepancy_id, version, [event])
        if isinstance(outcome, Rejected) and outcome.result is Result.version_conflict:
            return None  # An operator acted first: the next round reads the case again.
        assert isinstance(outcome, Committed), outcome
        after = dc.evolve(case, event)
        self._remember(after)
        return after

    async def _close_gone(
        self,
        found: set[str],
        states: dict[str, TransferState],
        paired: set[str],
        full: bool,
        now: int,
    ) -> None:
        """Close every open case whose difference this round did not find again, where the
        round looked: its transfer was examined, or (full round, a report nothing claimed) the
        report is now paired with a transfer, explained by the ledger or reconciled on."""
        for key, case in list(self.open.items()):
            if key in found:
                continue
            if case.transfer_id is not None:
                state = states.get(case.transfer_id)
                if state is None:
                    continue  # Not examined this round.
                if awaiting(state):
                    note = f"no longer found: {_gone(case)}"
                else:
                    note = f"transfer {case.transfer_id} is {state.status.value}"
            elif (
                full
                and case.evidence_ids
                and all(e in paired or e in self.released for e in case.evidence_ids)
            ):
                note = "the report is now paired with the ledger"
            else:
                continue
            await self.append_case(case, dc.close_by_pipeline(case, note, now))
        # Only what an open case may still need to know is kept.
        self.released &= {e for k in self.open.values() for e in k.evidence_ids}

    async def _alert_breaches(self, now: int) -> None:
        for case in list(self.open.values()):
            if dc.breached(case, now):
                await raise_alert(
                    self.ctx,
                    kind="discrepancy_sla_breached",
                    transfer_id=case.transfer_id,
                    status=case.status.value,
                    cause_at_us=case.sla_deadline,
                    detail=f"{case.discrepancy_id} ({case.kind}, {case.severity}) open past its"
                    f" SLA deadline",
                )


def _gone(case: dc.Discrepancy) -> str:
    match case.kind:
        case Kind.MISSING_EVIDENCE:
            return f"the {case.source} report arrived"
        case _:
            return f"the {case.source} report now agrees with the ledger"
