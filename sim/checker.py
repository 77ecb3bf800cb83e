"""The simulation's invariant checker.

It wraps the journal port: after every committed append it re-checks, from the events alone, that
the books balance per currency and no client balance is negative (the store checks the same
before it commits; checking in pairs is the point). On a schedule and at the end it checks the
world against the books: at most one mined payment per transfer (never a payment for a transfer
that did not send one), each idempotency key holds one transfer, and, once everything settled,
the treasury's ledger balance equals its balance on the chain, replaying the journal rebuilds
every table (`stablerail verify`), every transfer is terminal and no timer is left. Every quote
is the best price among the answers it carries (engine.pricing.choice_problem).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from actors.alerts import alert_id
from engine import balances, ledger, liquidity, matching, pricing
from engine import events as ev
from engine.audit import AuditRecord
from engine.chain import SignedTx
from engine.discrepancies import Discrepancy
from engine.liquidity import Threshold
from engine.quotes import Quote
from engine.rails import PayoutState
from engine.reconciliation import Source
from engine.records import (
    ClaimKey,
    Committed,
    CompleteKey,
    IdempotencyRecord,
    IdempotencyStatus,
    Outcome,
    Recorded,
)
from engine.states import TERMINAL
from engine.timers import DueTimer
from engine.transfer import TransferState, payout_provider
from sim.chain import SimChain
from sim.providers import SimBank, SimOffRamp
from store import verify
from store.store import Store

OK = "ok"
NAMES = (
    "ledger_balanced",
    "no_negative_client_balance",
    "one_mined_payment_per_transfer",
    "idempotency_key_one_transfer",
    "treasury_matches_chain",
    "journal_replay_matches",
    "acknowledged_durable",
    "confirmations_canonical",
    "all_terminal",
    "no_orphaned_timers",
    "reconciled_on_every_source",
    "no_discrepancy_disappears",
    "held_balances_agree",
    "best_price_wins",
    "one_payout_per_transfer",
    "liquidity_breaches_noticed",
)

ENDINGS = (ev.Reconciled, ev.TransferCancelled, ev.TransferFailed, ev.TransferExpired)


# Events that journal a transaction for broadcast from a treasury wallet.
SIGNED = (ev.OnChainSubmitted, ev.OnChainReplaced, ev.RebalanceSubmitted, ev.RebalanceReplaced)


class Checker:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.results: dict[str, str] = dict.fromkeys(NAMES, OK)
        self.balances: dict[tuple[str, str], int] = defaultdict(int)
        self.totals: dict[str, int] = defaultdict(int)
        self.steps = 0
        # tx hash -> the transfer (or rebalancing move) id, for every transaction journaled for
        # broadcast.
        self.tx_owner: dict[str, str] = {}
        # (client, key) -> transfer ids the workload was told hold the key.
        self.key_holders: dict[tuple[str, str], set[str]] = defaultdict(set)
        # Transfers that reached an end, and who wants to hear each one (a progress bar: a plain
        # call, never a task, so watching a run cannot change its schedule or its digest).
        self.ended = 0
        self.on_ended: Callable[[int], None] | None = None

    def fail(self, name: str, detail: str) -> None:
        if self.results[name] == OK:
            self.results[name] = f"step {self.steps}: {detail}"

    @property
    def ok(self) -> bool:
        return all(v == OK for v in self.results.values())

    # --- the journal port, checked ----------------------------------------------------------

    # Reads and the idempotency bookkeeping go straight to the store.

    async def transfer(self, transfer_id: str) -> TransferState | None:
        return await self.store.transfer(transfer_id)

    async def transfer_states(self, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
        return await self.store.transfer_states(transfer_ids)

    async def unanswered_keys(self, after: tuple[str, str], limit: int) -> list[IdempotencyRecord]:
        return await self.store.unanswered_keys(after, limit)

    async def active_transfers(self, after: str, limit: int) -> list[str]:
        return await self.store.active_transfers(after, limit)

    async def due_timers(self, now_us: int, limit: int) -> list[DueTimer]:
        return await self.store.due_timers(now_us, limit)

    async def next_timer_due(self, after_us: int) -> int | None:
        return await self.store.next_timer_due(after_us)

    async def evidence_for(self, transfer_id: str) -> list[ev.EvidenceRecorded]:
        return await self.store.evidence_for(transfer_id)

    async def evidence_of(
        self, transfer_ids: Iterable[str]
    ) -> dict[str, list[ev.EvidenceRecorded]]:
        return await self.store.evidence_of(transfer_ids)

    async def evidence_since(
        self, after_seq: int, limit: int
    ) -> list[tuple[int, ev.EvidenceRecorded, bool]]:
        return await self.store.evidence_since(after_seq, limit)

    async def awaiting_reconciliation(self, after: str, limit: int) -> list[str]:
        return await self.store.awaiting_reconciliation(after, limit)

    async def discrepancies(self, open_only: bool) -> list[Discrepancy]:
        return await self.store.discrepancies(open_only)

    async def held_balances(self) -> list[tuple[str, str, int]]:
        return await self.store.held_balances()

    async def balance_at(self, account: str, currency: str, until_us: int) -> int:
        return await self.store.balance_at(account, currency, until_us)

    async def first_told(self, provider: str, event_type: str, external_ref: str) -> int | None:
        return await self.store.first_told(provider, event_type, external_ref)

    async def in_flight(self, limit: int) -> list[TransferState]:
        return await self.store.in_flight(limit)

    async def transfer_paid_by(self, tx_hash: str) -> str | None:
        return await self.store.transfer_paid_by(tx_hash)

    async def transfers_paid_by(self, tx_hashes: Iterable[str]) -> dict[str, str]:
        return await self.store.transfers_paid_by(tx_hashes)

    async def rebalance_paid_by(self, tx_hash: str) -> str | None:
        return await self.store.rebalance_paid_by(tx_hash)

    async def rebalance_ids(self, limit: int) -> list[str]:
        return await self.store.rebalance_ids(limit)

    async def transfer_for_trade(self, provider_trade_id: str) -> str | None:
        return await self.store.transfer_for_trade(provider_trade_id)

    async def last_indexed_block(self, provider: str) -> int | None:
        return await self.store.last_indexed_block(provider)

    async def quote(self, quote_id: str) -> tuple[str | None, Quote] | None:
        return await self.store.quote(quote_id)

    async def signed_transactions(
        self, chain: str, address: str, from_nonce: int = 0
    ) -> list[SignedTx]:
        return await self.store.signed_transactions(chain, address, from_nonce)

    async def expire_idempotency_keys(self, now_us: int) -> int:
        return await self.store.expire_idempotency_keys(now_us)

    async def audit(self, records: Sequence[AuditRecord]) -> Outcome:
        return await self.store.audit(records)

    async def stream(self, stream_id: str) -> list[Recorded]:
        return await self.store.stream(stream_id)

    async def before_chain(
        self, client_id: str | None, corridor: tuple[str, str] | None, after: str, limit: int
    ) -> list[str]:
        return await self.store.before_chain(client_id, corridor, after, limit)

    async def available(self, client_id: str, currency: str) -> int:
        return await self.store.available(client_id, currency)

    async def beneficiary_first_seen(self, client_id: str, beneficiary: str) -> int | None:
        return await self.store.beneficiary_first_seen(client_id, beneficiary)

    async def complete_key(
        self,
        client_id: str,
        key: str,
        status: IdempotencyStatus,
        response_status: int,
        response_body: bytes,
    ) -> Outcome:
        return await self.store.complete_key(client_id, key, status, response_status, response_body)

    async def idempotency_record(self, client_id: str, key: str) -> IdempotencyRecord | None:
        return await self.store.idempotency_record(client_id, key)

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[ev.Event],
        *,
        request_id: str | None = None,
        claim: ClaimKey | None = None,
        complete: CompleteKey | None = None,
        audit: Sequence[AuditRecord] = (),
        evidence_raw: dict[str, bytes] | None = None,
    ) -> Outcome:
        outcome = await self.store.append(
            stream_id,
            expected_version,
            events,
            request_id=request_id,
            claim=claim,
            complete=complete,
            audit=audit,
            evidence_raw=evidence_raw,
        )
        if isinstance(outcome, Committed):
            self.after_commit(stream_id, events)
        return outcome

    def after_commit(self, stream_id: str, events: Sequence[ev.Event]) -> None:
        self.steps += 1
        for event in events:
            if isinstance(
                event,
                ev.OnChainSubmitted
                | ev.OnChainReplaced
                | ev.RebalanceSubmitted
                | ev.RebalanceReplaced,
            ):
                self.tx_owner[event.tx.tx_hash] = stream_id
            if isinstance(event, ev.QuoteCaptured | ev.QuoteIssued):
                problem = pricing.choice_problem(event.quote)
                if problem:
                    self.fail("best_price_wins", f"{event.quote.quote_id}: {problem}")
            if isinstance(event, ENDINGS):
                self.ended += 1
                if self.on_ended is not None:
                    self.on_ended(self.ended)
            for entry in ev.entries_of(event):
                delta = entry.credit - entry.debit
                self.balances[(entry.account, entry.currency)] += delta
                self.totals[entry.currency] += delta
                kind = ledger.account_kind(entry.account)
                if (
                    kind in ledger.NON_NEGATIVE
                    and self.balances[(entry.account, entry.currency)] < 0
                ):
                    self.fail(
                        "no_negative_client_balance",
                        f"{entry.account} {entry.currency} went negative",
                    )
        for currency, total in self.totals.items():
            if total != 0:
                self.fail("ledger_balanced", f"{currency} sums to {total}")

    async def resume(self) -> None:
        """After a restart: rebuild what the checks remember from the journal so far."""
        rows = await self.store.reader.fetchall(
            "SELECT stream_id, payload FROM journal ORDER BY seq"
        )
        for stream_id, payload in rows:
            self.after_commit(stream_id, [ev.decode(payload)])

    async def acknowledged(self, client: str, key: str, holder: str | None) -> None:
        """A create was answered ok: the key must name a transfer, durable already (persist,
        then answer)."""
        if holder is None:
            self.fail("acknowledged_durable", f"{client}/{key}: ok, but the key names no transfer")
            return
        self.key_holders[(client, key)].add(holder)
        if await self.store.transfer(holder) is None:
            self.fail("acknowledged_durable", f"{client}/{key}: ok, but {holder} is not durable")

    # --- the world against the books ---------------------------------------------------------

    def check_chain(self, chain: SimChain, treasury: str) -> None:
        paid: dict[str, list[str]] = defaultdict(list)
        for tx in chain.mined_transfers():
            if tx.sender != treasury:
                continue
            owner = self.tx_owner.get(tx.tx_hash)
            if owner is None:
                self.fail("one_mined_payment_per_transfer", f"{tx.tx_hash} pays for no transfer")
                continue
            paid[owner].append(tx.tx_hash)
        for owner, hashes in paid.items():
            if len(hashes) > 1:
                self.fail("one_mined_payment_per_transfer", f"{owner} paid {len(hashes)} times")

    async def check_treasury(self, chain: SimChain, treasury: str, currency: str) -> None:
        account = ledger.treasury(chain.chain, treasury)
        booked = await self.store.balance(account, currency)
        on_chain = chain.balance(currency, treasury)
        if booked.debits - booked.credits != on_chain:
            self.fail(
                "treasury_matches_chain",
                f"ledger {booked.debits - booked.credits} != chain {on_chain}",
            )

    async def check_confirmations(self, chain: SimChain) -> None:
        """Every payment the books call mined is in the canonical chain, and the latest
        confirmation the journal holds for it names the block it is in now (a reorg that moved
        it was noticed and recorded)."""
        rows = await self.store.reader.fetchall("SELECT transaction_id FROM transactions")
        for (tid,) in rows:
            state = await self.store.transfer(tid)
            if state is None or state.mined is None:
                continue
            tx_hash = state.mined.tx_hash
            receipt = await chain.receipt(chain.chain, tx_hash)
            seen = [
                e.normalized.get("block_hash")
                for e in await self.store.evidence_for(tid)
                if e.event_type == matching.CHAIN_CONFIRMED
                and e.normalized.get("tx_hash") == tx_hash
            ]
            if receipt is None or not receipt.succeeded:
                self.fail("confirmations_canonical", f"{tid}: {tx_hash} is not on the chain")
            elif not seen or seen[-1] != receipt.block_hash:
                self.fail(
                    "confirmations_canonical",
                    f"{tid}: {tx_hash} is in block {receipt.block_number}"
                    f" {receipt.block_hash[:10]}, the journal last saw it in {seen[-1:]}",
                )

    async def check_reconciled(self) -> None:
        """Every RECONCILED transfer names matched evidence from every source its route needs
        (or an approved override that stands in for it)."""
        rows = await self.store.reader.fetchall(
            "SELECT transaction_id FROM transactions WHERE status = 'RECONCILED'"
        )
        for (tid,) in rows:
            state = await self.store.transfer(tid)
            assert state is not None
            records = await self.store.stream(tid)
            named = next(r.event.evidence for r in records if isinstance(r.event, ev.Reconciled))
            if any(e.startswith("override:") for e in named):
                continue
            kinds = {e.evidence_id: e.event_type for e in await self.store.evidence_for(tid)}
            kinds.update(await self._kinds([e for e in named if e not in kinds]))
            sources = {matching.SOURCE_OF[kinds[e]] for e in named if e in kinds}
            missing = matching.sources_needed(state.route) - sources
            if missing:
                self.fail(
                    "reconciled_on_every_source",
                    f"{tid} reconciled without {sorted(missing)} evidence ({named})",
                )

    async def _kinds(self, evidence_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for evidence_id in evidence_ids:
            if evidence_id.startswith("ex_"):
                row = await self.store.reader.fetchone(
                    "SELECT event_type FROM external_events WHERE event_id = ?", (evidence_id,)
                )
                if row is not None:
                    found[evidence_id] = row[0]
        return found

    async def check_cases(self) -> None:
        """Every case the journal opened is in the queue, open or closed by someone with a
        note saying why: none is dropped."""
        opened = await self.store.reader.fetchall(
            "SELECT stream_id FROM journal WHERE event_type = 'DiscrepancyOpened'"
        )
        rows = await self.store.reader.fetchall(
            "SELECT discrepancy_id, status, resolved_by, resolution_notes FROM discrepancies"
        )
        listed = {r[0]: r for r in rows}
        for (did,) in opened:
            row = listed.get(did)
            if row is None:
                self.fail("no_discrepancy_disappears", f"{did} was opened but is not listed")
            elif row[1] not in ("OPEN", "INVESTIGATING") and not (row[2] and row[3]):
                self.fail("no_discrepancy_disappears", f"{did} closed without who and why")

    def check_keys(self) -> None:
        for (client, key), holders in self.key_holders.items():
            if len(holders) > 1:
                self.fail("idempotency_key_one_transfer", f"{client}/{key} -> {sorted(holders)}")

    async def check_held_balances(self, bank: SimBank, offramp: SimOffRamp) -> None:
        """After the run: our bank account and the provider's prefunding, as the ledger has
        them, are what the bank's statement closes at and what the provider holds (the treasury
        wallet is treasury_matches_chain's). Read from the simulated world itself, not through
        its faulty APIs."""
        for account, currency, booked in await self.store.held_balances():
            match balances.source_of(account):
                case Source.BANK:
                    held = bank.closing(currency)
                case Source.PROVIDER:
                    held = offramp.holding(account.removeprefix("provider:"), currency)
                case _:
                    continue
            if held != booked:
                self.fail(
                    "held_balances_agree", f"{account} {currency}: ledger {booked}, holder {held}"
                )

    async def check_payouts(self, offramp: SimOffRamp) -> None:
        """Across every off-ramp, at most one payout per transfer was paid, and by the provider
        the transfer's books name (the quote's, or the one it was rerouted to)."""
        paid: dict[str, list[str]] = defaultdict(list)
        for (provider, transfer_id), payout in offramp.payouts.items():
            if payout.state is PayoutState.PAID:
                paid[transfer_id].append(provider)
        for transfer_id, providers in sorted(paid.items()):
            state = await self.store.transfer(transfer_id)
            named = payout_provider(state) if state is not None and state.quote else None
            if len(providers) > 1 or providers[0] != named:
                self.fail(
                    "one_payout_per_transfer",
                    f"{transfer_id}: paid by {providers}, the books name {named}",
                )

    async def check_liquidity(self, thresholds: tuple[Threshold, ...]) -> None:
        """Every held balance past one of its bounds is in an open episode of the liquidity
        stream, whose one alert was raised; every open episode is a balance still past it."""
        episodes: dict[tuple[str, str], liquidity.Episode] = {}
        for record in await self.store.stream(ev.LIQUIDITY_STREAM):
            assert isinstance(record.event, ev.LiquidityBreached | ev.LiquidityRestored)
            liquidity.fold(episodes, record.event)
        for account, currency, balance in await self.store.held_balances():
            threshold = next((t for t in thresholds if t.covers(account, currency)), None)
            past = liquidity.bound_of(threshold, balance) if threshold is not None else None
            episode = episodes.pop((account, currency), None)
            if past is None and episode is None:
                continue
            if past is None or episode is None or episode.bound is not past[0]:
                self.fail(
                    "liquidity_breaches_noticed",
                    f"{account} {currency} {balance}: past {past}, episode {episode}",
                )
                continue
            kind = f"liquidity_{episode.bound.value}"
            aid = alert_id(kind, None, episode.since, f"{account}/{currency}")
            if not await self.store.stream(aid):
                self.fail("liquidity_breaches_noticed", f"{account} {currency}: no alert {aid}")
        for key, episode in episodes.items():
            self.fail("liquidity_breaches_noticed", f"{key}: episode {episode} for no balance")

    async def check_end(
        self,
        chain: SimChain,
        treasury: str,
        treasury_currency: str,
        data_dir: Path,
        holders: tuple[SimBank, SimOffRamp] | None = None,
    ) -> None:
        """`holders`: the bank and the off-ramp, to check the balances they hold for us."""
        self.check_chain(chain, treasury)
        if holders is not None:
            await self.check_held_balances(*holders)
            await self.check_payouts(holders[1])
        self.check_keys()
        await self.check_treasury(chain, treasury, treasury_currency)
        await self.check_confirmations(chain)
        rows = await self.store.reader.fetchall(
            "SELECT transaction_id, status FROM transactions ORDER BY transaction_id"
        )
        open_ = [(t, s) for t, s in rows if s not in {x.value for x in TERMINAL}]
        if open_:
            self.fail("all_terminal", f"{len(open_)} not terminal, e.g. {open_[:3]}")
        timers = await self.store.reader.fetchall("SELECT transaction_id, kind FROM timers")
        if timers:
            self.fail("no_orphaned_timers", f"{len(timers)} timers left, e.g. {timers[:3]}")
        await self.check_reconciled()
        await self.check_cases()
        report = await verify.verify(data_dir)
        if not report.ok:
            bad = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
            self.fail("journal_replay_matches", "; ".join(bad)[:500])
