"""The transfer aggregate: its state, `decide` (command -> result, events, effects) and `evolve`
(state + event -> state). Both are pure: no I/O, no clock (the caller passes `now`), no entropy.

Each command handler is a validation ladder: the cheapest check first, one condition per line,
each returning a named Result; then the events. A command that was already applied (a retry after
a crash or a duplicated observation) answers ok with no events, which is what makes commands safe
to retry: FUNDS_LOCKED never locks twice, SENT_ON_CHAIN never submits a different transaction.
`evolve` asserts that every event is a legal move in the transition table and that its entries
balance: a violation there is a bug, not a branch.
"""

from __future__ import annotations

import re

import msgspec

from engine import (
    chain,
    destinations,
    invariants,
    ledger,
    limits,
    money,
    policy,
    pricing,
    quotes,
    sanctions,
)
from engine import commands as c
from engine import effects as fx
from engine import events as ev
from engine.hashing import request_hash
from engine.ids import is_id
from engine.policy import PolicyDecision
from engine.results import FAILURE_CODES, Result
from engine.states import CANCELLABLE, HOLDING, TERMINAL, Route, Status, next_status

# The chain that carries the rail stablecoin to off-ramp providers.
RAIL_CHAIN = "ethereum"

_REQUEST_HASH = re.compile(r"[0-9a-f]{64}")
_METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_TRADE_ID_LENGTH_MAX = 128
_REASON_LENGTH_MAX = 500


class TransferState(msgspec.Struct, frozen=True, kw_only=True):
    transfer_id: str
    client_id: str
    initiator: str
    idempotency_key: str
    request_hash: str
    request_id: str | None
    status: Status
    route: Route
    source_currency: str
    target_currency: str
    amount: int
    destination: destinations.Destination
    reference: str | None
    metadata: dict[str, str]
    approvals_required: int
    # The approvals granted, each with the terms hash it was bound to.
    approvals: tuple[tuple[str, str | None], ...] = ()
    # The policy decision the transfer was created under (None: created before policy existed).
    policy: PolicyDecision | None = None
    approved_by: tuple[str, ...] = ()
    rejected_by: str | None = None
    requested_quote_id: str | None = None
    quote: quotes.Quote | None = None
    txs: tuple[chain.SignedTx, ...] = ()
    mined: chain.Mined | None = None
    provider_trade_id: str | None = None
    # The provider the payout was rerouted to (None: the quote's), and those that refused it.
    rerouted_to: str | None = None
    refused_by: tuple[str, ...] = ()
    bank_reference: str | None = None
    settled_amount: int | None = None
    # The fill's slippage in rail minor units (what the provider debited less the rail amount)
    # and the tolerance it was judged by, from FiatSettled.
    slippage: int = 0
    slippage_tolerance_bps: int | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    created_at: int
    updated_at: int
    status_since: int
    quoted_at: int | None = None
    locked_at: int | None = None
    sent_at: int | None = None
    confirmed_at: int | None = None
    settled_at: int | None = None
    reconciled_at: int | None = None
    # The number of events applied, which is the transfer's stream version.
    version: int


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    result: Result
    events: tuple[ev.TransferEvent, ...] = ()
    effects: tuple[fx.Effect, ...] = ()
    # The state after the events (decide evolves them to know the effects): None when there are
    # none. The caller holds it once the events are durable instead of evolving them again.
    state: TransferState | None = None


def terms_hash(state: TransferState) -> str:
    """What an approval is bound to: who pays what to whom (amount, currencies, destination, the
    named quote, the reference). An approval granted for other terms does not count."""
    return request_hash(
        "terms",
        state.client_id,
        state.source_currency,
        state.amount,
        state.target_currency,
        state.destination,
        state.requested_quote_id,
        state.reference,
    )


def approvers(state: TransferState) -> tuple[str, ...]:
    """The approvers whose approval binds the transfer's current terms."""
    current = terms_hash(state)
    return tuple(by for by, bound in state.approvals if bound in (None, current))


def approval_state(state: TransferState) -> str:
    """not_required | pending | approved | rejected (API.md's `approval.state`)."""
    if state.approvals_required == 0:
        return "not_required"
    if state.rejected_by is not None:
        return "rejected"
    if len(approvers(state)) >= state.approvals_required:
        return "approved"
    return "pending"


def decided(state: TransferState) -> bool:
    """Whether a new transfer's synchronous steps (quote, policy, funds lock) are decided: it
    left CREATED and QUOTED, or it waits in CREATED for an approval. A create answers then."""
    if state.status is Status.CREATED:
        return approval_state(state) == "pending"
    return state.status is not Status.QUOTED


def held_for(status: Status, amount: int) -> int:
    """What a transfer of `amount` holds on the client's held account while in `status`."""
    return amount if status in HOLDING else 0


def held_amount(state: TransferState) -> int:
    return held_for(state.status, state.amount)


def tx_hashes(state: TransferState) -> tuple[str, ...]:
    return tuple(t.tx_hash for t in state.txs)


