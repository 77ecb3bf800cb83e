"""Rebalancing moves (engine.rebalance), pure:

- a move is paid from one of our treasury wallets to a provider in the address book, or withdrawn
  from a provider in the book to our wallet or to another provider's deposit address; a wallet
  we do not hold, a provider without a deposit address, a move from our wallet to itself, a zero
  amount or an empty reason are refused by name, and the destination is fixed when proposed;
- maker-checker: the proposer cannot approve; a rejection needs a reason; an approval needs the
  wallet to hold the amount; a decided move cannot be decided again;
- the payment journaled must be exactly the approved one (wallet, address, asset, amount), a
  replacement must keep the nonce and outbid the fees, and a second submission of the same
  transaction is a no-op;
- it is booked only with its confirmations (Dr provider / Cr wallet, balanced), a reorg reverses
  exactly that booking and sends it back to SUBMITTED, a revert fails it with nothing booked;
- a withdrawal is asked of the provider (its id recorded once), then carried by the transaction
  the provider reports, which is confirmed and booked like ours (Dr our wallet / Cr the
  provider); our own payments' steps do not apply to it;
- while sent and unbooked it widens the balance checks' window: the source lower, the
  destination higher (a withdrawal from when it was asked for).
"""

from __future__ import annotations

from engine import events as ev
from engine import invariants, limits
from engine import rebalance as rb
from engine.chain import Mined, SignedTx
from engine.results import Result

OURS = "0x" + "7e" * 20
BITSO_DEPOSIT = "0x" + "b1" * 20
WALLET = f"treasury:ethereum:{OURS}"
WALLETS = {"ethereum": OURS}
BOOK = {"bitso-sim": {"ethereum": BITSO_DEPOSIT}}
HASH = "0x" + "aa" * 32
BLOCK = "0x" + "bb" * 32


def proposed(amount: int = 5_000, **changes: str) -> ev.RebalanceProposed | Result:
    terms = {"from_account": WALLET, "to_account": "provider:bitso-sim", "reason": "bitso low"}
    terms.update(changes)
    return rb.propose(
        "rb_1", currency="USDC", amount=amount, by="alice", now=10, wallets=WALLETS,
        address_book=BOOK, **terms,
    )  # fmt: skip


def a_move() -> rb.Rebalance:
    event = proposed()
    assert isinstance(event, ev.RebalanceProposed)
    return rb.evolve(None, event)


def approved() -> rb.Rebalance:
    decided = rb.decide(a_move(), "bob", True, "", 20, available=5_000)
    assert isinstance(decided, ev.RebalanceDecided)
    return rb.evolve(a_move(), decided)


def tx(*, nonce: int = 3, fee: int = 100, tip: int = 10, **changes: object) -> SignedTx:
    fields: dict[str, object] = {
        "chain": "ethereum", "tx_hash": HASH, "raw": "0x02f8", "nonce": nonce,
        "from_address": OURS, "to_address": BITSO_DEPOSIT, "currency": "USDC", "amount": 5_000,
        "max_fee_per_gas": fee, "max_priority_fee_per_gas": tip,
    }  # fmt: skip
    fields.update(changes)
    return SignedTx(**fields)  # type: ignore[arg-type]


def submitted() -> rb.Rebalance:
    move = approved()
    event = rb.submit(move, tx(), 30)
    assert isinstance(event, ev.RebalanceSubmitted)
    return rb.evolve(move, event)


def confirmed() -> rb.Rebalance:
    move = submitted()
    mined = Mined(tx_hash=HASH, block_number=7, block_hash=BLOCK)
    event = rb.confirm(move, mined, limits.confirmations_required, 40)
    assert isinstance(event, ev.RebalanceConfirmed)
    return rb.evolve(move, event)


