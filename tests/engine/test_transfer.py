"""decide's validation ladders, case by case: every way a command can be wrong gets its named
Result and no events; retried commands are no-ops; the money-moving steps post what they should."""

from __future__ import annotations

import msgspec
import pytest

from engine import commands as c
from engine import effects as fx
from engine import events as ev
from engine import ledger, limits, policy
from engine.destinations import BankDestination, WalletDestination
from engine.results import Result
from engine.states import Route, Status
from engine.transfer import (
    approval_state,
    approvers,
    decide,
    evolve,
    evolve_all,
    held_amount,
    pending_effects,
    terms_hash,
)
from tests.builders import (
    T0,
    Walk,
    block_hash,
    create_command,
    quote_for,
    signed_tx,
    walk_to,
)
from tests.builders import decision as policy_decision


def refused(command: c.TransferCommand, result: Result, state=None, now: int = T0) -> None:  # type: ignore[no-untyped-def]
    decision = decide(state, command, now)
    assert decision.result is result, (decision.result, result)
    assert decision.events == ()
    assert decision.effects == ()


# --- CreateTransfer --------------------------------------------------------------------------


def test_create_records_the_terms_and_asks_for_a_quote() -> None:
    decision = decide(None, create_command(1, amount="1000.5"), T0)
    assert decision.result is Result.ok
    (created,) = decision.events
    assert isinstance(created, ev.TransferCreated)
    assert (created.amount, created.route, created.at) == (100_050, Route.WALLET, T0)
    assert decision.effects == (fx.RequestQuote(transfer_id=created.transfer_id),)
    state = evolve(None, created)
    assert (state.status, state.version, approval_state(state)) == (
        Status.CREATED,
        1,
        "not_required",
    )


def test_create_awaiting_approval_waits_instead_of_quoting() -> None:
    decision = decide(None, create_command(1, approvals=1), T0)
    assert decision.result is Result.ok and decision.effects == ()
    assert approval_state(evolve(None, decision.events[0])) == "pending"


def test_a_create_blocked_by_policy_is_created_and_failed_in_one_decision() -> None:
    """The API's rule: a refused transfer stays, FAILED, for audit; it names the rule."""
    blocked = policy.PolicyDecision(
        version=3,
        rule_id="block-over-250k",
        action=policy.Action.BLOCK,
        code=Result.policy_blocked.code,
        usd_amount=30_000_000,
        beneficiary="ethereum:" + "0x" + "b0" * 20,
    )
    made = decide(None, create_command(1, policy=blocked), T0)
    assert made.result is Result.ok and made.effects == ()
    state = evolve_all(None, made.events)
    assert (state.status, state.failure_code) == (Status.FAILED, "policy_blocked")
    assert state.policy == blocked
    assert "block-over-250k" in (state.failure_message or "")


def test_a_create_the_available_balance_cannot_cover_fails_before_policy_or_approval() -> None:
    """No approver is asked about a transfer that cannot be funded: refused at creation (the
    funds lock, serialized in the store, stays the check that decides for the rest)."""
    made = decide(None, create_command(1, amount="100.00", approvals=1, available=99_99), T0)
    state = evolve_all(None, made.events)
    assert (state.status, state.failure_code) == (Status.FAILED, "insufficient_funds")
    assert state.failure_message == "available balance 99.99 USD at creation"
    assert approval_state(state) == "not_required" and made.effects == ()
    assert state.policy is not None and state.policy.approvals_required == 1
    covered = decide(None, create_command(1, amount="100.00", available=100_00), T0)
    assert evolve_all(None, covered.events).status is Status.CREATED


def test_the_hold_carries_the_rolling_limits_of_its_decision() -> None:
    limit = policy.LimitCheck(
        limit_id="client-24h", scope=policy.Scope.CLIENT, window_us=1, volume_max=5
    )
    allowed = msgspec.structs.replace(policy_decision(), limits=(limit,), usd_amount=10_000)
    w = Walk(create_command(1, policy=allowed))
    w.apply(c.QuoteTransfer(quote=quote_for(w.s, w.now)))
    locked = w.apply(c.LockFunds()).events[0]
    assert isinstance(locked, ev.FundsLocked)
    assert locked.limits == (limit,) and locked.usd_amount == 10_000


def test_wallet_addresses_are_normalized() -> None:
    destination = WalletDestination(chain="ethereum", address="0x" + "AB" * 20)
    decision = decide(None, create_command(1, destination=destination), T0)
    assert decision.events[0].destination.address == "0x" + "ab" * 20  # type: ignore[union-attr]