def payout_address(state: TransferState) -> str | None:
    """Where the rail stablecoin must be sent: the wallet itself, or the provider's deposit
    address named by the quote."""
    match state.destination:
        case destinations.WalletDestination(address=address):
            return address
        case destinations.BankDestination():
            return state.quote.payout_address if state.quote else None


def payout_provider(state: TransferState) -> str:
    """The provider that pays the beneficiary: the quote's, or the one the payout was rerouted
    to after the quote's refused it."""
    assert state.quote is not None
    return state.rerouted_to or state.quote.provider


def prefunded_early(state: TransferState) -> bool:
    """Whether the off-ramp payout is asked for before the deposit confirms: a bank payout of
    a pre-funded corridor, broadcast, not yet asked for."""
    return (
        state.route is Route.BANK
        and state.status is Status.SENT_ON_CHAIN
        and state.quote is not None
        and state.quote.prefunded
        and state.provider_trade_id is None
    )


def payout_chain(state: TransferState) -> str:
    match state.destination:
        case destinations.WalletDestination(chain=chain_name):
            return chain_name
        case destinations.BankDestination():
            return RAIL_CHAIN


# --- evolve -----------------------------------------------------------------------------------


def evolve(state: TransferState | None, event: ev.TransferEvent) -> TransferState:
    kind = ev.event_type(event)
    if isinstance(event, ev.TransferCreated):
        assert state is None, f"{kind} on an existing transfer {state.transfer_id}"
        route = event.route
    else:
        assert state is not None, f"{kind} before TransferCreated"
        route = state.route
    status_from = state.status if state is not None else None
    status_to = next_status(route, status_from, kind)
    assert status_to is not None, f"illegal transition {status_from} --{kind}--> ({route})"
    problem = invariants.entries_problem(ev.entries_of(event))
    assert problem is None, f"{kind}: {problem}"

    if isinstance(event, ev.TransferCreated):
        return TransferState(
            transfer_id=event.transfer_id,
            client_id=event.client_id,
            initiator=event.initiator,
            idempotency_key=event.idempotency_key,
            request_hash=event.request_hash,
            request_id=event.request_id,
            status=status_to,
            route=event.route,
            source_currency=event.source_currency,
            target_currency=event.target_currency,
            amount=event.amount,
            destination=event.destination,
            reference=event.reference,
            metadata=event.metadata,
            approvals_required=event.approvals_required,
            policy=event.policy,
            requested_quote_id=event.requested_quote_id,
            created_at=event.at,
            updated_at=event.at,
            status_since=event.at,
            version=1,
        )
    assert state is not None
    changes = _changes(state, event)
    if status_to is not state.status:
        changes["status_since"] = event.at
    return msgspec.structs.replace(
        state, status=status_to, updated_at=event.at, version=state.version + 1, **changes
    )


def _changes(state: TransferState, event: ev.TransferEvent) -> dict[str, object]:
    match event:
        case ev.ApprovalGranted(by=by, terms_hash=bound):
            return {
                "approved_by": (*state.approved_by, by),
                "approvals": (*state.approvals, (by, bound)),
            }
        case ev.ApprovalRejected(by=by, reason=reason):
            return {
                "rejected_by": by,
                "failure_code": Result.approval_rejected.code,
                "failure_message": reason,
            }
        case ev.QuoteCaptured(quote=quote, at=at):
            return {"quote": quote, "quoted_at": at}
        case ev.FundsLocked(at=at):
            return {"locked_at": at}
        case ev.OnChainSubmitted(tx=tx, at=at):
            return {"txs": (tx,), "sent_at": at}
        case ev.OnChainReplaced(tx=tx):
            return {"txs": (*state.txs, tx)}
        case ev.OnChainConfirmed(tx_hash=h, block_number=n, block_hash=b, at=at):
            return {
                "mined": chain.Mined(tx_hash=h, block_number=n, block_hash=b),
                "confirmed_at": at,
            }
        case ev.ChainReorged():
            return {"mined": None, "confirmed_at": None}
        case ev.OnChainReverted(tx_hash=h, block_number=n):
            return {
                "failure_code": Result.transaction_reverted.code,
                "failure_message": f"transaction {h} reverted in block {n}",
            }
        case ev.OffRampInitiated(provider_trade_id=trade_id):
            return {"provider_trade_id": trade_id}
        case ev.OffRampRerouted(provider=provider, previous=previous):
            return {"rerouted_to": provider, "refused_by": (*state.refused_by, previous)}
        case ev.FiatSettled(bank_reference=ref, amount=amount, at=at):
            return {
                "bank_reference": ref,
                "settled_amount": amount,
                "settled_at": at,
                "slippage": event.slippage,
                "slippage_tolerance_bps": event.slippage_tolerance_bps,
            }
        case ev.FundsReturned(reference=ref):
            return {
                "failure_code": Result.funds_returned.code,
                "failure_message": f"provider returned the funds ({ref})",
            }
        case ev.Reconciled(at=at):
            return {"reconciled_at": at}
        case ev.TransferCancelled():
            return {}
        case ev.TransferFailed(code=code, message=message):
            return {"failure_code": code, "failure_message": message}
        case ev.TransferExpired(code=code, message=message):
            return {"failure_code": code, "failure_message": message or None}
    raise AssertionError(f"no evolve rule for {ev.event_type(event)}")