def test_a_move_is_paid_from_our_wallet_or_withdrawn_from_a_provider_in_the_book() -> None:
    event = proposed()
    assert isinstance(event, ev.RebalanceProposed) and event.kind == "payment"
    assert (event.chain, event.to_address, event.amount) == ("ethereum", BITSO_DEPOSIT, 5_000)
    back = proposed(from_account="provider:bitso-sim", to_account=WALLET)
    assert isinstance(back, ev.RebalanceProposed) and back.kind == "withdrawal"
    assert (back.to_address, back.to_account) == (OURS, WALLET), "to our own wallet"
    across = rb.propose(
        "rb_2", from_account="provider:bitso-sim", to_account="provider:conduit-sim",
        currency="USDC", amount=5, reason="conduit low", by="alice", now=1, wallets=WALLETS,
        address_book={**BOOK, "conduit-sim": {"ethereum": "0x" + "c0" * 20}},
    )  # fmt: skip
    assert isinstance(across, ev.RebalanceProposed) and across.kind == "withdrawal"
    assert across.to_address == "0x" + "c0" * 20, "to the other provider's deposit address"
    unsupported = Result.rebalance_route_unsupported
    unknown = Result.rebalance_account_unknown
    assert proposed(to_account=WALLET) is unsupported, "wallet to itself"
    assert proposed(to_account="client:acme:available") is unsupported
    assert proposed(from_account="provider:conduit-sim") is unknown, "conduit not in the book"
    assert proposed(from_account="treasury:ethereum:0x" + "11" * 20) is unknown
    assert proposed(from_account=f"treasury:tron:{OURS}") is unknown
    assert proposed(to_account="provider:rampa-sim") is unknown, "not in the address book"
    assert proposed(amount=0) is Result.amount_must_be_positive
    assert proposed(reason="  ") is Result.command_malformed


def test_maker_checker_and_funds_decide_a_move_once() -> None:
    move = a_move()
    assert rb.decide(move, "alice", True, "", 20, 5_000) is Result.maker_cannot_approve
    assert rb.decide(move, "bob", False, "", 20, 5_000) is Result.command_malformed
    assert rb.decide(move, "bob", True, "", 20, 4_999) is Result.insufficient_funds
    rejected = rb.decide(move, "bob", False, "wait for month end", 20, 0)
    assert isinstance(rejected, ev.RebalanceDecided)
    after = rb.evolve(move, rejected)
    assert after.state is rb.State.REJECTED and after.state in rb.ENDED
    assert rb.decide(after, "carol", True, "", 21, 5_000) is Result.rebalance_not_pending
    move = approved()
    assert (move.state, move.decided_by) == (rb.State.APPROVED, "bob")
    assert rb.decide(move, "carol", True, "", 21, 5_000) is Result.rebalance_not_pending


def test_only_the_approved_payment_is_journaled() -> None:
    move = approved()
    assert rb.submit(a_move(), tx(), 30) is Result.command_invalid_for_status
    for wrong in (
        tx(amount=5_001),
        tx(to_address="0x" + "c3" * 20),
        tx(from_address="0x" + "11" * 20),
        tx(currency="USDT"),
        tx(chain="polygon"),
    ):
        assert rb.submit(move, wrong, 30) is Result.transaction_mismatch, wrong
    move = submitted()
    assert move.state is rb.State.SUBMITTED and rb.submit(move, tx(), 31) is None


def test_a_replacement_keeps_the_nonce_and_outbids() -> None:
    move = submitted()
    other = "0x" + "cc" * 32
    assert rb.replace(move, tx(tx_hash=other, fee=105, tip=11), 50) is Result.transaction_mismatch
    assert rb.replace(move, tx(tx_hash=other, nonce=4, fee=120, tip=12), 50) is (
        Result.transaction_mismatch
    )
    event = rb.replace(move, tx(tx_hash=other, fee=120, tip=12), 50)
    assert isinstance(event, ev.RebalanceReplaced) and event.replaces == HASH
    assert rb.tx_hashes(rb.evolve(move, event)) == (HASH, other)


