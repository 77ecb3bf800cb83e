"""Settlement tracking for off-ramp payouts: callbacks and polling, because webhooks get lost.

A payout is settled on two witnesses: the provider reports it paid (with the bank reference it
used) and the receiving bank shows the credit under that reference; and only once the deposit
that funds it is final (a reorg before that sends the transfer back from CONFIRMED). Both are
recorded as evidence before the transfer hears MarkFiatSettled. A provider webhook is recorded
whenever it arrives, under the transfer the journal names for its trade (duplicates collapse
onto the stored evidence), and is acted on if the payout is being watched; a watched payout is
also polled with a growing interval, so a lost webhook only delays settlement.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import msgspec

from actors.evidence import record_evidence
from actors.fanout import for_each
from actors.messages import Envelope
from engine import commands as c
from engine import limits, matching
from engine.backoff import delay_us
from engine.matching import payout_facts
from engine.rails import PayoutState, PayoutStatus, RailError

if TYPE_CHECKING:
    from actors.context import Context
    from actors.registry import Registry

_status_decoder = msgspec.json.Decoder(PayoutStatus)


@dataclasses.dataclass(slots=True)
class _Trade:
    transfer_id: str
    provider: str
    trade_id: str
    attempt: int = 0
    next_poll_us: int = 0
    # The transfer's corridor ("USD-MXN"): its slippage tolerance judges the fill.
    corridor: str = ""


class SettlementTracker:
    def __init__(self, ctx: Context, registry: Registry) -> None:
        self.ctx = ctx
        self.registry = registry
        self.trades: dict[str, _Trade] = {}
        # provider_trade_id -> transfer_id, for webhooks.
        self.by_trade: dict[str, str] = {}

    def watch(self, transfer_id: str, provider: str, trade_id: str, corridor: str = "") -> None:
        if transfer_id not in self.trades:
            self.trades[transfer_id] = _Trade(
                transfer_id,
                provider,
                trade_id,
                next_poll_us=self.ctx.clock.now_us(),
                corridor=corridor,
            )
            self.by_trade[trade_id] = transfer_id

    def forget(self, transfer_id: str) -> None:
        trade = self.trades.pop(transfer_id, None)
        if trade is not None:
            self.by_trade.pop(trade.trade_id, None)

    async def _deposit_final(self, transfer_id: str) -> bool:
        state = await self.ctx.journal.transfer(transfer_id)
        if state is None or state.mined is None or not state.txs:
            return False
        try:
            async with asyncio.timeout(limits.rail_call_timeout_s):
                view = await self.ctx.rails.chain.view(state.txs[-1].chain)
        except (RailError, TimeoutError):
            return False
        return state.mined.block_number <= view.final

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.tuning.supervisor_poll_s)
            now = self.ctx.clock.now_us()
            due = [t for t in self.trades.values() if t.next_poll_us <= now]
            await for_each(due, self.poll, limit=limits.supervisor_fanout_max)

    async def poll(self, trade: _Trade) -> None:
        try:
            async with asyncio.timeout(limits.rail_call_timeout_s):
                status = await self.ctx.rails.offramp.payout_status(trade.provider, trade.trade_id)
        except (RailError, TimeoutError):
            status = None
        if status is None or not await self.settle(trade, status):
            # A payout the provider says it paid is watched until the bank shows the credit
            # (at the capped interval; reconciliation meanwhile reports the credit missing).
            paid = status is not None and status.state is PayoutState.PAID
            if not paid and trade.attempt + 1 >= limits.settlement_polls_max:
                self.forget(trade.transfer_id)
                return
            trade.next_poll_us = self.ctx.clock.now_us() + delay_us(
                trade.attempt,
                base_us=limits.settlement_poll_base_us,
                cap_us=limits.settlement_poll_cap_us,
                key=trade.trade_id,
            )
            trade.attempt += 1

    async def on_webhook(self, raw: bytes) -> bool:
        """A provider's payout webhook. Returns whether it was understood (a malformed one is
        refused, not guessed at)."""
        try:
            status = _status_decoder.decode(raw)
        except msgspec.DecodeError:
            return False
        # A trade not watched yet (a pre-funded payout paid before its deposit confirmed) or
        # any more is still named by the journal: its report is kept as the transfer's.
        transfer_id = self.by_trade.get(
            status.provider_trade_id
        ) or await self.ctx.journal.transfer_for_trade(status.provider_trade_id)
        await self.record(status, transfer_id, raw)
        trade = self.trades.get(transfer_id) if transfer_id else None
        if trade is not None:
            await self.settle(trade, status)
        return True

    async def record(self, status: PayoutStatus, transfer_id: str | None, raw: bytes) -> None:
        if status.state is PayoutState.PENDING:
            return
        kind = (
            matching.PAYOUT_PAID if status.state is PayoutState.PAID else matching.PAYOUT_RETURNED
        )
        await record_evidence(
            self.ctx,
            provider=status.provider,
            event_type=kind,
            external_ref=status.provider_trade_id,
            occurred_at=self.ctx.clock.now_us(),
            transfer_id=transfer_id,
            normalized=payout_facts(status),
            raw=raw,
        )

    async def settle(self, trade: _Trade, status: PayoutStatus) -> bool:
        """Act on a payout status; whether the trade is done with."""
        tid = trade.transfer_id
        match status.state:
            case PayoutState.PENDING:
                return False
            case PayoutState.RETURNED:
                await self.record(status, tid, msgspec.json.encode(status))
                returned = c.RecordFundsReturned(reference=trade.trade_id)
                if self.registry.tell(tid, Envelope(returned)):
                    self.forget(tid)
                    return True
                return False
        assert status.bank_reference is not None
        await self.record(status, tid, msgspec.json.encode(status))
        if not await self._deposit_final(tid):
            # Until the deposit that funds the payout is final, a reorg can still send the
            # transfer back to SENT_ON_CHAIN (CONFIRMED is where that is undone): it is marked
            # settled once it is final (a pre-funded payout may be paid well before).
            return False
        try:
            async with asyncio.timeout(limits.rail_call_timeout_s):
                credit = await self.ctx.rails.bank.credit(status.bank_reference)
        except (RailError, TimeoutError):
            return False
        if credit is None:
            return False
        await record_evidence(
            self.ctx,
            provider=credit.bank,
            event_type=matching.BANK_CREDIT,
            external_ref=credit.bank_reference,
            occurred_at=self.ctx.clock.now_us(),
            transfer_id=tid,
            normalized={
                "amount": str(credit.amount),
                "currency": credit.currency,
                "account": credit.account,
            },
            raw=msgspec.json.encode(credit),
        )
        settled = c.MarkFiatSettled(
            bank_reference=status.bank_reference,
            amount=status.amount,
            debited=status.debited,
            fill_rate=status.rate,
            slippage_tolerance_bps=self.ctx.tuning.slippage_for(trade.corridor),
        )
        if self.registry.tell(tid, Envelope(settled)):
            self.forget(tid)
            return True
        return False