def evolve_all(state: TransferState | None, events: tuple[ev.TransferEvent, ...]) -> TransferState:
    assert events
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state


# --- effects ----------------------------------------------------------------------------------


def pending_effects(state: TransferState) -> tuple[fx.Effect, ...]:
    """What the world still owes this transfer in its current state. Decide returns these after
    every transition, and recovery calls it for every non-terminal transfer at start: CREATED and
    QUOTED resume, FUNDS_LOCKED signs (once: a signed transaction moves the transfer on),
    SENT_ON_CHAIN re-broadcasts the same bytes and watches, CONFIRMED keeps watching its
    confirmation for reorgs, later states wait for evidence."""
    tid = state.transfer_id
    match state.status:
        case Status.CREATED:
            if approval_state(state) in ("not_required", "approved"):
                return (fx.RequestQuote(transfer_id=tid, quote_id=state.requested_quote_id),)
            return ()
        case Status.QUOTED:
            return (fx.ReserveFunds(transfer_id=tid),)
        case Status.FUNDS_LOCKED:
            assert state.quote is not None
            address = payout_address(state)
            assert address is not None
            return (
                fx.SignTransaction(
                    transfer_id=tid,
                    chain=payout_chain(state),
                    to_address=address,
                    currency=state.quote.rail_currency,
                    amount=state.quote.rail_amount,
                ),
            )
        case Status.SENT_ON_CHAIN:
            latest = state.txs[-1]
            sending = (
                fx.BroadcastTransaction(transfer_id=tid, tx_hash=latest.tx_hash, raw=latest.raw),
                fx.WatchTransaction(transfer_id=tid, tx_hashes=tx_hashes(state)),
            )
            if not prefunded_early(state):
                return sending
            assert state.quote is not None
            # Pre-funded: paid from the provider's prefunding now, the deposit refills it.
            start = fx.StartOffRamp(
                transfer_id=tid,
                provider=payout_provider(state),
                quote_id=state.quote.quote_id,
                prefunded=True,
            )
            return (*sending, start)
        case Status.CONFIRMED:
            # Until final, a reorg can still take the payment away (back to SENT_ON_CHAIN).
            watch = fx.WatchTransaction(
                transfer_id=tid, tx_hashes=tx_hashes(state), confirmed=state.mined
            )
            if state.route is Route.WALLET:
                return (watch, fx.RequestReconciliation(transfer_id=tid))
            assert state.quote is not None
            if state.provider_trade_id is None:
                return (
                    watch,
                    fx.StartOffRamp(
                        transfer_id=tid,
                        provider=payout_provider(state),
                        quote_id=state.quote.quote_id,
                        prefunded=state.rerouted_to is not None,
                    ),
                )
            return (
                watch,
                fx.WatchSettlement(
                    transfer_id=tid,
                    provider=payout_provider(state),
                    provider_trade_id=state.provider_trade_id,
                ),
            )
        case Status.FIAT_SETTLED:
            return (fx.RequestReconciliation(transfer_id=tid),)
    assert state.status in TERMINAL
    return ()


# --- decide -----------------------------------------------------------------------------------


def decide(state: TransferState | None, command: c.TransferCommand, now: int) -> Decision:
    if isinstance(command, c.CreateTransfer):
        if state is not None:
            return _reject(Result.transfer_exists)
        return _create(command, now)
    if state is None:
        return _reject(Result.transfer_not_found)
    match command:
        case c.QuoteTransfer():
            return _quote(state, command, now)
        case c.LockFunds():
            return _lock(state, now)
        case c.SubmitOnChain():
            return _submit(state, command, now)
        case c.ReplaceDroppedTx():
            return _replace(state, command, now)
        case c.ObserveConfirmation():
            return _confirm(state, command, now)
        case c.ObserveReorg():
            return _reorg(state, command, now)
        case c.ObserveRevert():
            return _revert(state, command, now)
        case c.InitiateOffRamp():
            return _offramp(state, command, now)
        case c.RerouteOffRamp():
            return _reroute(state, command, now)
        case c.MarkFiatSettled():
            return _fiat_settled(state, command, now)
        case c.RecordFundsReturned():
            return _funds_returned(state, command, now)
        case c.Reconcile():
            return _reconcile(state, command, now)
        case c.CancelTransfer():
            return _cancel(state, command, now)
        case c.FailTransfer():
            return _fail(state, command, now)
        case c.ExpireTransfer():
            return _expire(state, command, now)
        case c.ApproveTransfer() | c.RejectTransfer():
            return _approval(state, command, now)
    raise AssertionError(f"no decide rule for {c.command_type(command)}")


def _reject(result: Result) -> Decision:
    assert result is not Result.ok
    return Decision(result=result)


