"""Running one effect through the rails; its outcome comes back as the command that reports it.

Each effect is safe to run again, which is what lets recovery re-drive every pending effect:
a quote is only a price; the lock is a conditional posting the store decides; signing reserves
the transfer's nonce once (re-signing after a crash takes the same nonce, and only the journaled
transaction is ever broadcast); a broadcast re-sends the journaled bytes; the off-ramp call is
idempotent by our transfer id. Watching and reconciling register with a supervisor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.alerts import raise_alert
from actors.retry import call_rail
from actors.signing import sign_payment, wallet_of
from engine import commands as c
from engine import controls, ledger, limits, sanctions
from engine import effects as fx
from engine.policy import corridor_id
from engine.pricing import Requote
from engine.rails import PayoutRequest, QuoteRequest, RailError, SignRequest, TxPresence
from engine.results import Result, as_failure
from engine.states import Route, Status
from engine.transfer import TransferState, prefunded_early

if TYPE_CHECKING:
    from actors.transfer_actor import TransferActor


def replacement(state: TransferState) -> fx.SignTransaction:
    """A replacement for the latest transaction: same nonce and payment, a higher fee."""
    latest = state.txs[-1]
    return fx.SignTransaction(
        transfer_id=state.transfer_id,
        chain=latest.chain,
        to_address=latest.to_address,
        currency=latest.currency,
        amount=latest.amount,
        nonce=latest.nonce,
        min_max_fee_per_gas=latest.max_fee_per_gas,
        min_priority_fee_per_gas=latest.max_priority_fee_per_gas,
    )


# The steps that still lead to the chain.
_GATED = (fx.RequestQuote, fx.ReserveFunds, fx.SignTransaction)


def _gate(
    actor: TransferActor, state: TransferState, effect: fx.Effect
) -> c.TransferCommand | None:
    """A freeze or halt switched on after the transfer was created: before each step that still
    leads to the chain (a quote, the funds lock, the first signature), the transfer is cancelled
    instead, the control as its reason. Its sweep cancels the idle ones; this catches those that
    were being created or were mid-step while the control was recorded."""
    if not isinstance(effect, _GATED):
        return None
    if isinstance(effect, fx.SignTransaction) and effect.nonce is not None:
        return None  # a fee bump of a transaction already broadcast: money is in flight
    corridor = corridor_id(state.source_currency, state.target_currency)
    scope = controls.refusal(actor.ctx.controls.current, state.client_id, corridor)
    if scope is None:
        return None
    return c.CancelTransfer(by="system", reason=f"{controls.CODES[scope].code} ({scope.value})")


async def run(
    actor: TransferActor, state: TransferState, effect: fx.Effect
) -> c.TransferCommand | None:
    """Run `effect` for the transfer in `state`: the actor's, or, for a create's synchronous
    steps, the state decided so far and not yet committed."""
    ctx = actor.ctx
    tid = actor.transfer_id
    if (gated := _gate(actor, state, effect)) is not None:
        return gated
    try:
        match effect:
            case fx.RequestQuote(quote_id=quote_id):
                return await _quote(actor, state, quote_id)
            case fx.ReserveFunds():
                return c.LockFunds()
            case fx.SignTransaction():
                screening = None
                if effect.nonce is None:
                    # Screened again just before the payment is signed for broadcast.
                    screening = await ctx.sanctions.screener.screen(
                        sanctions.Stage.BROADCAST,
                        state.client_id,
                        state.destination,
                    )
                    if screening.hits:
                        return await _sanctions_hit(actor, state, screening)
                signed = await _sign(actor, state, effect, screening)
                # A control switched on while custody signed: the transaction is never sent.
                return _gate(actor, state, effect) or signed
            case fx.BroadcastTransaction(raw=raw):
                chain = state.txs[-1].chain
                if ctx.drills.planted("rebroadcast_new_nonce"):
                    await _canary_rebroadcast(actor, state, raw)
                    return None
                await call_rail(
                    lambda: ctx.rails.chain.broadcast(chain, raw),
                    key=f"{tid}:broadcast",
                    unavailable=Result.chain_unavailable,
                )
                ctx.drills.failpoint("chain.after_broadcast")
                return None
            case fx.WatchTransaction(tx_hashes=hashes, confirmed=confirmed):
                actor.supervisors.confirmations.watch(tid, state.txs[-1].chain, hashes, confirmed)
                return None
            case fx.StartOffRamp():
                return await _offramp(actor, state, effect)
            case fx.WatchSettlement(provider=provider, provider_trade_id=trade_id):
                corridor = corridor_id(state.source_currency, state.target_currency)
                actor.supervisors.settlements.watch(tid, provider, trade_id, corridor)
                return None
            case fx.RequestReconciliation():
                actor.supervisors.reconciler.request(tid)
                return None
    except RailError as e:
        return _gave_up(state, effect, e)
    raise AssertionError(f"no runner for {effect}")


def _gave_up(state: TransferState, effect: fx.Effect, error: RailError) -> c.TransferCommand | None:
    """A rail failed past its retries. Before anything is signed the transfer fails cleanly (the
    hold, if any, is released); after that, money is in flight and nothing is given up: the stuck
    timer re-drives the effect later and alerts an operator."""
    if isinstance(effect, fx.RequestQuote | fx.SignTransaction) and effect_may_fail(state):
        # A code the transfer cannot end with would leave it waiting in its state for ever.
        code = as_failure(error.result)
        message = error.message if code is error.result else f"{error.result.code}: {error.message}"
        return c.FailTransfer(code=code.code, message=message)
    return None


def effect_may_fail(state: TransferState) -> bool:
    return not state.txs


async def _quote(
    actor: TransferActor, state: TransferState, quote_id: str | None
) -> c.TransferCommand | None:
    ctx = actor.ctx
    expired_at = replaced = None
    policy = ctx.tuning.requote_for(state.client_id)
    if quote_id is not None:
        found = await ctx.journal.quote(quote_id)
        if found is None or found[0] != state.client_id:
            return c.FailTransfer(code=Result.quote_expired.code, message=f"{quote_id} unknown")
        named = found[1]
        waited = state.approvals_required > 0 and named.expires_at <= ctx.clock.now_us()
        if not waited:
            return c.QuoteTransfer(quote=named)
        # The named quote expired while the transfer awaited its approvers: price it afresh,
        # if the client's re-quote policy allows.
        if policy.mode is Requote.REQUIRE_NEW:
            return c.FailTransfer(
                code=Result.quote_expired.code,
                message=f"{quote_id} expired awaiting approval, and this client's re-quote"
                " policy requires a new quote",
            )
        expired_at, replaced = named.expires_at, named.target_amount
    request = QuoteRequest(
        transfer_id=state.transfer_id,
        client_id=state.client_id,
        source_currency=state.source_currency,
        target_currency=state.target_currency,
        amount=state.amount,
        bank=state.route is Route.BANK,
    )
    desk = actor.supervisors.pricing
    # The desk bounds its own waits (each provider's deadline), so an attempt has no timer.
    quote = await call_rail(
        lambda: desk.quote(request), key=f"{state.transfer_id}:q", attempt_timeout_s=None
    )
    requoting = state.status is Status.QUOTED or expired_at is not None
    return c.QuoteTransfer(
        quote=quote,
        requested_expired_at=expired_at,
        requote_tolerance_bps=policy.tolerance_bps if requoting else None,
        replaced_target_amount=replaced,
    )


async def _sanctions_hit(
    actor: TransferActor, state: TransferState, screening: sanctions.Screening
) -> c.TransferCommand:
    """A party listed since the transfer was created: it fails (hold released), never signed,
    and an operator is alerted."""
    detail = sanctions.describe(screening)
    await raise_alert(
        actor.ctx,
        kind="sanctions_hit",
        transfer_id=state.transfer_id,
        status=state.status.value,
        cause_at_us=state.status_since,
        detail=detail,
    )
    message = f"sanctions list match before broadcast: {detail}"
    return c.FailTransfer(
        code=Result.sanctions_hit.code,
        message=message[: limits.failure_message_length_max],
        screening=screening,
    )


async def _sign(
    actor: TransferActor,
    state: TransferState,
    effect: fx.SignTransaction,
    screening: sanctions.Screening | None,
) -> c.TransferCommand | None:
    tx = await sign_payment(
        actor.ctx,
        state.transfer_id,
        chain=effect.chain,
        to_address=effect.to_address,
        currency=effect.currency,
        amount=effect.amount,
        nonce=effect.nonce,
        min_max_fee_per_gas=effect.min_max_fee_per_gas,
        min_priority_fee_per_gas=effect.min_priority_fee_per_gas,
    )
    if effect.nonce is None:
        return c.SubmitOnChain(tx=tx, screening=screening)
    return c.ReplaceDroppedTx(tx=tx)


async def _offramp(
    actor: TransferActor, state: TransferState, effect: fx.StartOffRamp
) -> c.TransferCommand | None:
    """Ask the provider to pay out. One that refuses for good before accepting (a non-transient
    refusal: it holds no payout for the transfer, so none can be paid twice) is replaced by the
    next eligible provider that holds enough of our stablecoin (actors.pricing.failover); with
    none, the transfer waits in CONFIRMED: its payout timer asks again every minute, its stuck
    timer alerts an operator."""
    assert state.quote is not None and state.txs
    if prefunded_early(state) and not await _early_payout_allowed(actor, state, effect.provider):
        return None  # paid just in time instead, once the deposit is confirmed
    paid_by = state.mined.tx_hash if state.mined is not None else state.txs[-1].tx_hash
    request = PayoutRequest(
        transfer_id=state.transfer_id,
        provider=effect.provider,
        quote_id=effect.quote_id,
        rail_currency=state.quote.rail_currency,
        rail_amount=state.quote.rail_amount,
        target_currency=state.target_currency,
        target_amount=state.quote.target_amount,
        destination=state.destination,
        tx_hash=paid_by,
        rate=state.quote.rate,
        prefunded=effect.prefunded,
    )
    offramp = actor.ctx.rails.offramp
    desk = actor.supervisors.pricing
    try:
        trade_id = await call_rail(
            lambda: offramp.start_payout(request), key=f"{state.transfer_id}:payout"
        )
    except RailError as e:
        failed = e.message if e.transient else ""
        await desk.payout_answered(effect.provider, ok=not e.transient, error=failed)
        if e.transient:
            raise
        successor = await desk.failover(state)
        if successor is None:
            raise
        reason = f"{effect.provider} refused the payout before accepting it: {e.message}"
        return c.RerouteOffRamp(provider=successor, previous=effect.provider, reason=reason[:500])
    await desk.payout_answered(effect.provider, ok=True)
    actor.ctx.drills.failpoint("offramp.after_payout_call")
    return c.InitiateOffRamp(provider_trade_id=trade_id)


async def _early_payout_allowed(actor: TransferActor, state: TransferState, provider: str) -> bool:
    """Whether a pre-funded payout may be asked for before its deposit confirms: the node has
    the deposit (pending or mined: the broadcast reached it), and the provider holds the
    payout's rail amount of our stablecoin by the ledger."""
    assert state.quote is not None
    ctx = actor.ctx
    latest = state.txs[-1]
    presence = await call_rail(
        lambda: ctx.rails.chain.presence(latest.chain, latest.tx_hash),
        key=f"{state.transfer_id}:presence",
        unavailable=Result.chain_unavailable,
    )
    if presence is TxPresence.UNKNOWN:
        return False
    held = await ctx.journal.balance_at(
        ledger.provider(provider), state.quote.rail_currency, ctx.clock.now_us()
    )
    return held >= state.quote.rail_amount


async def _canary_rebroadcast(actor: TransferActor, state: TransferState, raw: str) -> None:
    """The planted bug `rebroadcast_new_nonce` (actors.drills): when a broadcast's answer is
    lost, sign the payment again with a fresh nonce and send that, unjournaled, instead of
    re-sending the journaled bytes. If the first one did reach the node, both can mine."""
    ctx = actor.ctx
    latest = state.txs[-1]
    try:
        await ctx.rails.chain.broadcast(latest.chain, raw)
        return
    except RailError:
        pass
    wallet = wallet_of(ctx, latest.chain)
    again = SignRequest(
        chain=latest.chain,
        to_address=latest.to_address,
        currency=latest.currency,
        amount=latest.amount,
        nonce=ctx.nonces.reserve(wallet, f"{state.transfer_id}:again:{latest.nonce}"),
        max_fee_per_gas=latest.max_fee_per_gas,
    )
    tx = await ctx.rails.custody.sign(again)
    await call_rail(
        lambda: ctx.rails.chain.broadcast(latest.chain, tx.raw),
        key=f"{state.transfer_id}:broadcast",
        unavailable=Result.chain_unavailable,
    )