BAD_CREATES = [
    ({"transfer_id": "tr_nope"}, Result.command_malformed),
    ({"request_hash": "abc"}, Result.command_malformed),
    ({"quote_id": "tr_" + "0" * 26}, Result.command_malformed),
    ({"policy": None}, Result.policy_missing),
    (
        {"policy": msgspec.structs.replace(policy_decision(1), approvals_required=9)},
        Result.command_malformed,
    ),
    (
        {"policy": msgspec.structs.replace(policy_decision(), code="policy_blocked")},
        Result.command_malformed,
    ),
    ({"client_id": ""}, Result.client_id_invalid),
    ({"client_id": "acme:evil"}, Result.client_id_invalid),
    ({"initiator": ""}, Result.user_invalid),
    ({"initiator": " alice"}, Result.user_invalid),
    ({"idempotency_key": ""}, Result.idempotency_key_missing),
    ({"idempotency_key": "k" * 256}, Result.idempotency_key_invalid),
    ({"idempotency_key": "ключ"}, Result.idempotency_key_invalid),
    ({"source_currency": "BTC"}, Result.currency_unknown),
    ({"target_currency": "usdc"}, Result.currency_unknown),
    ({"amount": "abc"}, Result.amount_malformed),
    ({"amount": "-5"}, Result.amount_negative),
    ({"amount": "1.001"}, Result.amount_scale_exceeded),
    ({"amount": "100000000000.01"}, Result.amount_exceeds_maximum),
    ({"amount": "0"}, Result.amount_must_be_positive),
    ({"amount": "0.00"}, Result.amount_must_be_positive),
    (
        {"destination": WalletDestination(chain="ethereum", address="0x123")},
        Result.destination_invalid,
    ),
    (
        {"destination": WalletDestination(chain="ethereum", address="0x" + "0" * 40)},
        Result.destination_invalid,
    ),
    (
        {"destination": WalletDestination(chain="tron", address="0x" + "b0" * 20)},
        Result.destination_invalid,
    ),
    ({"target_currency": "EURC"}, Result.currency_pair_unsupported),
    ({"source_currency": "MXN"}, Result.currency_pair_unsupported),
    ({"reference": ""}, Result.reference_invalid),
    ({"reference": "x" * 141}, Result.reference_invalid),
    ({"reference": "line\nbreak"}, Result.reference_invalid),
    ({"metadata": {f"k{i}": "v" for i in range(21)}}, Result.metadata_invalid),
    ({"metadata": {"bad key": "v"}}, Result.metadata_invalid),
    ({"metadata": {"k": "v" * 501}}, Result.metadata_invalid),
]


@pytest.mark.parametrize(("overrides", "result"), BAD_CREATES)
def test_create_refuses(overrides: dict[str, object], result: Result) -> None:
    refused(create_command(1, **overrides), result)  # type: ignore[arg-type]


GOOD_CLABE = "032180000118359719"


@pytest.mark.parametrize(
    ("country", "clabe", "name", "target", "result"),
    [
        ("MX", "032180000118359718", "x", "MXN", Result.destination_invalid),
        ("BR", GOOD_CLABE, "x", "MXN", Result.destination_invalid),
        ("MX", GOOD_CLABE, " ", "MXN", Result.destination_invalid),
        ("MX", GOOD_CLABE, "x", "USD", Result.destination_currency_mismatch),
        ("MX", GOOD_CLABE, "x", "USDC", Result.destination_currency_mismatch),
    ],
)
def test_bank_destinations(
    country: str, clabe: str, name: str, target: str, result: Result
) -> None:
    destination = BankDestination(country=country, clabe=clabe, name=name)
    command = create_command(1, route=Route.BANK, destination=destination, target_currency=target)
    refused(command, result)


def test_the_cheapest_failing_check_wins() -> None:
    # A malformed amount and an unknown currency: the currency is checked first (it names the
    # scale the amount is parsed at), and both come after the client id.
    refused(create_command(1, source_currency="XXX", amount="-1"), Result.currency_unknown)
    refused(create_command(1, client_id="", amount="-1"), Result.client_id_invalid)


# --- quotes ----------------------------------------------------------------------------------


def test_quote_must_price_exactly_this_transfer() -> None:
    w = walk_to("CREATED")
    good = quote_for(w.s, w.now)
    cases = [
        msgspec.structs.replace(good, source_amount=good.source_amount + 1),
        msgspec.structs.replace(good, target_currency="EURC"),
        msgspec.structs.replace(good, target_amount=good.target_amount + 1),
        msgspec.structs.replace(good, rail_amount=good.rail_amount - 1),
        msgspec.structs.replace(good, fee=good.source_amount),
        msgspec.structs.replace(good, rate="abc"),
    ]
    for quote in cases:
        refused(c.QuoteTransfer(quote=quote), Result.quote_mismatch, w.s, w.now)


def test_an_expired_quote_is_refused() -> None:
    w = walk_to("CREATED")
    quote = quote_for(w.s, w.now)
    refused(c.QuoteTransfer(quote=quote), Result.quote_expired, w.s, quote.expires_at)