_NOTHING_TO_DO = Decision(result=Result.ok)


def _accept(state: TransferState | None, *events: ev.TransferEvent) -> Decision:
    after = evolve_all(state, events)
    return Decision(result=Result.ok, events=events, effects=pending_effects(after), state=after)


def is_user(text: str) -> bool:
    return (
        isinstance(text, str)
        and 0 < len(text) <= limits.user_name_length_max
        and text.isprintable()
        and text.strip() == text
    )


def _text_ok(text: str | None, length_max: int) -> bool:
    return text is None or (0 < len(text) <= length_max and text.isprintable())


def check_idempotency_key(key: str) -> Result:
    if not key:
        return Result.idempotency_key_missing
    if len(key) > limits.idempotency_key_length_max:
        return Result.idempotency_key_invalid
    if not key.isascii() or not key.isprintable():
        return Result.idempotency_key_invalid
    return Result.ok


def check_metadata(metadata: dict[str, str]) -> Result:
    if len(metadata) > limits.metadata_keys_max:
        return Result.metadata_invalid
    for key, value in metadata.items():
        if _METADATA_KEY.fullmatch(key) is None:
            return Result.metadata_invalid
        if len(value) > limits.metadata_value_length_max or not value.isprintable():
            return Result.metadata_invalid
    return Result.ok


def check_corridor(
    source: money.Asset, target: money.Asset, destination: destinations.Destination
) -> Result:
    rail = money.rail_asset(source)
    if rail is None:
        return Result.currency_pair_unsupported
    match destination:
        case destinations.WalletDestination():
            if target.code != rail.code:
                return Result.currency_pair_unsupported
        case destinations.BankDestination(country=country):
            if target.kind is not money.AssetKind.FIAT:
                return Result.destination_currency_mismatch
            if destinations.BANK_COUNTRIES[country] != target.code:
                return Result.destination_currency_mismatch
    return Result.ok


def check_create(cmd: c.CreateTransfer) -> Result:
    """The create's validation ladder, short of policy: what the API checks before anything is
    stored (a malformed request leaves no trace), and `decide` again before the transfer exists."""
    if not is_id(cmd.transfer_id, "tr"):
        return Result.command_malformed
    if _REQUEST_HASH.fullmatch(cmd.request_hash) is None:
        return Result.command_malformed
    if cmd.quote_id is not None and not is_id(cmd.quote_id, "qt"):
        return Result.command_malformed
    if not ledger.is_name(cmd.client_id):
        return Result.client_id_invalid
    if not is_user(cmd.initiator):
        return Result.user_invalid
    if (key_result := check_idempotency_key(cmd.idempotency_key)) is not Result.ok:
        return key_result
    source = money.asset(cmd.source_currency)
    target = money.asset(cmd.target_currency)
    if source is None or target is None:
        return Result.currency_unknown
    amount = money.parse_amount(cmd.amount, source)
    if isinstance(amount, Result):
        return amount
    if amount == 0:
        return Result.amount_must_be_positive
    if (dest_result := destinations.check_destination(cmd.destination)) is not Result.ok:
        return dest_result
    if (corridor := check_corridor(source, target, cmd.destination)) is not Result.ok:
        return corridor
    if not _text_ok(cmd.reference, limits.reference_length_max):
        return Result.reference_invalid
    if (meta_result := check_metadata(cmd.metadata)) is not Result.ok:
        return meta_result
    return Result.ok


def normalized_destination(destination: destinations.Destination) -> destinations.Destination:
    if isinstance(destination, destinations.WalletDestination):
        return destinations.WalletDestination(
            chain=destination.chain, address=destinations.normalize_address(destination.address)
        )
    return destination


def _source_amount(cmd: c.CreateTransfer) -> tuple[money.Asset, int]:
    """A well-formed create's (check_create passed) source asset and amount in minor units."""
    source = money.asset(cmd.source_currency)
    assert source is not None
    amount = money.parse_amount(cmd.amount, source)
    assert isinstance(amount, int)
    return source, amount


def policy_facts(cmd: c.CreateTransfer, at: int, first_seen: int | None) -> policy.Facts:
    """What policy judges of a well-formed create (check_create passed)."""
    _, amount = _source_amount(cmd)
    return policy.Facts(
        client_id=cmd.client_id,
        initiator=cmd.initiator,
        source_currency=cmd.source_currency,
        target_currency=cmd.target_currency,
        destination=normalized_destination(cmd.destination),
        amount=amount,
        at=at,
        beneficiary_first_seen=first_seen,
    )


