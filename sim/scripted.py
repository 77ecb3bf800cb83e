"""A scripted world: every effect succeeds at once, deterministically.

It drives transfers through the real engine and the real store (decide -> append -> evolve ->
effect -> outcome as the next command) so the foundation can be walked end to end before the actor
runtime and the fault-injecting simulated rails exist. Quotes come from a fixed price list, the
"custody signer" fabricates a transaction whose hash is the sha256 of its fields, and the chain
confirms every transaction with enough blocks on the first look.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import msgspec

from engine import commands as c
from engine import effects as fx
from engine import events as ev
from engine import limits, money, policy, quotes
from engine.chain import SignedTx
from engine.funding import decide_deposit
from engine.records import Committed, Outcome, Rejected
from engine.results import Result
from engine.transfer import TransferState, check_create, decide, policy_facts
from sim.clock import ManualClock, SeededIds

QUOTE_TTL_US = 30 * 1_000_000
TREASURY_ADDRESS = "0x" + "7e" * 20
OFFRAMP_ADDRESS = "0x" + "0f" * 20

# (source, target) -> (provider, rate, fee in basis points of the amount)
PRICES = {
    ("USD", "USDC"): ("circle-sim", "1.00000000", 10),
    ("EUR", "EURC"): ("circle-sim", "1.00000000", 10),
    ("USD", "MXN"): ("bitso-sim", "17.25000000", 50),
}


class Step(msgspec.Struct, frozen=True, kw_only=True):
    command: str
    result: Result
    status: str | None


Commit = Callable[[str, int, tuple[ev.TransferEvent, ...]], Awaitable[Outcome]]


class ScriptedWorld:
    """`commit` persists a decision's events (normally `Store.append`); the world acts on a
    decision's effects only after it returns Committed."""

    def __init__(
        self, commit: Commit, clock: ManualClock, ids: SeededIds, *, first_nonce: int = 0
    ) -> None:
        """`first_nonce`: the treasury's next nonce (a world continuing where another left)."""
        self.commit = commit
        self.clock = clock
        self.ids = ids
        self._nonce = first_nonce
        self.rules = policy.default_rules(1)
        self.corridors = frozenset(policy.corridor_id(s, t) for s, t in PRICES)

    def quote(self, source: str, target: str, amount: int) -> quotes.Quote:
        provider, rate, fee_bps = PRICES[(source, target)]
        fiat = money.ASSETS[target].kind is money.AssetKind.FIAT
        quote = quotes.priced_quote(
            quote_id=self.ids.new("qt"),
            provider=provider,
            source_currency=source,
            target_currency=target,
            amount=amount,
            fee=amount * fee_bps // 10_000,
            rate=rate,
            payout_address=OFFRAMP_ADDRESS if fiat else None,
            issued_at=self.clock.now_us(),
            ttl_us=QUOTE_TTL_US,
        )
        assert isinstance(quote, quotes.Quote), quote
        return quote

    def sign(self, effect: fx.SignTransaction) -> SignedTx:
        nonce = self._nonce if effect.nonce is None else effect.nonce
        self._nonce += effect.nonce is None
        fields = f"{effect.chain}|{nonce}|{TREASURY_ADDRESS}|{effect.to_address}|{effect.amount}"
        raw = "0x" + fields.encode().hex()
        return SignedTx(
            chain=effect.chain,
            tx_hash="0x" + hashlib.sha256(raw.encode()).hexdigest(),
            raw=raw,
            nonce=nonce,
            from_address=TREASURY_ADDRESS,
            to_address=effect.to_address,
            currency=effect.currency,
            amount=effect.amount,
            max_fee_per_gas=30_000_000_000,
        )

    def answer(self, state: TransferState, effect: fx.Effect) -> c.TransferCommand | None:
        """The world's reply to an effect, as the command that reports it."""
        match effect:
            case fx.RequestQuote():
                return c.QuoteTransfer(
                    quote=self.quote(state.source_currency, state.target_currency, state.amount)
                )
            case fx.ReserveFunds():
                return c.LockFunds()
            case fx.SignTransaction():
                return c.SubmitOnChain(tx=self.sign(effect))
            case fx.WatchTransaction(confirmed=confirmed) if confirmed is not None:
                return None  # Already confirmed; the scripted chain never reorgs.
            case fx.WatchTransaction(tx_hashes=hashes):
                return c.ObserveConfirmation(
                    tx_hash=hashes[-1],
                    block_number=1_000 + self._nonce,
                    block_hash=self.ids.hex(32),
                    confirmations=limits.confirmations_required,
                )
            case fx.StartOffRamp():
                return c.InitiateOffRamp(provider_trade_id=self.ids.new("rq"))
            case fx.WatchSettlement():
                assert state.quote is not None
                return c.MarkFiatSettled(
                    bank_reference=f"SPEI-{self.ids.hex(6)[2:]}", amount=state.quote.target_amount
                )
            case fx.RequestReconciliation():
                evidence = tuple(x for x in (state.txs[-1].tx_hash, state.bank_reference) if x)
                return c.Reconcile(evidence=evidence)
            case fx.BroadcastTransaction():
                return None
        raise AssertionError(f"no script for {effect}")

    async def run(
        self, state: TransferState | None, command: c.TransferCommand, *, stop_after: int = 64
    ) -> tuple[TransferState | None, list[Step]]:
        """Apply `command`, then keep answering effects until none is left (or a command fails)."""
        steps: list[Step] = []
        if isinstance(command, c.CreateTransfer) and check_create(command) is Result.ok:
            facts = policy_facts(command, self.clock.now_us(), None)
            ruled = policy.evaluate(self.rules, facts, self.corridors)
            command = msgspec.structs.replace(command, policy=ruled)
        queue: list[c.TransferCommand] = [command]
        while queue and len(steps) < stop_after:
            cmd = queue.pop(0)
            decision = decide(state, cmd, self.clock.now_us())
            name = c.command_type(cmd)
            if decision.result is not Result.ok:
                steps.append(Step(command=name, result=decision.result, status=_status(state)))
                return state, steps
            if decision.state is None:
                continue
            if state is None:
                assert isinstance(cmd, c.CreateTransfer)
                stream = cmd.transfer_id
            else:
                stream = state.transfer_id
            outcome = await self.commit(stream, state.version if state else 0, decision.events)
            if isinstance(outcome, Rejected):
                steps.append(Step(command=name, result=outcome.result, status=_status(state)))
                if outcome.result is Result.insufficient_funds and state is not None:
                    queue = [c.FailTransfer(code=outcome.result.code, message=outcome.detail)]
                    continue
                return state, steps
            assert isinstance(outcome, Committed)
            state = decision.state
            steps.append(Step(command=name, result=Result.ok, status=_status(state)))
            for effect in decision.effects:
                reply = self.answer(state, effect)
                if reply is not None:
                    queue.append(reply)
        return state, steps


def deposit(
    deposit_id: str, client_id: str, amount: str, now: int, *, currency: str = "USD", n: int = 1
) -> ev.DepositCredited:
    """A simulated bank's credit to a client, as the engine records it."""
    credited = decide_deposit(
        c.CreditDeposit(
            deposit_id=deposit_id,
            client_id=client_id,
            currency=currency,
            amount=amount,
            bank="bank-sim",
            bank_reference=f"DEP-{n:04d}",
        ),
        now,
    )
    assert isinstance(credited, ev.DepositCredited), credited
    return credited


def _status(state: TransferState | None) -> str | None:
    return state.status.value if state else None