def test_an_offramp_quote_must_name_the_providers_address() -> None:
    w = walk_to("CREATED", route=Route.BANK)
    quote = msgspec.structs.replace(quote_for(w.s, w.now), payout_address=None)
    refused(c.QuoteTransfer(quote=quote), Result.quote_mismatch, w.s, w.now)


def test_a_transfer_made_with_a_quote_id_uses_exactly_that_quote() -> None:
    w = Walk(create_command(1))
    chosen = quote_for(w.s, w.now, n=5)
    w = Walk(create_command(1, quote_id=chosen.quote_id))
    assert decide(w.s, c.QuoteTransfer(quote=quote_for(w.s, w.now, n=6)), w.now).result is (
        Result.quote_mismatch
    )
    assert decide(w.s, c.QuoteTransfer(quote=chosen), w.now).result is Result.ok


def test_requote_only_after_expiry() -> None:
    w = walk_to("QUOTED")
    assert w.s.quote is not None
    later = w.s.quote.expires_at
    fresh = quote_for(w.s, later, n=9)
    decision = decide(w.s, c.QuoteTransfer(quote=fresh), later)
    assert decision.result is Result.ok
    assert evolve(w.s, decision.events[0]).quote == fresh


def test_lock_refuses_an_expired_quote() -> None:
    w = walk_to("QUOTED")
    assert w.s.quote is not None
    refused(c.LockFunds(), Result.quote_expired, w.s, w.s.quote.expires_at)


def test_lock_posts_a_hold_and_asks_for_a_signature() -> None:
    w = walk_to("QUOTED")
    decision = w.apply(c.LockFunds())
    (locked,) = decision.events
    assert isinstance(locked, ev.FundsLocked)
    assert locked.entries == ledger.hold("acme", "USD", 10_000)
    assert held_amount(w.s) == 10_000
    (sign,) = decision.effects
    assert isinstance(sign, fx.SignTransaction)
    assert w.s.quote is not None
    assert (sign.amount, sign.currency, sign.to_address) == (
        w.s.quote.rail_amount,
        "USDC",
        "0x" + "b0" * 20,
    )


# --- the chain -------------------------------------------------------------------------------


def test_a_transaction_must_pay_what_was_promised() -> None:
    w = walk_to("FUNDS_LOCKED")
    good = signed_tx(w.s)
    for bad in [
        msgspec.structs.replace(good, amount=good.amount + 1),
        msgspec.structs.replace(good, to_address="0x" + "cc" * 20),
        msgspec.structs.replace(good, currency="EURC"),
        msgspec.structs.replace(good, chain="tron"),
        msgspec.structs.replace(good, tx_hash="0xnothex"),
        msgspec.structs.replace(good, raw="deadbeef"),
    ]:
        refused(c.SubmitOnChain(tx=bad), Result.transaction_mismatch, w.s, w.now)


def test_submitting_the_same_transaction_again_is_a_noop() -> None:
    w = walk_to("SENT_ON_CHAIN")
    decision = decide(w.s, c.SubmitOnChain(tx=w.s.txs[0]), w.now)
    assert (decision.result, decision.events) == (Result.ok, ())


def test_sent_on_chain_rebroadcasts_the_same_bytes() -> None:
    w = walk_to("SENT_ON_CHAIN")
    tx = w.s.txs[0]
    assert pending_effects(w.s) == (
        fx.BroadcastTransaction(transfer_id=w.s.transfer_id, tx_hash=tx.tx_hash, raw=tx.raw),
        fx.WatchTransaction(transfer_id=w.s.transfer_id, tx_hashes=(tx.tx_hash,)),
    )


def test_confirmed_keeps_watching_its_confirmation_for_reorgs() -> None:
    """After a restart too: recovery re-drives CONFIRMED's effects, and the watch starts from the
    confirmation the journal holds, so a reorg that took the payment away while the process was
    down is seen (and sends the transfer back to SENT_ON_CHAIN)."""
    w = walk_to("CONFIRMED")
    assert w.s.mined is not None
    assert pending_effects(w.s) == (
        fx.WatchTransaction(
            transfer_id=w.s.transfer_id, tx_hashes=(w.s.txs[0].tx_hash,), confirmed=w.s.mined
        ),
        fx.RequestReconciliation(transfer_id=w.s.transfer_id),
    )