def _create(cmd: c.CreateTransfer, now: int) -> Decision:
    if (checked := check_create(cmd)) is not Result.ok:
        return _reject(checked)
    decision = cmd.policy
    if decision is None:
        return _reject(Result.policy_missing)
    if policy.decision_problem(decision) is not None:
        return _reject(Result.command_malformed)
    hit = cmd.screening is not None and bool(cmd.screening.hits)
    if hit != (decision.rule_id == sanctions.RULE_ID):
        return _reject(Result.command_malformed)  # a hit is refused, and only a hit
    # After this point the transfer is created (and, if policy blocks it, failed at once).
    source, amount = _source_amount(cmd)
    destination = normalized_destination(cmd.destination)
    created = ev.TransferCreated(
        at=now,
        transfer_id=cmd.transfer_id,
        client_id=cmd.client_id,
        initiator=cmd.initiator,
        idempotency_key=cmd.idempotency_key,
        request_hash=cmd.request_hash,
        source_currency=source.code,
        target_currency=cmd.target_currency,
        amount=amount,
        destination=destination,
        route=destinations.route_of(destination),
        reference=cmd.reference,
        metadata=dict(cmd.metadata),
        approvals_required=decision.approvals_required,
        requested_quote_id=cmd.quote_id,
        request_id=cmd.request_id,
        policy=decision,
        screening=cmd.screening,
    )
    # Refusals at creation, in order: a freeze or halt in force, or a corridor nothing can
    # execute; funds the client does not have (no approver is asked about a transfer that cannot
    # be funded); then the rule set's own block.
    rule = f"policy rule {decision.rule_id} (rule set version {decision.version})"
    if decision.rule_id in policy.ENGINE_RULES:
        assert decision.code is not None
        corridor = policy.corridor_id(source.code, cmd.target_currency)
        if decision.rule_id == policy.NO_PROVIDER:
            message = f"no provider serves the corridor {corridor}; {rule}"
        elif decision.rule_id == sanctions.RULE_ID:
            assert cmd.screening is not None
            found = f"sanctions list match: {sanctions.describe(cmd.screening)}"
            message = found[: limits.failure_message_length_max]
        else:
            message = f"{decision.code} ({corridor}); {rule}"
        refusal = ev.TransferFailed(at=now, code=decision.code, message=message)
    elif cmd.available is not None and amount > cmd.available:
        balance = money.format_amount(max(cmd.available, 0), source)
        refusal = ev.TransferFailed(
            at=now,
            code=Result.insufficient_funds.code,
            message=f"available balance {balance} {source.code} at creation",
        )
    elif decision.action is policy.Action.BLOCK:
        assert decision.code is not None
        refusal = ev.TransferFailed(at=now, code=decision.code, message=rule)
    else:
        return _accept(None, created)
    # Refused at creation: kept, FAILED, for audit; nobody is asked to approve it.
    return _accept(None, msgspec.structs.replace(created, approvals_required=0), refusal)


def _quote(state: TransferState, cmd: c.QuoteTransfer, now: int) -> Decision:
    if state.status not in (Status.CREATED, Status.QUOTED):
        return _reject(Result.command_invalid_for_status)
    if approval_state(state) == "pending":
        return _reject(Result.approval_pending)
    if state.status is Status.QUOTED:
        assert state.quote is not None
        if cmd.quote.quote_id == state.quote.quote_id:
            return _NOTHING_TO_DO
        if state.quote.expires_at > now:
            return _reject(Result.quote_not_expired)
    replaces_expired = (
        cmd.requested_expired_at is not None
        and state.approvals_required > 0
        and cmd.requested_expired_at <= now
    )
    if (
        state.status is Status.CREATED
        and state.requested_quote_id is not None
        and cmd.quote.quote_id != state.requested_quote_id
        and not replaces_expired
    ):
        return _reject(Result.quote_mismatch)
    if cmd.requote_tolerance_bps is not None:
        before = cmd.replaced_target_amount
        if state.status is Status.QUOTED and state.quote is not None:
            before = state.quote.target_amount
        worse = pricing.worse_beyond
        if before is not None and worse(before, cmd.quote.target_amount, cmd.requote_tolerance_bps):
            return _reject(Result.requote_beyond_tolerance)
    checked = quotes.check_quote(
        cmd.quote,
        route=state.route,
        source_currency=state.source_currency,
        target_currency=state.target_currency,
        amount=state.amount,
        now=now,
    )
    if checked is not Result.ok:
        return _reject(checked)
    return _accept(state, ev.QuoteCaptured(at=now, quote=cmd.quote))


def _lock(state: TransferState, now: int) -> Decision:
    if state.status in (
        Status.FUNDS_LOCKED,
        Status.SENT_ON_CHAIN,
        Status.CONFIRMED,
        Status.FIAT_SETTLED,
        Status.RECONCILED,
    ):
        return _NOTHING_TO_DO  # Never lock twice.
    if state.status is not Status.QUOTED:
        return _reject(Result.command_invalid_for_status)
    assert state.quote is not None
    if state.quote.expires_at <= now:
        return _reject(Result.quote_expired)
    entries = ledger.hold(state.client_id, state.source_currency, state.amount)
    decision = state.policy
    if decision is None:
        return _accept(state, ev.FundsLocked(at=now, entries=entries))
    return _accept(
        state,
        ev.FundsLocked(
            at=now,
            entries=entries,
            limits=decision.limits,
            usd_amount=decision.usd_amount,
            beneficiary=decision.beneficiary,
        ),
    )


