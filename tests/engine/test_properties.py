"""Random command sequences keep every invariant (hypothesis; failures print a reproduction blob).

Several transfers of one client, on both routes, receive random commands, valid and invalid, at
random times, in any order. The test plays the store's part: it refuses an append that would take
a client balance below zero (and then fails the transfer with insufficient_funds, as an actor
would), and posts accepted entries to an in-memory ledger. After every step:
  - decide never raises, and refusals carry no events;
  - every event is a legal move (evolve asserts it) and its entries balance per currency;
  - every currency sums to zero over all accounts; no client balance is negative;
  - each transfer holds exactly what its status says, so nothing once it has ended;
  - value leaves the treasury at most once per transfer, net of reversals.
"""

from __future__ import annotations

import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from engine import commands as c
from engine import events as ev
from engine import invariants, ledger
from engine.funding import decide_deposit
from engine.ids import format_id
from engine.results import Result
from engine.states import TERMINAL, Route
from engine.transfer import TransferState, decide, evolve_all, held_amount
from tests.builders import T0, create_command
from tests.random_commands import TIME_STEPS, DataChooser, next_command


class Books:
    """An in-memory ledger playing the store's part: it refuses negative client balances."""

    def __init__(self) -> None:
        self.balances: dict[tuple[str, str], int] = {}
        self.by_transfer: dict[str, list[ledger.Entry]] = {}

    def would_go_negative(self, entries: ledger.Entries) -> bool:
        after = dict(self.balances)
        for e in entries:
            after[(e.account, e.currency)] = (
                after.get((e.account, e.currency), 0) + e.debit - e.credit
            )
        return bool(invariants.negative_accounts(after))

    def post(self, transfer_id: str | None, entries: ledger.Entries) -> None:
        assert invariants.entries_problem(entries) is None
        for e in entries:
            key = (e.account, e.currency)
            self.balances[key] = self.balances.get(key, 0) + e.debit - e.credit
        if transfer_id:
            self.by_transfer.setdefault(transfer_id, []).extend(entries)


@given(
    st.data(),
    st.lists(
        st.tuples(st.sampled_from(list(Route)), st.integers(1, 400), st.integers(0, 2)),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 2_000),
)
def test_random_command_sequences_keep_every_invariant(
    data: st.DataObject, specs: list[tuple[Route, int, int]], funds: int
) -> None:
    books = Books()
    deposit = decide_deposit(
        c.CreditDeposit(
            deposit_id=format_id("dp", 1, bytes(10)),
            client_id="acme",
            currency="USD",
            amount=f"{funds}.00",
            bank="bank-sim",
            bank_reference="D1",
        ),
        T0,
    )
    if funds:
        assert isinstance(deposit, ev.DepositCredited)
        books.post(None, deposit.entries)
    now = T0
    states: dict[int, TransferState] = {}
    for n, (route, dollars, approvals) in enumerate(specs):
        decision = decide(
            None, create_command(n, route=route, amount=f"{dollars}.00", approvals=approvals), now
        )
        assert decision.result is Result.ok
        states[n] = evolve_all(None, decision.events)
        assert decision.state == states[n]

    draw = DataChooser(data)
    for _ in range(data.draw(st.integers(1, 60), label="steps")):
        now += draw.pick(TIME_STEPS)
        n = draw.pick(sorted(states))
        state = states[n]
        decision = decide(state, next_command(draw, state, now), now)
        if decision.result is not Result.ok:
            assert decision.events == () and decision.effects == () and decision.state is None
            continue
        if not decision.events:
            assert decision.state is None
            continue
        entries = tuple(e for event in decision.events for e in ev.entries_of(event))
        if books.would_go_negative(entries):
            # Only a hold may meet a short balance: anything else going negative is a bug.
            assert [type(e) for e in decision.events] == [ev.FundsLocked], decision.events
            # The store refuses the append; the actor records the failure instead.
            failed = decide(state, c.FailTransfer(code="insufficient_funds"), now)
            assert failed.result is Result.ok, failed
            decision = failed
            entries = tuple(e for event in failed.events for e in ev.entries_of(event))
        after = evolve_all(state, decision.events)
        # The actor holds the decision's state once its events are durable, evolving nothing.
        assert decision.state == after
        assert after.version == state.version + len(decision.events)
        books.post(state.transfer_id, entries)
        states[n] = after
        hypothesis.event(f"reached {after.status.value}")

        assert invariants.currency_totals(books.balances) == []
        assert invariants.negative_accounts(books.balances) == []
        held = invariants.held_by_transfer(books.by_transfer)
        expected = {s.transfer_id: held_amount(s) for s in states.values()}
        assert invariants.held_matches_state(held, expected) == []
        terminal = [s.transfer_id for s in states.values() if s.status in TERMINAL]
        assert invariants.held_at_terminal(held, terminal) == []
        for transfer_id, posted in books.by_transfer.items():
            treasury_out = sum(
                e.credit - e.debit
                for e in posted
                if ledger.account_kind(e.account) is ledger.AccountKind.TREASURY
            )
            state_now = next(s for s in states.values() if s.transfer_id == transfer_id)
            assert state_now.quote is None or 0 <= treasury_out <= state_now.quote.rail_amount