def test_a_replacement_keeps_the_nonce_and_payment_and_bids_more() -> None:
    w = walk_to("SENT_ON_CHAIN")
    first = w.s.txs[0]
    same_fee = signed_tx(w.s, fee=first.max_fee_per_gas, salt=1)
    other_nonce = signed_tx(w.s, nonce=1, fee=first.max_fee_per_gas * 2, salt=2)
    refused(c.ReplaceDroppedTx(tx=same_fee), Result.transaction_mismatch, w.s, w.now)
    refused(c.ReplaceDroppedTx(tx=other_nonce), Result.transaction_mismatch, w.s, w.now)
    w.apply(c.ReplaceDroppedTx(tx=signed_tx(w.s, fee=first.max_fee_per_gas * 2, salt=3)))
    assert len(w.s.txs) == 2 and w.s.status is Status.SENT_ON_CHAIN


def test_a_replacement_raises_both_fee_fields_by_ten_percent() -> None:
    """geth's rule (EVM-NOTES): a replacement raising either fee field by less than 10% is
    refused by the node as underpriced, so the engine refuses to journal one."""
    w = walk_to("SENT_ON_CHAIN")
    first = w.s.txs[0]
    fee = first.max_fee_per_gas
    w.apply(c.ReplaceDroppedTx(tx=signed_tx(w.s, fee=fee * 11 // 10, tip=10**9, salt=1)))
    fee, tip = w.s.txs[-1].max_fee_per_gas, w.s.txs[-1].max_priority_fee_per_gas
    for too_small in (
        signed_tx(w.s, fee=fee * 11 // 10 - 1, tip=tip * 2, salt=2),
        signed_tx(w.s, fee=fee * 2, tip=tip * 11 // 10 - 1, salt=3),
    ):
        refused(c.ReplaceDroppedTx(tx=too_small), Result.transaction_mismatch, w.s, w.now)
    w.apply(c.ReplaceDroppedTx(tx=signed_tx(w.s, fee=fee * 11 // 10, tip=tip * 11 // 10, salt=4)))
    assert len(w.s.txs) == 3


def test_replacements_are_bounded() -> None:
    w = walk_to("SENT_ON_CHAIN")
    fee = w.s.txs[0].max_fee_per_gas
    for salt in range(limits.transaction_replacements_max):
        fee *= 2
        w.apply(c.ReplaceDroppedTx(tx=signed_tx(w.s, fee=fee, salt=10 + salt)))
    refused(
        c.ReplaceDroppedTx(tx=signed_tx(w.s, fee=fee * 2, salt=99)),
        Result.transaction_replacements_exceeded,
        w.s,
        w.now,
    )


def test_any_of_the_same_nonce_transactions_may_confirm() -> None:
    w = walk_to("SENT_ON_CHAIN")
    first = w.s.txs[0]
    w.apply(c.ReplaceDroppedTx(tx=signed_tx(w.s, fee=first.max_fee_per_gas * 2, salt=1)))
    w.apply(
        c.ObserveConfirmation(
            tx_hash=first.tx_hash,
            block_number=7,
            block_hash=block_hash(7),
            confirmations=limits.confirmations_required,
        )
    )
    assert w.s.mined is not None and w.s.mined.tx_hash == first.tx_hash


def test_too_few_confirmations_keeps_watching() -> None:
    w = walk_to("SENT_ON_CHAIN")
    decision = decide(
        w.s,
        c.ObserveConfirmation(
            tx_hash=w.s.txs[0].tx_hash,
            block_number=7,
            block_hash=block_hash(7),
            confirmations=limits.confirmations_required - 1,
        ),
        w.now,
    )
    assert (decision.result, decision.events) == (Result.ok, ())


def test_an_unknown_transaction_is_not_confirmed() -> None:
    w = walk_to("SENT_ON_CHAIN")
    refused(
        c.ObserveConfirmation(
            tx_hash=block_hash(1), block_number=7, block_hash=block_hash(7), confirmations=99
        ),
        Result.transaction_unknown,
        w.s,
        w.now,
    )


def test_a_reorg_reverses_the_settlement_and_a_reconfirmation_posts_it_again() -> None:
    w = walk_to("CONFIRMED")
    assert w.s.mined is not None
    confirmed = w.events[-1]
    assert isinstance(confirmed, ev.OnChainConfirmed)
    w.apply(c.ObserveReorg(tx_hash=w.s.mined.tx_hash, block_hash=block_hash(100)))
    reorged = w.events[-1]
    assert isinstance(reorged, ev.ChainReorged)
    assert reorged.entries == ledger.reverse(confirmed.entries)
    assert (w.s.status, held_amount(w.s)) == (Status.SENT_ON_CHAIN, w.s.amount)
    w.apply(
        c.ObserveConfirmation(
            tx_hash=w.s.txs[0].tx_hash,
            block_number=101,
            block_hash=block_hash(101),
            confirmations=limits.confirmations_required,
        )
    )
    assert w.s.status is Status.CONFIRMED


def test_a_reverted_transaction_fails_the_transfer_and_releases_the_hold() -> None:
    w = walk_to("SENT_ON_CHAIN")
    decision = w.apply(c.ObserveRevert(tx_hash=w.s.txs[0].tx_hash, block_number=5))
    assert w.s.status is Status.FAILED
    assert w.s.failure_code == "transaction_reverted"
    assert decision.events[0].entries == ledger.release("acme", "USD", w.s.amount)  # type: ignore[union-attr]


# --- the fiat leg ----------------------------------------------------------------------------


def test_the_offramp_path() -> None:
    w = walk_to("CONFIRMED", route=Route.BANK)
    assert w.s.quote is not None
    assert pending_effects(w.s) == (
        fx.WatchTransaction(
            transfer_id=w.s.transfer_id, tx_hashes=(w.s.txs[0].tx_hash,), confirmed=w.s.mined
        ),
        fx.StartOffRamp(
            transfer_id=w.s.transfer_id, provider="bitso-sim", quote_id=w.s.quote.quote_id
        ),
    )
    w.apply(c.InitiateOffRamp(provider_trade_id="trade-1"))
    refused(c.InitiateOffRamp(provider_trade_id="trade-2"), Result.offramp_already_initiated, w.s)
    w.apply(c.MarkFiatSettled(bank_reference="SPEI-9", amount=w.s.quote.target_amount))
    assert w.s.status is Status.FIAT_SETTLED
    assert pending_effects(w.s) == (fx.RequestReconciliation(transfer_id=w.s.transfer_id),)


def test_returned_funds_undo_the_settlement_and_release_the_hold() -> None:
    w = walk_to("CONFIRMED", route=Route.BANK)
    confirmed = w.events[-1]
    assert isinstance(confirmed, ev.OnChainConfirmed)
    decision = w.apply(c.RecordFundsReturned(reference="RET-1"))
    expected = ledger.reverse(confirmed.entries) + ledger.release("acme", "USD", w.s.amount)
    assert decision.events[0].entries == expected  # type: ignore[union-attr]
    assert (w.s.status, w.s.failure_code) == (Status.FAILED, "funds_returned")


def test_a_payout_rerouted_before_acceptance_is_paid_and_booked_by_the_new_provider() -> None:
    """bitso-sim (the quote's provider, holding the deposit) refused the payout before
    accepting it: the payout moves to conduit-sim, which pays from its prefunding. Nothing
    moves at the reroute; the settlement is booked against conduit-sim, bitso-sim keeps the
    deposit; a refusing provider is never asked again; once a trade exists it cannot move."""
    w = walk_to("CONFIRMED", route=Route.BANK)
    assert w.s.quote is not None
    decision = w.apply(
        c.RerouteOffRamp(provider="conduit-sim", previous="bitso-sim", reason="bitso-sim: on hold")
    )
    (event,) = decision.events
    assert isinstance(event, ev.OffRampRerouted)
    assert (event.previous, event.provider) == ("bitso-sim", "conduit-sim")
    assert ev.entries_of(event) == ()
    assert (w.s.status, w.s.rerouted_to, w.s.refused_by) == (
        Status.CONFIRMED, "conduit-sim", ("bitso-sim",)
    )  # fmt: skip
    start = fx.StartOffRamp(
        transfer_id=w.s.transfer_id,
        provider="conduit-sim",
        quote_id=w.s.quote.quote_id,
        prefunded=True,
    )
    assert start in pending_effects(w.s)
    again = decide(
        w.s, c.RerouteOffRamp(provider="conduit-sim", previous="bitso-sim", reason="again"), w.now
    )
    assert (again.result, again.events) == (Result.ok, ())
    back = c.RerouteOffRamp(provider="bitso-sim", previous="conduit-sim", reason="back")
    refused(back, Result.payout_provider_refused, w.s)
    stale = c.RerouteOffRamp(provider="rampa-sim", previous="bitso-sim", reason="decided before")
    refused(stale, Result.payout_provider_refused, w.s)
    initiated = w.apply(c.InitiateOffRamp(provider_trade_id="CND-1")).events[0]
    assert isinstance(initiated, ev.OffRampInitiated) and initiated.provider == "conduit-sim"
    late = c.RerouteOffRamp(provider="rampa-sim", previous="conduit-sim", reason="late")
    refused(late, Result.offramp_already_initiated, w.s)
    settled = w.apply(c.MarkFiatSettled(bank_reference="SPEI-9", amount=1)).events[0]
    accounts = {e.account for e in ev.entries_of(settled)}
    assert "provider:conduit-sim" in accounts and "provider:bitso-sim" not in accounts


def test_funds_returned_after_a_reroute_come_back_from_the_provider_that_had_the_payout() -> None:
    w = walk_to("CONFIRMED", route=Route.BANK)
    w.apply(
        c.RerouteOffRamp(provider="rampa-sim", previous="bitso-sim", reason="bitso-sim: on hold")
    )
    w.apply(c.InitiateOffRamp(provider_trade_id="RMP-1"))
    returned = w.apply(c.RecordFundsReturned(reference="RET-1")).events[0]
    credits = {e.account: e.credit for e in ev.entries_of(returned) if e.credit}
    assert credits["provider:rampa-sim"] == w.s.quote.rail_amount  # type: ignore[union-attr]
    assert "provider:bitso-sim" not in credits


# --- cancel, fail, expire, approvals ---------------------------------------------------------


@pytest.mark.parametrize("status", ["CREATED", "QUOTED", "FUNDS_LOCKED"])
def test_cancel_releases_only_what_is_held(status: str) -> None:
    w = walk_to(status)
    held = held_amount(w.s)
    decision = w.apply(c.CancelTransfer(by="alice", reason="x"))
    entries = decision.events[0].entries  # type: ignore[union-attr]
    assert entries == (ledger.release("acme", "USD", held) if held else ())
    assert w.s.status is Status.CANCELLED and held_amount(w.s) == 0


def test_fail_takes_only_failure_codes() -> None:
    w = walk_to("QUOTED")
    refused(c.FailTransfer(code="amount_malformed"), Result.failure_code_invalid, w.s)
    refused(c.FailTransfer(code="no_such_code"), Result.failure_code_invalid, w.s)
    w.apply(c.FailTransfer(code="insufficient_funds", message="short"))
    assert (w.s.failure_code, w.s.failure_message) == ("insufficient_funds", "short")


def test_expiry_waits_for_the_deadline() -> None:
    w = walk_to("QUOTED")
    assert w.s.quote is not None
    refused(c.ExpireTransfer(), Result.quote_not_expired, w.s, w.s.quote.expires_at - 1)
    pending = walk_to("CREATED_PENDING")
    refused(c.ExpireTransfer(), Result.approval_not_expired, pending.s, pending.now)
    deadline = pending.s.created_at + limits.approval_ttl_us
    assert decide(pending.s, c.ExpireTransfer(), deadline).events[0].code == "approval_expired"  # type: ignore[union-attr]


def test_maker_checker_by_person() -> None:
    w = walk_to("CREATED_PENDING")
    refused(c.ApproveTransfer(by="alice"), Result.maker_cannot_approve, w.s)
    refused(c.RejectTransfer(by="alice"), Result.maker_cannot_approve, w.s)
    refused(c.ApproveTransfer(by=""), Result.user_invalid, w.s)
    decision = w.apply(c.ApproveTransfer(by="bob"))
    assert approval_state(w.s) == "approved"
    assert decision.effects == (fx.RequestQuote(transfer_id=w.s.transfer_id),)
    refused(c.ApproveTransfer(by="carol"), Result.transfer_not_awaiting_approval, w.s)


def test_two_approvals_need_two_people() -> None:
    w = Walk(create_command(1, approvals=2))
    w.apply(c.ApproveTransfer(by="bob"))
    refused(c.ApproveTransfer(by="bob"), Result.approval_duplicate, w.s)
    assert approval_state(w.s) == "pending"
    w.apply(c.ApproveTransfer(by="carol"))
    assert approval_state(w.s) == "approved" and w.s.approved_by == ("bob", "carol")


def test_any_reject_rejects() -> None:
    w = Walk(create_command(1, approvals=2))
    w.apply(c.ApproveTransfer(by="bob"))
    w.apply(c.RejectTransfer(by="carol", reason="not this vendor"))
    assert (w.s.status, approval_state(w.s), w.s.failure_code) == (
        Status.FAILED,
        "rejected",
        "approval_rejected",
    )


# --- evolve guards the table -----------------------------------------------------------------


def test_evolve_refuses_an_illegal_move() -> None:
    w = walk_to("CREATED")
    with pytest.raises(AssertionError, match="illegal transition"):
        evolve(w.s, ev.FundsLocked(at=T0, entries=ledger.hold("acme", "USD", 1)))


def test_evolve_refuses_unbalanced_entries() -> None:
    w = walk_to("QUOTED")
    lopsided = (ledger.debit(ledger.client_available("acme"), "USD", 5, ledger.EntryType.HOLD),)
    with pytest.raises(AssertionError, match="do not balance"):
        evolve(w.s, ev.FundsLocked(at=T0, entries=lopsided))


def test_evolve_refuses_a_second_creation() -> None:
    w = walk_to("CREATED")
    with pytest.raises(AssertionError):
        evolve(w.s, w.events[0])


def test_an_approval_is_bound_to_the_terms_the_approver_saw() -> None:
    w = Walk(create_command(1, approvals=1))
    seen = terms_hash(w.s)
    refused(c.ApproveTransfer(by="bob", terms_hash="0" * 64), Result.approval_terms_mismatch, w.s)
    w.apply(c.ApproveTransfer(by="bob", terms_hash=seen))
    assert approval_state(w.s) == "approved" and w.s.approvals == (("bob", seen),)


def test_an_approval_is_void_once_the_terms_change() -> None:
    """Terms cannot change through any command; if a bug changed them anyway, the approval given
    for the old terms no longer counts, and nothing moves without a new one."""
    w = Walk(create_command(1, approvals=1))
    w.apply(c.ApproveTransfer(by="bob"))
    assert approval_state(w.s) == "approved"
    changed = msgspec.structs.replace(w.s, destination=WalletDestination(
        chain="ethereum", address="0x" + "66" * 20))  # fmt: skip
    assert approval_state(changed) == "pending" and approvers(changed) == ()
    assert pending_effects(changed) == ()
    refused(c.QuoteTransfer(quote=quote_for(changed, w.now)), Result.approval_pending, changed)


def test_a_named_quote_that_expired_awaiting_approval_is_replaced_by_a_fresh_one() -> None:
    named = quote_for(walk_to("CREATED").s, T0)
    w = Walk(create_command(1, approvals=1, quote_id=named.quote_id))
    w.apply(c.ApproveTransfer(by="bob"))
    fresh = quote_for(w.s, w.now, n=2)
    refused(c.QuoteTransfer(quote=fresh), Result.quote_mismatch, w.s, now=w.now)
    early = c.QuoteTransfer(quote=fresh, requested_expired_at=w.now + 5)
    refused(early, Result.quote_mismatch, w.s, now=w.now)
    w.apply(c.QuoteTransfer(quote=fresh, requested_expired_at=w.now - 1))
    assert w.s.status is Status.QUOTED and w.s.quote == fresh
    # Without approvals the named quote is the only one (API.md: that quote or quote_expired).
    plain = Walk(create_command(2, quote_id=named.quote_id))
    expired = c.QuoteTransfer(quote=quote_for(plain.s, plain.now, n=3), requested_expired_at=0)
    refused(expired, Result.quote_mismatch, plain.s, now=plain.now)


def test_a_requote_beyond_the_clients_tolerance_is_refused_and_expiry_says_why() -> None:
    """Auto re-quote within a tolerance (Series 7's re-quote policy): a fresh quote may replace
    an expired one only if it gives the beneficiary at most `tolerance_bps` less; beyond that
    the engine refuses it (the actor then expires the transfer, naming the move)."""
    w = walk_to("QUOTED", route=Route.BANK)
    assert w.s.quote is not None
    later = w.s.quote.expires_at
    # 17.25 -> 17.2155 is 20 bp worse; 17.25 -> 17.1983 is about 30 bp worse.
    within = quote_for(w.s, later, n=8, rate="17.21550000")
    beyond = quote_for(w.s, later, n=9, rate="17.19830000")
    tolerant = c.QuoteTransfer(quote=within, requote_tolerance_bps=25)
    assert decide(w.s, tolerant, later).result is Result.ok
    strict = c.QuoteTransfer(quote=beyond, requote_tolerance_bps=25)
    refused(strict, Result.requote_beyond_tolerance, w.s, later)
    assert decide(w.s, c.QuoteTransfer(quote=beyond), later).result is Result.ok, "no tolerance"
    better = quote_for(w.s, later, n=10, rate="17.30000000")
    assert decide(w.s, c.QuoteTransfer(quote=better, requote_tolerance_bps=0), later).result is (
        Result.ok
    )
    expired = w.apply(c.ExpireTransfer(reason="the new price is 30 bp worse"), later)
    (event,) = expired.events
    assert isinstance(event, ev.TransferExpired) and event.code == "quote_expired"
    assert (w.s.status, w.s.failure_message) == (Status.EXPIRED, "the new price is 30 bp worse")


def _settled(debited: int | None, fill: str | None = None) -> tuple[ev.FiatSettled, Walk]:
    w = walk_to("CONFIRMED", route=Route.BANK)
    w.apply(c.InitiateOffRamp(provider_trade_id="trade-1"))
    assert w.s.quote is not None
    settle = c.MarkFiatSettled(
        bank_reference="SPEI-9", amount=w.s.quote.target_amount, debited=debited, fill_rate=fill,
        slippage_tolerance_bps=50,
    )  # fmt: skip
    (settled,) = w.apply(settle).events
    assert isinstance(settled, ev.FiatSettled)
    return settled, w


def _lines(settled: ev.FiatSettled) -> set[tuple[str, int, int]]:
    return {(e.account, e.debit, e.credit) for e in settled.entries}


def test_a_fill_off_the_quote_books_its_slippage_to_fx_pnl_within_tolerance_suspense_beyond() -> (
    None
):
    """What the provider debited for the fill is what the provider account loses: the rail
    amount against fx:position, the difference against FX P&L when the fill is within the
    corridor's tolerance (a gain when it cost less), against suspense beyond it."""
    exact, w = _settled(None)
    rail = w.s.quote.rail_amount if w.s.quote else 0
    assert (exact.slippage, len(exact.entries)) == (0, 2)
    assert _settled(rail)[0].entries == exact.entries, "debited as agreed: nothing more"
    quoted = w.s.quote.rate if w.s.quote else ""
    loss, w = _settled(rail + 40)
    assert (loss.slippage, loss.slippage_tolerance_bps, w.s.slippage) == (40, 50, 40)
    assert _lines(loss) - _lines(exact) == {("fx:pnl", 40, 0), ("provider:bitso-sim", 0, 40)}
    gain, _ = _settled(rail - 40, fill=quoted)
    assert _lines(gain) - _lines(exact) == {("fx:pnl", 0, 40), ("provider:bitso-sim", 40, 0)}
    beyond, _ = _settled(rail * 102 // 100)
    assert _lines(beyond) - _lines(exact) == {
        ("suspense", rail * 2 // 100, 0),
        ("provider:bitso-sim", 0, rail * 2 // 100),
    }
    off_rate = f"{float(quoted) * 0.98:.8f}"
    rate_beyond, _ = _settled(rail + 1, fill=off_rate)
    assert ("suspense", 1, 0) in _lines(rate_beyond), "the rate beyond tolerance: suspense"
    for settled in (exact, loss, gain, beyond, rate_beyond):
        debits = sum(e.debit for e in settled.entries)
        assert debits == sum(e.credit for e in settled.entries)


def test_a_settlement_with_a_malformed_fill_is_refused() -> None:
    w = walk_to("CONFIRMED", route=Route.BANK)
    w.apply(c.InitiateOffRamp(provider_trade_id="trade-1"))
    for bad in (
        {"debited": 0},
        {"fill_rate": "fast"},
        {"slippage_tolerance_bps": limits.slippage_tolerance_bps_max + 1},
    ):
        settle = c.MarkFiatSettled(bank_reference="SPEI-9", amount=1, **bad)
        refused(settle, Result.command_malformed, w.s)


def _sent_bank(prefunded: bool) -> Walk:
    w = Walk(create_command(route=Route.BANK))
    quote = msgspec.structs.replace(quote_for(w.s, w.now), prefunded=prefunded)
    w.apply(c.QuoteTransfer(quote=quote))
    w.apply(c.LockFunds())
    w.apply(c.SubmitOnChain(tx=signed_tx(w.s)))
    assert w.s.status is Status.SENT_ON_CHAIN
    return w


def test_a_prefunded_payout_is_asked_for_at_broadcast_and_a_just_in_time_one_at_confirmation() -> (
    None
):
    """Pre-funded corridor: the payout is asked for (prefunded) while the deposit is in flight,
    the transfer stays SENT_ON_CHAIN, a revert of the deposit then cannot release the hold (the
    payout may be paid), and the confirmation leads to watching the settlement. Just in time:
    nothing is asked for before the confirmation."""
    w = _sent_bank(prefunded=True)
    (start,) = [e for e in pending_effects(w.s) if isinstance(e, fx.StartOffRamp)]
    assert start.prefunded and start.provider == "bitso-sim"
    w.apply(c.InitiateOffRamp(provider_trade_id="trade-1"))
    assert (w.s.status, w.s.provider_trade_id) == (Status.SENT_ON_CHAIN, "trade-1")
    assert not [e for e in pending_effects(w.s) if isinstance(e, fx.StartOffRamp)]
    revert = c.ObserveRevert(tx_hash=w.s.txs[-1].tx_hash, block_number=101)
    refused(revert, Result.offramp_already_initiated, w.s)
    w.apply(
        c.ObserveConfirmation(
            tx_hash=w.s.txs[-1].tx_hash, block_number=100, block_hash=block_hash(100),
            confirmations=limits.confirmations_required,
        )
    )  # fmt: skip
    assert w.s.status is Status.CONFIRMED
    assert [type(e) for e in pending_effects(w.s)] == [fx.WatchTransaction, fx.WatchSettlement]

    jit = _sent_bank(prefunded=False)
    assert not [e for e in pending_effects(jit.s) if isinstance(e, fx.StartOffRamp)]
    refused(c.InitiateOffRamp(provider_trade_id="t"), Result.command_invalid_for_status, jit.s)
    reroute = c.RerouteOffRamp(provider="rampa-sim", previous="bitso-sim", reason="on hold")
    refused(reroute, Result.command_invalid_for_status, jit.s)
    early = _sent_bank(prefunded=True)
    early.apply(reroute)
    assert (early.s.status, early.s.rerouted_to) == (Status.SENT_ON_CHAIN, "rampa-sim")