def _submit(state: TransferState, cmd: c.SubmitOnChain, now: int) -> Decision:
    if cmd.tx.tx_hash in tx_hashes(state):
        return _NOTHING_TO_DO
    if state.status in (Status.SENT_ON_CHAIN, Status.CONFIRMED, Status.FIAT_SETTLED):
        return _reject(Result.transaction_already_submitted)
    if state.status is not Status.FUNDS_LOCKED:
        return _reject(Result.command_invalid_for_status)
    if not _pays_as_promised(state, cmd.tx):
        return _reject(Result.transaction_mismatch)
    return _accept(state, ev.OnChainSubmitted(at=now, tx=cmd.tx, screening=cmd.screening))


def _pays_as_promised(state: TransferState, tx: chain.SignedTx) -> bool:
    assert state.quote is not None
    address = payout_address(state)
    return (
        chain.well_formed(tx)
        and address is not None
        and tx.chain == payout_chain(state)
        and tx.to_address.lower() == address.lower()
        and tx.currency == state.quote.rail_currency
        and tx.amount == state.quote.rail_amount
    )


def _replace(state: TransferState, cmd: c.ReplaceDroppedTx, now: int) -> Decision:
    if cmd.tx.tx_hash in tx_hashes(state):
        return _NOTHING_TO_DO
    if state.status is not Status.SENT_ON_CHAIN:
        return _reject(Result.command_invalid_for_status)
    latest = state.txs[-1]
    if not _pays_as_promised(state, cmd.tx) or not chain.same_payment(latest, cmd.tx):
        return _reject(Result.transaction_mismatch)
    if not chain.outbids(latest, cmd.tx):
        return _reject(Result.transaction_mismatch)
    if len(state.txs) > limits.transaction_replacements_max:
        return _reject(Result.transaction_replacements_exceeded)
    return _accept(state, ev.OnChainReplaced(at=now, tx=cmd.tx, replaces=latest.tx_hash))


def settlement_entries(
    state: TransferState, tx_hash: str, provider: str | None = None
) -> ledger.Entries:
    """OnChainConfirmed's entries for `tx_hash` (any of the transfer's same-nonce transactions:
    they all pay the same amount from the same treasury wallet). The provider account is the
    quote's (whose deposit address the payment went to), or `provider`."""
    assert state.quote is not None
    tx = next(t for t in state.txs if t.tx_hash == tx_hash)
    return ledger.on_chain_settlement(
        client_id=state.client_id,
        currency=state.source_currency,
        amount=state.amount,
        fee=state.quote.fee,
        rail_currency=state.quote.rail_currency,
        rail_amount=state.quote.rail_amount,
        treasury_account=ledger.treasury(tx.chain, tx.from_address),
        provider_account=(
            ledger.provider(provider or state.quote.provider) if state.route is Route.BANK else None
        ),
    )


def _confirm(state: TransferState, cmd: c.ObserveConfirmation, now: int) -> Decision:
    if state.mined is not None and state.mined.tx_hash == cmd.tx_hash:
        return _NOTHING_TO_DO
    if state.status is not Status.SENT_ON_CHAIN:
        return _reject(Result.command_invalid_for_status)
    if cmd.tx_hash not in tx_hashes(state):
        return _reject(Result.transaction_unknown)
    if cmd.block_number < 0 or cmd.confirmations < 0 or not chain.is_tx_hash(cmd.block_hash):
        return _reject(Result.command_malformed)
    if cmd.confirmations < limits.confirmations_required:
        return _NOTHING_TO_DO  # Keep watching.
    return _accept(
        state,
        ev.OnChainConfirmed(
            at=now,
            tx_hash=cmd.tx_hash,
            block_number=cmd.block_number,
            block_hash=cmd.block_hash,
            confirmations=cmd.confirmations,
            entries=settlement_entries(state, cmd.tx_hash),
        ),
    )


def _reorg(state: TransferState, cmd: c.ObserveReorg, now: int) -> Decision:
    if state.status is Status.SENT_ON_CHAIN and cmd.tx_hash in tx_hashes(state):
        return _NOTHING_TO_DO  # Already back to waiting for confirmation.
    if state.status is not Status.CONFIRMED:
        return _reject(Result.command_invalid_for_status)
    assert state.mined is not None
    if state.mined.tx_hash != cmd.tx_hash:
        return _reject(Result.transaction_unknown)
    entries = ledger.reverse(settlement_entries(state, cmd.tx_hash))
    return _accept(
        state,
        ev.ChainReorged(at=now, tx_hash=cmd.tx_hash, block_hash=cmd.block_hash, entries=entries),
    )


