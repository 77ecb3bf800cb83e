"""The rebalancer: rebalancing moves (engine.rebalance) proposed, decided and carried out: a
payment from a treasury wallet we sign and send, or a withdrawal a provider sends.

One step at a time per move (a lock each), each decided on the move as journaled and appended at
its version, then acted on: an approval is journaled before anything is signed, the signed payment
before it is broadcast (actors.signing, the nonce book's nonce for the move). What the chain does
with the payment comes from the confirmation watcher that watches transfers' payments; it tells
this supervisor about ids that start "rb_" (ConfirmationWatcher.owners) as it tells a transfer's
actor: confirmed (booked), reorged (booking reversed, the same bytes again), reverted (failed,
nothing moved), dropped (the same bytes again), stuck (replaced: same nonce, higher fees).

At start every open move is re-driven: an approved one is signed (a payment signed but not
journaled before a crash is signed again with the nonce the book gives the move), a submitted one
is sent again and watched, a confirmed one is watched until its block is final. A withdrawal is
asked of the provider once approved (idempotent by the move's id), then asked about every
`limits.withdrawal_poll_us` until the provider reports the transaction it sent, which the
watcher then follows like ours (only a reorg or a revert is acted on: the provider's transaction
is not ours to send again or replace). An approved move whose first step failed on a passing
error is tried again at the same pace.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from actors.alerts import raise_alert
from actors.messages import BumpFee, Envelope, Message, Rebroadcast
from actors.retry import call_rail
from actors.signing import sign_payment, wallet_of
from engine import commands as c
from engine import ledger, limits
from engine import rebalance as rb
from engine.chain import Mined
from engine.destinations import CHAINS
from engine.events import RebalanceEvent
from engine.liquidity import Move
from engine.rails import RailError, WithdrawalRequest, WithdrawalState
from engine.records import Committed
from engine.results import Result
from engine.states import Status

if TYPE_CHECKING:
    from actors.confirmations import ConfirmationWatcher
    from actors.context import Context

# How many moves the operators' list shows, newest first.
LISTED_MAX = 200


class Rebalancer:
    def __init__(self, ctx: Context, confirmations: ConfirmationWatcher) -> None:
        self.ctx = ctx
        self.confirmations = confirmations
        # Every move not rejected or failed, as journaled (operators approve a few a day).
        self.moves: dict[str, rb.Rebalance] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: TaskGroup | None = None
        confirmations.owners["rb"] = self.tell

    # --- reading ------------------------------------------------------------------------------

    async def load(self, rebalance_id: str) -> rb.Rebalance | None:
        records = await self.ctx.journal.stream(rebalance_id)
        events: list[RebalanceEvent] = [r.event for r in records]  # type: ignore[misc]
        return rb.fold(events)

    async def listed(self) -> list[rb.Rebalance]:
        found = []
        for rebalance_id in await self.ctx.journal.rebalance_ids(LISTED_MAX):
            move = await self.load(rebalance_id)
            if move is not None:
                found.append(move)
        return found

    def pending(self) -> tuple[Move, ...]:
        """The moves proposed, approved or paid and not yet booked, as the plan's moves."""
        booked = (rb.State.CONFIRMED, *rb.ENDED)
        return tuple(
            Move(from_account=m.from_account, to_account=m.to_account, currency=m.currency,
                 amount=m.amount)
            for m in self.moves.values()
            if m.state not in booked
        )  # fmt: skip

    def in_flight(self) -> list[rb.Rebalance]:
        return [m for m in self.moves.values() if m.state is rb.State.SUBMITTED]

    def wallets(self) -> dict[str, str]:
        return {chain: wallet_of(self.ctx, chain)[1] for chain in sorted(CHAINS)}

    def address_book(self) -> dict[str, dict[str, str]]:
        terms = self.ctx.tuning.provider_terms
        return {name: t.deposit_addresses for name, t in terms.items() if t.deposit_addresses}

    # --- start --------------------------------------------------------------------------------

    async def open(self) -> int:
        """Load the open moves (before the nonce book is rebuilt: their payments are in it)."""
        for rebalance_id in await self.ctx.journal.rebalance_ids(limits.recovery_page_max):
            move = await self.load(rebalance_id)
            if move is not None and move.state not in rb.ENDED:
                self.moves[rebalance_id] = move
        return len(self.moves)

    def bind(self, tasks: TaskGroup) -> None:
        self._tasks = tasks

    def recover(self) -> None:
        for move in list(self.moves.values()):
            self._start(move.rebalance_id, None)

    async def run(self) -> None:
        """Approved moves whose first step failed on a passing error are tried again, and
        requested withdrawals are asked about until the provider sends them."""
        while True:
            await anyio.sleep(limits.withdrawal_poll_us / 1e6)
            for move in list(self.moves.values()):
                if move.state in (rb.State.APPROVED, rb.State.REQUESTED):
                    self._start(move.rebalance_id, None)

    def tell(self, rebalance_id: str, message: Message) -> bool:
        if self._tasks is None or rebalance_id not in self.moves:
            return False
        self._start(rebalance_id, message)
        return True

    def _start(self, rebalance_id: str, message: Message | None) -> None:
        assert self._tasks is not None
        self._tasks.start_soon(self._handle, rebalance_id, message)

    # --- operators ----------------------------------------------------------------------------

    async def propose(
        self, *, from_account: str, to_account: str, currency: str, amount: int, reason: str,
        by: str,
    ) -> rb.Rebalance | Result:  # fmt: skip
        rebalance_id = self.ctx.ids.new("rb")
        proposed = rb.propose(
            rebalance_id, from_account=from_account, to_account=to_account, currency=currency,
            amount=amount, reason=reason, by=by, now=self.ctx.clock.now_us(),
            wallets=self.wallets(), address_book=self.address_book(),
        )  # fmt: skip
        if isinstance(proposed, Result):
            return proposed
        outcome = await self.ctx.journal.append(rebalance_id, 0, [proposed])
        assert isinstance(outcome, Committed), outcome
        move = rb.evolve(None, proposed)
        self.moves[rebalance_id] = move
        return move

    async def decide(
        self, rebalance_id: str, by: str, approved: bool, reason: str
    ) -> rb.Rebalance | Result:
        """The second operator's decision, journaled; an approved move is paid at once (after
        the answer: its progress shows on the move)."""
        async with self._locks[rebalance_id]:
            move = await self.load(rebalance_id)
            if move is None:
                return Result.rebalance_not_found
            available = await self._available(move)
            decided = rb.decide(move, by, approved, reason, self.ctx.clock.now_us(), available)
            if isinstance(decided, Result):
                return decided
            move = await self._append(move, decided)
            if move is None:
                return Result.rebalance_not_pending  # another operator decided first
        if approved and self._tasks is not None:
            self._start(rebalance_id, None)
        return move

    async def _available(self, move: rb.Rebalance) -> int:
        """The source wallet's stablecoin by the ledger, less what other approved moves and
        transfers' payments on their way (sent, not yet booked) will take from it."""
        held = await self.ctx.journal.held_balances()
        key = (move.from_account, move.currency)
        balance = next((b for a, cur, b in held if (a, cur) == key), 0)
        committed = sum(
            m.amount
            for m in self.moves.values()
            if m.rebalance_id != move.rebalance_id
            and m.from_account == move.from_account
            and m.state in (rb.State.APPROVED, rb.State.SUBMITTED)
        )
        for state in await self.ctx.journal.in_flight(limits.balance_in_flight_max):
            if state.status is Status.SENT_ON_CHAIN and state.txs:
                tx = state.txs[-1]
                if (ledger.treasury(tx.chain, tx.from_address), tx.currency) == key:
                    committed += tx.amount
        return balance - committed

    # --- paying -------------------------------------------------------------------------------

    async def _append(self, move: rb.Rebalance, event: RebalanceEvent) -> rb.Rebalance | None:
        """Journal `event` at the move's version; the move after it (None: refused, the move
        changed meanwhile)."""
        outcome = await self.ctx.journal.append(move.rebalance_id, move.version, [event])
        if not isinstance(outcome, Committed):
            return None
        after = rb.evolve(move, event)
        if after.state in rb.ENDED:
            self.moves.pop(after.rebalance_id, None)
        else:
            self.moves[after.rebalance_id] = after
        return after

    async def _handle(self, rebalance_id: str, message: Message | None) -> None:
        try:
            async with self._locks[rebalance_id]:
                move = self.moves.get(rebalance_id)
                if move is not None:
                    await self._step(move, message)
        except RailError:
            # Passing (past its retries): the watcher or the redrive loop brings the move back;
            # the journal has everything done so far.
            return

    async def _step(self, move: rb.Rebalance, message: Message | None) -> None:
        now = self.ctx.clock.now_us()
        # A withdrawal's transaction is the provider's: we cannot send it again or replace it.
        ours = move.kind is rb.Kind.PAYMENT
        match message:
            case None:
                await self._redrive(move)
            case Envelope(command=c.ObserveConfirmation() as seen):
                mined = Mined(
                    tx_hash=seen.tx_hash, block_number=seen.block_number, block_hash=seen.block_hash
                )
                confirmed = rb.confirm(move, mined, seen.confirmations, now)
                if isinstance(confirmed, Result) or confirmed is None:
                    return
                await self._append(move, confirmed)
            case Envelope(command=c.ObserveReorg() as gone):
                reorged = rb.reorg(move, gone.tx_hash, gone.block_hash, now)
                if isinstance(reorged, Result) or reorged is None:
                    return
                after = await self._append(move, reorged)
                if after is not None:
                    await self._redrive(after)
            case Envelope(command=c.ObserveRevert() as reverted):
                failed = rb.fail(move, "the payment reverted", now, tx_hash=reverted.tx_hash)
                if failed is not None:
                    await self._append(move, failed)
                self.confirmations.forget(move.rebalance_id)
            case Rebroadcast() if ours:
                if move.state is rb.State.SUBMITTED:
                    await self._broadcast(move)
            case BumpFee() if ours:
                if move.state is rb.State.SUBMITTED:
                    await self._replace(move)

    async def _redrive(self, move: rb.Rebalance) -> None:
        ours = move.kind is rb.Kind.PAYMENT
        match move.state:
            case rb.State.APPROVED if ours:
                await self._sign(move)
            case rb.State.APPROVED:
                await self._request(move)
            case rb.State.REQUESTED:
                await self._poll(move)
            case rb.State.SUBMITTED:
                self._watch(move)
                if ours:
                    await self._broadcast(move)
            case rb.State.CONFIRMED:
                self._watch(move)

    async def _request(self, move: rb.Rebalance) -> None:
        """Ask the provider to send the withdrawal (idempotent by the move's id)."""
        request = WithdrawalRequest(
            rebalance_id=move.rebalance_id, provider=move.provider, currency=move.currency,
            amount=move.amount, chain=move.chain, to_address=move.to_address,
        )  # fmt: skip
        offramp = self.ctx.rails.offramp
        try:
            withdrawal_id = await call_rail(
                lambda: offramp.withdraw(request), key=f"{move.rebalance_id}:withdraw"
            )
        except RailError as e:
            if e.transient:
                raise
            await self._fail(move, f"{move.provider} refused the withdrawal: {e.message}")
            return
        asked = rb.requested(move, withdrawal_id, self.ctx.clock.now_us())
        if isinstance(asked, Result) or asked is None:
            return
        after = await self._append(move, asked)
        if after is not None:
            await self._poll(after)

    async def _poll(self, move: rb.Rebalance) -> None:
        """The provider's word on a requested withdrawal: sent (watched from now), refused, or
        not yet."""
        assert move.withdrawal_id is not None
        withdrawal_id = move.withdrawal_id
        offramp = self.ctx.rails.offramp
        status = await call_rail(
            lambda: offramp.withdrawal_status(move.provider, withdrawal_id),
            key=f"{move.rebalance_id}:withdrawal",
        )
        match status.state:
            case WithdrawalState.REFUSED:
                await self._fail(move, f"{move.provider}: {status.reason or 'refused'}")
            case WithdrawalState.SENT if status.tx_hash is not None:
                went = rb.sent(move, status.tx_hash.lower(), self.ctx.clock.now_us())
                if isinstance(went, Result) or went is None:
                    return
                after = await self._append(move, went)
                if after is not None:
                    self._watch(after)

    async def _fail(self, move: rb.Rebalance, reason: str) -> None:
        failed = rb.fail(move, reason, self.ctx.clock.now_us())
        if failed is not None:
            await self._append(move, failed)

    async def _sign(self, move: rb.Rebalance) -> None:
        wallet = wallet_of(self.ctx, move.chain)
        try:
            tx = await sign_payment(
                self.ctx, move.rebalance_id, chain=move.chain, to_address=move.to_address,
                currency=move.currency, amount=move.amount,
            )  # fmt: skip
        except RailError as e:
            if e.transient:
                raise
            await self._fail(move, f"custody refused to sign: {e.message}")
            self.ctx.nonces.settle(wallet, move.rebalance_id, None)
            return

        submitted = rb.submit(move, tx, self.ctx.clock.now_us())
        if isinstance(submitted, Result) or submitted is None:
            # Custody signed something other than the approved payment: never sent, and an
            # operator looks (the move stays approved, its nonce reserved).
            await raise_alert(
                self.ctx, kind="rebalance_signing_mismatch", transfer_id=None,
                status=move.state.value, cause_at_us=move.decided_at or move.proposed_at,
                detail=f"custody's transaction for {move.rebalance_id} is not the approved"
                f" payment ({submitted})", subject=move.rebalance_id,
            )  # fmt: skip
            return
        after = await self._append(move, submitted)
        if after is None:
            return
        self.ctx.nonces.settle(wallet, move.rebalance_id, tx)
        self._watch(after)
        await self._broadcast(after)

    async def _replace(self, move: rb.Rebalance) -> None:
        latest = move.txs[-1]
        tx = await sign_payment(
            self.ctx, move.rebalance_id, chain=move.chain, to_address=move.to_address,
            currency=move.currency, amount=move.amount, nonce=latest.nonce,
            min_max_fee_per_gas=latest.max_fee_per_gas,
            min_priority_fee_per_gas=latest.max_priority_fee_per_gas,
        )  # fmt: skip
        replaced = rb.replace(move, tx, self.ctx.clock.now_us())
        if isinstance(replaced, Result) or replaced is None:
            return
        after = await self._append(move, replaced)
        if after is not None:
            self._watch(after)
            await self._broadcast(after)

    async def _broadcast(self, move: rb.Rebalance) -> None:
        latest = move.txs[-1]
        await call_rail(
            lambda: self.ctx.rails.chain.broadcast(move.chain, latest.raw),
            key=f"{move.rebalance_id}:broadcast",
            unavailable=Result.chain_unavailable,
        )

    def _watch(self, move: rb.Rebalance) -> None:
        self.confirmations.watch(
            move.rebalance_id, move.chain, rb.tx_hashes(move), move.mined, evidence=False
        )