def test_booked_at_its_confirmations_and_a_reorg_reverses_exactly_that() -> None:
    move = submitted()
    mined = Mined(tx_hash=HASH, block_number=7, block_hash=BLOCK)
    assert rb.confirm(move, mined, limits.confirmations_required - 1, 40) is None
    unknown = Mined(tx_hash="0x" + "dd" * 32, block_number=7, block_hash=BLOCK)
    assert rb.confirm(move, unknown, 99, 40) is Result.transaction_unknown
    move = confirmed()
    assert move.state is rb.State.CONFIRMED
    booked = rb.entries(move)
    assert invariants.entries_problem(booked) is None
    assert {(e.account, e.debit, e.credit) for e in booked} == {
        ("provider:bitso-sim", 5_000, 0),
        (WALLET, 0, 5_000),
    }
    reorged = rb.reorg(move, HASH, BLOCK, 50)
    assert isinstance(reorged, ev.RebalanceReorged)
    assert {(e.account, e.debit, e.credit) for e in reorged.entries} == {
        ("provider:bitso-sim", 0, 5_000),
        (WALLET, 5_000, 0),
    }
    back = rb.evolve(move, reorged)
    assert back.state is rb.State.SUBMITTED and back.mined is None
    assert rb.reorg(back, HASH, BLOCK, 51) is None, "already back"


def test_a_revert_fails_the_move_with_nothing_booked() -> None:
    move = submitted()
    assert rb.fail(move, "reverted", 60, tx_hash="0x" + "dd" * 32) is None, "not its payment"
    failed = rb.fail(move, "reverted", 60, tx_hash=HASH)
    assert isinstance(failed, ev.RebalanceFailed) and not ev.entries_of(failed)
    assert rb.evolve(move, failed).state is rb.State.FAILED
    assert rb.fail(approved(), "custody refused", 60) is not None, "refused before signing"
    assert rb.fail(move, "custody refused", 60) is None, "signed: only the chain can fail it"


def test_a_move_paid_and_not_booked_widens_the_balance_window() -> None:
    moves = [submitted(), confirmed(), approved()]
    assert rb.in_flight(WALLET, "USDC", moves) == (-5_000, 0)
    assert rb.in_flight("provider:bitso-sim", "USDC", moves) == (0, 5_000)
    assert rb.in_flight("provider:bitso-sim", "USDT", moves) == (0, 0)


def test_a_withdrawal_is_requested_then_sent_by_the_provider_then_booked() -> None:
    event = proposed(from_account="provider:bitso-sim", to_account=WALLET)
    assert isinstance(event, ev.RebalanceProposed)
    move = rb.evolve(None, event)
    decided = rb.decide(move, "bob", True, "", 20, available=5_000)
    assert isinstance(decided, ev.RebalanceDecided)
    move = rb.evolve(move, decided)
    assert rb.submit(move, tx(), 21) is Result.command_invalid_for_status, "not ours to sign"
    assert rb.sent(move, HASH, 21) is Result.command_invalid_for_status, "not requested yet"
    asked = rb.requested(move, "WD-1", 22)
    assert isinstance(asked, ev.RebalanceRequested)
    move = rb.evolve(move, asked)
    assert move.state is rb.State.REQUESTED and rb.requested(move, "WD-1", 23) is None
    assert rb.in_flight("provider:bitso-sim", "USDC", [move]) == (-5_000, 0)
    assert rb.sent(move, "0x12", 24) is Result.command_malformed
    went = rb.sent(move, HASH, 24)
    assert isinstance(went, ev.RebalanceSent)
    move = rb.evolve(move, went)
    assert (move.state, rb.tx_hashes(move)) == (rb.State.SUBMITTED, (HASH,))
    mined = Mined(tx_hash=HASH, block_number=7, block_hash=BLOCK)
    done = rb.confirm(move, mined, limits.confirmations_required, 30)
    assert isinstance(done, ev.RebalanceConfirmed)
    assert {(e.account, e.debit, e.credit) for e in done.entries} == {
        (WALLET, 5_000, 0),
        ("provider:bitso-sim", 0, 5_000),
    }
    refused = rb.evolve(rb.evolve(rb.evolve(None, event), decided), asked)
    failed = rb.fail(refused, "the provider refused", 25)
    assert failed is not None and rb.evolve(refused, failed).state is rb.State.FAILED