def _revert(state: TransferState, cmd: c.ObserveRevert, now: int) -> Decision:
    if state.failure_code == Result.transaction_reverted.code:
        return _NOTHING_TO_DO
    if state.status is not Status.SENT_ON_CHAIN:
        return _reject(Result.command_invalid_for_status)
    if cmd.tx_hash not in tx_hashes(state):
        return _reject(Result.transaction_unknown)
    if state.provider_trade_id is not None:
        # A pre-funded payout is already asked for (paid, maybe) from the provider's
        # prefunding: the hold is not released; the transfer waits for an operator (its stuck
        # timer alerts) to send the deposit again or write the payout off.
        return _reject(Result.offramp_already_initiated)
    entries = ledger.release(state.client_id, state.source_currency, state.amount)
    return _accept(
        state,
        ev.OnChainReverted(
            at=now, tx_hash=cmd.tx_hash, block_number=cmd.block_number, entries=entries
        ),
    )


def _offramp(state: TransferState, cmd: c.InitiateOffRamp, now: int) -> Decision:
    if not 0 < len(cmd.provider_trade_id) <= _TRADE_ID_LENGTH_MAX:
        return _reject(Result.command_malformed)
    if state.route is not Route.BANK:
        return _reject(Result.command_invalid_for_status)
    if state.provider_trade_id == cmd.provider_trade_id:
        return _NOTHING_TO_DO
    if state.provider_trade_id is not None:
        return _reject(Result.offramp_already_initiated)
    if state.status is not Status.CONFIRMED and not prefunded_early(state):
        return _reject(Result.command_invalid_for_status)
    assert state.quote is not None
    return _accept(
        state,
        ev.OffRampInitiated(
            at=now, provider=payout_provider(state), provider_trade_id=cmd.provider_trade_id
        ),
    )


def _reroute(state: TransferState, cmd: c.RerouteOffRamp, now: int) -> Decision:
    if state.route is not Route.BANK or state.quote is None:
        return _reject(Result.command_invalid_for_status)
    if not ledger.is_name(cmd.provider) or not 0 < len(cmd.reason) <= _TRADE_ID_LENGTH_MAX * 4:
        return _reject(Result.command_malformed)
    if cmd.provider == payout_provider(state):
        return _NOTHING_TO_DO
    if state.provider_trade_id is not None:
        return _reject(Result.offramp_already_initiated)
    if state.status is not Status.CONFIRMED and not prefunded_early(state):
        return _reject(Result.command_invalid_for_status)
    previous = payout_provider(state)
    if cmd.provider in state.refused_by or cmd.previous != previous:
        return _reject(Result.payout_provider_refused)
    return _accept(
        state,
        ev.OffRampRerouted(at=now, provider=cmd.provider, previous=previous, reason=cmd.reason),
    )


def _fiat_settled(state: TransferState, cmd: c.MarkFiatSettled, now: int) -> Decision:
    if not 0 < len(cmd.bank_reference) <= _TRADE_ID_LENGTH_MAX or cmd.amount <= 0:
        return _reject(Result.command_malformed)
    if state.route is not Route.BANK:
        return _reject(Result.command_invalid_for_status)
    if state.bank_reference == cmd.bank_reference:
        return _NOTHING_TO_DO
    if state.status is not Status.CONFIRMED:
        return _reject(Result.command_invalid_for_status)
    if state.provider_trade_id is None:
        return _reject(Result.offramp_not_initiated)
    assert state.quote is not None
    if (cmd.debited is not None and cmd.debited <= 0) or not (
        0 <= cmd.slippage_tolerance_bps <= limits.slippage_tolerance_bps_max
    ):
        return _reject(Result.command_malformed)
    fill_rate = money.parse_rate(cmd.fill_rate) if cmd.fill_rate is not None else None
    if isinstance(fill_rate, Result):
        return _reject(Result.command_malformed)
    # A settled amount that differs from the quote is recorded as reported; reconciliation
    # classifies the difference (Series 5), it is not the state machine's call. What the fill
    # cost in our stablecoin is booked: the rail amount, and the slippage beside it.
    quote = state.quote
    provider = ledger.provider(payout_provider(state))
    entries = ledger.fiat_settlement(
        rail_currency=quote.rail_currency, rail_amount=quote.rail_amount, provider_account=provider
    )
    slipped = 0 if cmd.debited is None else cmd.debited - quote.rail_amount
    if slipped:
        entries += ledger.slippage(
            rail_currency=quote.rail_currency,
            amount=slipped,
            provider_account=provider,
            within=_within_tolerance(quote, cmd.debited, fill_rate, cmd.slippage_tolerance_bps),
        )
    return _accept(
        state,
        ev.FiatSettled(
            at=now,
            bank_reference=cmd.bank_reference,
            amount=cmd.amount,
            entries=entries,
            slippage=slipped,
            slippage_tolerance_bps=cmd.slippage_tolerance_bps,
        ),
    )


def _within_tolerance(
    quote: quotes.Quote, debited: int | None, fill_rate: money.Rate | None, bps: int
) -> bool:
    """Whether a fill's cost (and its rate, when stated) is within `bps` of the quote's: then
    its slippage is FX P&L; beyond, it waits in suspense for an operator (reconciliation opens
    the fx_mismatch case by the same measure of the rate)."""
    assert debited is not None
    if money.beyond_bps(quote.rail_amount, debited, bps):
        return False
    quoted = money.parse_rate(quote.rate)
    if fill_rate is None or not isinstance(quoted, money.Rate):
        return True
    return not money.beyond_bps(quoted.units, fill_rate.units, bps)


def _funds_returned(state: TransferState, cmd: c.RecordFundsReturned, now: int) -> Decision:
    if not 0 < len(cmd.reference) <= _TRADE_ID_LENGTH_MAX:
        return _reject(Result.command_malformed)
    if state.failure_code == Result.funds_returned.code:
        return _NOTHING_TO_DO
    if state.route is not Route.BANK or state.status is not Status.CONFIRMED:
        return _reject(Result.command_invalid_for_status)
    assert state.mined is not None
    # The provider that had the payout sends the stablecoin back (after a reroute, not the one
    # the deposit went to: that one keeps it as prefunding).
    returned = settlement_entries(state, state.mined.tx_hash, payout_provider(state))
    entries = ledger.reverse(returned) + ledger.release(
        state.client_id, state.source_currency, state.amount
    )
    return _accept(state, ev.FundsReturned(at=now, reference=cmd.reference, entries=entries))


def _reconcile(state: TransferState, cmd: c.Reconcile, now: int) -> Decision:
    if not cmd.evidence or not all(0 < len(e) <= _TRADE_ID_LENGTH_MAX for e in cmd.evidence):
        return _reject(Result.command_malformed)
    if state.status is Status.RECONCILED:
        return _NOTHING_TO_DO
    if next_status(state.route, state.status, "Reconciled") is None:
        return _reject(Result.command_invalid_for_status)
    return _accept(state, ev.Reconciled(at=now, evidence=tuple(cmd.evidence)))


def _release_if_held(state: TransferState) -> ledger.Entries:
    held = held_amount(state)
    return ledger.release(state.client_id, state.source_currency, held) if held else ()


def _cancel(state: TransferState, cmd: c.CancelTransfer, now: int) -> Decision:
    if not is_user(cmd.by) or len(cmd.reason) > _REASON_LENGTH_MAX:
        return _reject(Result.command_malformed)
    if state.status is Status.CANCELLED:
        return _NOTHING_TO_DO
    if state.status not in CANCELLABLE:
        return _reject(Result.transfer_not_cancellable)
    return _accept(
        state,
        ev.TransferCancelled(at=now, by=cmd.by, reason=cmd.reason, entries=_release_if_held(state)),
    )


def _fail(state: TransferState, cmd: c.FailTransfer, now: int) -> Decision:
    code = Result.from_code(cmd.code)
    if code is None or code not in FAILURE_CODES:
        return _reject(Result.failure_code_invalid)
    if len(cmd.message) > limits.failure_message_length_max:
        return _reject(Result.command_malformed)
    if state.status is Status.FAILED and state.failure_code == code.code:
        return _NOTHING_TO_DO
    if state.status not in CANCELLABLE:
        return _reject(Result.command_invalid_for_status)
    return _accept(
        state,
        ev.TransferFailed(
            at=now,
            code=code.code,
            message=cmd.message,
            entries=_release_if_held(state),
            screening=cmd.screening,
        ),
    )


def approval_deadline(state: TransferState) -> int:
    return state.created_at + limits.approval_ttl_us


def _expire(state: TransferState, cmd: c.ExpireTransfer, now: int) -> Decision:
    if state.status is Status.EXPIRED:
        return _NOTHING_TO_DO
    if state.status is Status.CREATED and approval_state(state) == "pending":
        if now < approval_deadline(state):
            return _reject(Result.approval_not_expired)
        return _accept(state, ev.TransferExpired(at=now, code=Result.approval_expired.code))
    if state.status is Status.QUOTED:
        assert state.quote is not None
        if now < state.quote.expires_at:
            return _reject(Result.quote_not_expired)
        return _accept(
            state, ev.TransferExpired(at=now, code=Result.quote_expired.code, message=cmd.reason)
        )
    return _reject(Result.command_invalid_for_status)


def _approval(
    state: TransferState, cmd: c.ApproveTransfer | c.RejectTransfer, now: int
) -> Decision:
    if not is_user(cmd.by):
        return _reject(Result.user_invalid)
    if isinstance(cmd, c.RejectTransfer) and len(cmd.reason) > _REASON_LENGTH_MAX:
        return _reject(Result.command_malformed)
    if state.status is not Status.CREATED or approval_state(state) != "pending":
        return _reject(Result.transfer_not_awaiting_approval)
    # Maker-checker compares people, not keys.
    if cmd.by == state.initiator:
        return _reject(Result.maker_cannot_approve)
    if cmd.by in state.approved_by:
        return _reject(Result.approval_duplicate)
    if isinstance(cmd, c.RejectTransfer):
        return _accept(state, ev.ApprovalRejected(at=now, by=cmd.by, reason=cmd.reason))
    current = terms_hash(state)
    if cmd.terms_hash is not None and cmd.terms_hash != current:
        return _reject(Result.approval_terms_mismatch)
    return _accept(state, ev.ApprovalGranted(at=now, by=cmd.by, terms_hash=current))
