"""Simulated quote providers, an off-ramp provider and a bank, with latency and faults.

- `SimQuotes` prices each corridor from a rate that drifts, with a spread and a fee, and a TTL.
- `SimOffRamp` (a Mexican exchange, "bitso-sim") takes stablecoin at its deposit address and pays
  MXN over SPEI through the bank. Payouts are idempotent by our transfer id. It pays only after it
  sees the deposit confirmed on the chain; a rejected beneficiary makes it send the stablecoin back
  to the treasury on-chain and report RETURNED. It reports by webhook (lost, duplicated, delayed
  and reordered by the fault plan) and answers status polls.
- `SimBank` books SPEI credits (visible after a settlement delay, the receiving bank's record that
  the engine checks as the second witness) and client deposits (announced by webhook, which may be
  lost, and listed on the statement, which is not).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable

import msgspec
from anyio.abc import TaskGroup

from engine import limits, money, quotes
from engine.chain import SignedTx
from engine.destinations import BankDestination
from engine.funding import deposit_id_for
from engine.policy import corridor_id
from engine.ports import Ids
from engine.provider_reports import ReportLine
from engine.quotes import Quote
from engine.rails import (
    BankCredit,
    PayoutRequest,
    PayoutState,
    PayoutStatus,
    QuoteRequest,
    RailError,
    SignRequest,
    TxPresence,
)
from engine.results import Result
from sim.chain import SimChain
from sim.custody import key_for, sign_token_transfer
from sim.faults import FaultLog

QUOTE_TTL_US = 30 * 1_000_000
# (source, target) -> (provider, mid rate, fee in basis points)
CORRIDORS = {
    ("USD", "USDC"): ("circle-sim", 100_000_000, 10),
    ("EUR", "EURC"): ("circle-sim", 100_000_000, 10),
    ("USD", "MXN"): ("bitso-sim", 1_725_000_000, 50),
}
OFFRAMP = "bitso-sim"
BANK = "bank-sim"
SPEI = "spei-sim"

Webhook = Callable[[bytes], Awaitable[object]]


class SimQuotes:
    # How many times faster than real time the world moves (`serve --sim-speed`).
    speed: float = 1.0

    def __init__(
        self,
        rng: random.Random,
        faults: FaultLog,
        ids: Ids,
        now: Callable[[], int],
        offramp_address: str,
    ) -> None:
        self.rng = rng
        self.faults = faults
        self.ids = ids
        self.now = now
        self.offramp_address = offramp_address
        self.drift = {pair: 0 for pair in CORRIDORS}
        # A quote takes between these many seconds to come back.
        self.latency_s = (0.05, 0.3)

    def corridors(self) -> frozenset[str]:
        return frozenset(corridor_id(source, target) for source, target in CORRIDORS)

    async def quote(self, request: QuoteRequest) -> Quote:
        await asyncio.sleep(self.rng.uniform(*self.latency_s) / self.speed)
        pair = (request.source_currency, request.target_currency)
        if pair not in CORRIDORS:
            raise RailError(Result.currency_pair_unsupported, str(pair), transient=False)
        provider, mid, fee_bps = CORRIDORS[pair]
        if self.faults.fire("quote_outage"):
            raise RailError(Result.provider_unavailable, f"{provider} is down", transient=True)
        rate = mid
        if mid != 100_000_000:  # Stablecoin at par never moves; FX drifts and has a spread.
            self.drift[pair] += self.rng.randint(-200_000, 200_000)
            rate = mid + self.drift[pair] - mid * 30 // 10_000
        quote = quotes.priced_quote(
            quote_id=self.ids.new("qt"),
            provider=provider,
            source_currency=request.source_currency,
            target_currency=request.target_currency,
            amount=request.amount,
            fee=request.amount * fee_bps // 10_000,
            rate=f"{rate // 10**8}.{rate % 10**8:08d}",
            payout_address=self.offramp_address if request.bank else None,
            issued_at=self.now(),
            ttl_us=QUOTE_TTL_US,
        )
        if isinstance(quote, Result):
            raise RailError(quote, "could not price", transient=False)
        return quote


@dataclasses.dataclass(slots=True)
class _Payout:
    request: PayoutRequest
    trade_id: str
    state: PayoutState = PayoutState.PENDING
    bank_reference: str | None = None
    reason: str | None = None
    # The stablecoin going back to the treasury, signed before it is first sent.
    return_tx: SignedTx | None = None
    # What was paid: the amount, the fee the provider kept and the rate it filled at.
    paid: int | None = None
    fee: int | None = None
    rate: str | None = None


class SimBank:
    # How many times faster than real time the world moves (`serve --sim-speed`).
    speed: float = 1.0

    def __init__(self, rng: random.Random, faults: FaultLog, now: Callable[[], int]) -> None:
        self.rng = rng
        self.faults = faults
        self.now = now
        self.credits: dict[str, tuple[int, BankCredit]] = {}  # reference -> (visible at, credit)
        self.statement: list[
            tuple[int, str, str, int]
        ] = []  # (booked at, reference, client, amount)
        self._n = 0

    @property
    def generation(self) -> int:
        """Moves on every change anyone outside could observe (every change books a number)."""
        return self._n

    def pay(self, *, clabe: str, currency: str, amount: int, late: bool = False) -> str:
        """`late`: the credit shows only hours later (past the reconciliation's due time)."""
        self._n += 1
        reference = f"SPEI{self._n:08d}"
        if late:
            delay_s = self.rng.uniform(4_000, 5_400)
        elif self.faults.fire("bank_delayed"):
            delay_s = self.rng.uniform(30, 300)
        else:
            delay_s = self.rng.uniform(1, 10)
        visible = self.now() + int(delay_s * 1_000_000 / self.speed)
        self.credits[reference] = (
            visible,
            BankCredit(
                bank=SPEI, bank_reference=reference, currency=currency, amount=amount, account=clabe
            ),
        )
        return reference

    async def credit(self, bank_reference: str) -> BankCredit | None:
        await asyncio.sleep(0.05 / self.speed)
        found = self.credits.get(bank_reference)
        if found is None or found[0] > self.now():
            return None
        return found[1]

    async def closing_balance(self, bank: str, currency: str) -> int:
        await asyncio.sleep(0.05 / self.speed)
        if bank != BANK:
            raise RailError(Result.provider_unavailable, f"no account at {bank}", transient=False)
        return self.closing(currency)

    def closing(self, currency: str) -> int:
        """Our account's balance as the statement so far closes it (every line is a credit in
        USD)."""
        now = self.now()
        if currency != "USD":
            return 0
        return sum(amount for booked, _, _, amount in self.statement if booked <= now)

    def book_deposit(self, client_id: str, amount: int) -> tuple[str, str, int]:
        """A client's wire arrives: (deposit id, bank reference, booked at). Now and then a wire
        from a payer nobody can name lands too (a statement line no ledger entry explains)."""
        self._n += 1
        reference = f"DEP{self._n:08d}"
        booked = self.now()
        self.statement.append((booked, reference, client_id, amount))
        if self.faults.fire("statement_unknown_line"):
            self._n += 1
            self.statement.append((booked, f"WIRE{self._n:08d}", "", self.rng.randint(100, 10**6)))
        return deposit_id_for(BANK, reference, booked), reference, booked


class SimOffRamp:
    # How many times faster than real time the world moves (`serve --sim-speed`).
    speed: float = 1.0

    def __init__(
        self,
        seed: int,
        rng: random.Random,
        faults: FaultLog,
        chain: SimChain,
        bank: SimBank,
        treasury: str,
    ) -> None:
        self.seed = seed
        self.rng = rng
        self.faults = faults
        self.chain = chain
        self.bank = bank
        self.treasury = treasury
        self.account = key_for(seed, "offramp")
        self.address = self.account.address.lower()
        self.payouts: dict[str, _Payout] = {}  # transfer id -> payout
        self.by_trade: dict[str, _Payout] = {}
        self.webhook: Webhook | None = None
        self.tasks: TaskGroup | None = None
        self._n = 0
        self._nonce = 0
        self.generation = 0
        # Trades already in a trade report.
        self.reported: set[str] = set()

    def __getstate__(self) -> dict[str, object]:
        """What outlives the process (sim.durable): the payouts and the books, not the key
        (derived again from the seed) nor the tasks and webhook of the process that ran it."""
        state = dict(self.__dict__)
        state.update(account=None, webhook=None, tasks=None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("reported", set())  # a world saved before trade reports
        self.__dict__.update(state)
        self.account = key_for(self.seed, "offramp")

    def resume(self) -> None:
        """After a restart: take up again every payout that was still in progress."""
        assert self.tasks is not None
        for payout in self.payouts.values():
            if payout.state is PayoutState.PENDING:
                self.tasks.start_soon(self._work, payout)

    async def start_payout(self, request: PayoutRequest) -> str:
        await asyncio.sleep(self.rng.uniform(0.05, 0.3) / self.speed)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{OFFRAMP} is down", transient=True)
        found = self.payouts.get(request.transfer_id)
        if found is None:
            self._n += 1
            found = _Payout(request=request, trade_id=f"BTS{self._n:08d}")
            self.generation += 1
            self.payouts[request.transfer_id] = found
            self.by_trade[found.trade_id] = found
            assert self.tasks is not None
            self.tasks.start_soon(self._work, found)
        return found.trade_id

    async def payout_status(self, provider: str, provider_trade_id: str) -> PayoutStatus:
        await asyncio.sleep(self.rng.uniform(0.05, 0.2) / self.speed)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{OFFRAMP} is down", transient=True)
        found = self.by_trade.get(provider_trade_id)
        if found is None:
            raise RailError(Result.transaction_unknown, provider_trade_id, transient=False)
        return self._status(found)

    async def prefunded(self, provider: str, currency: str) -> int:
        await asyncio.sleep(self.rng.uniform(0.05, 0.2) / self.speed)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{OFFRAMP} is down", transient=True)
        return self.holding(currency)

    def holding(self, currency: str) -> int:
        """The stablecoin we sent that the provider holds: deposits on chain for payouts neither
        paid nor sent back yet."""
        mined = self.chain.mined_at
        held = 0
        for payout in self.payouts.values():
            request = payout.request
            sent_back = payout.return_tx is not None and payout.return_tx.tx_hash in mined
            if (
                request.rail_currency == currency
                and payout.state is PayoutState.PENDING
                and request.tx_hash in mined
                and not sent_back
            ):
                held += request.rail_amount
        return held

    def trade_report(self) -> list[ReportLine]:
        """The provider's report of the trades settled (paid or returned) since its last one.
        Now and then a paid row states a fee its webhook and status API did not
        (`provider_report_differs`)."""
        rows: list[ReportLine] = []
        for payout in self.payouts.values():
            if payout.state is PayoutState.PENDING or payout.trade_id in self.reported:
                continue
            self.reported.add(payout.trade_id)
            status = self._status(payout)
            if status.state is PayoutState.PAID and self.faults.fire("provider_report_differs"):
                extra = max(1, status.amount // 100)
                status = msgspec.structs.replace(
                    status, amount=status.amount - extra, fee=(status.fee or 0) + extra
                )
            rows.append(ReportLine.of(status, self.bank.now()))
        self.generation += bool(rows)
        return rows

    def _status(self, payout: _Payout) -> PayoutStatus:
        return PayoutStatus(
            provider=OFFRAMP,
            provider_trade_id=payout.trade_id,
            state=payout.state,
            currency=payout.request.target_currency,
            amount=payout.paid if payout.paid is not None else payout.request.target_amount,
            bank_reference=payout.bank_reference,
            reason=payout.reason,
            fee=payout.fee,
            rate=payout.rate,
            return_tx_hash=(
                payout.return_tx.tx_hash
                if payout.return_tx is not None and payout.state is PayoutState.RETURNED
                else None
            ),
        )

    async def _work(self, payout: _Payout) -> None:
        """Wait for the deposit to be deep enough, then pay out (or send it back). Each decision
        is made once: a payout resumed after a restart that already signed its return only
        finishes sending it."""
        request = payout.request
        if payout.return_tx is None:
            while True:
                await asyncio.sleep(2 / self.speed)
                receipt = await self.chain.receipt(self.chain.chain, request.tx_hash)
                if receipt is not None and receipt.confirmations >= limits.confirmations_required:
                    break
            await asyncio.sleep(self.rng.uniform(1, 20) / self.speed)
            if self.faults.fire("payout_rejected"):
                payout.return_tx = self._sign_return(request)
            else:
                destination = request.destination
                assert isinstance(destination, BankDestination)
                self._fill(payout)
                assert payout.paid is not None
                payout.bank_reference = self.bank.pay(
                    clabe=destination.clabe,
                    currency=request.target_currency,
                    amount=payout.paid,
                    late=self.faults.fire("statement_late"),
                )
                payout.state = PayoutState.PAID
            self.generation += 1
        if payout.return_tx is not None:
            await self._send_back(payout.return_tx)
            payout.state = PayoutState.RETURNED
            payout.reason = "beneficiary account rejected the credit"
            self.generation += 1
        await self._announce(payout)

    def _fill(self, payout: _Payout) -> None:
        """The trade as filled: at the quoted rate with no fee of the provider's own, unless a
        fault makes it keep a fee (1%) or fill 2% off the quote (beyond any slippage
        tolerance); the beneficiary gets what the fill leaves."""
        request = payout.request
        payout.paid, payout.fee, payout.rate = request.target_amount, 0, request.rate or None
        if self.faults.fire("provider_fee"):
            payout.fee = request.target_amount // 100
            payout.paid = request.target_amount - payout.fee
        elif self.faults.fire("fx_slippage") and request.rate:
            rate = money.parse_rate(request.rate)
            assert isinstance(rate, money.Rate)
            payout.rate = money.format_rate(money.Rate(rate.units * 98 // 100))
            payout.paid = request.target_amount * 98 // 100

    def _sign_return(self, request: PayoutRequest) -> SignedTx:
        tx = sign_token_transfer(
            self.account,
            SignRequest(
                chain=self.chain.chain,
                to_address=self.treasury,
                currency=request.rail_currency,
                amount=request.rail_amount,
                nonce=self._nonce,
                max_fee_per_gas=10**12,
            ),
        )
        self._nonce += 1
        return tx

    async def _send_back(self, tx: SignedTx) -> None:
        while True:
            # The provider's own node may drop it too: it re-sends until the return is final.
            if await self.chain.presence(self.chain.chain, tx.tx_hash) is TxPresence.UNKNOWN:
                self.chain.submit(tx.raw)
            await asyncio.sleep(2 / self.speed)
            receipt = await self.chain.receipt(self.chain.chain, tx.tx_hash)
            if receipt is not None and receipt.confirmations >= limits.finality_blocks:
                return

    async def _announce(self, payout: _Payout) -> None:
        if self.webhook is None or self.faults.fire("webhook_lost"):
            return
        body = msgspec.json.encode(self._status(payout))
        copies = 2 if self.faults.fire("webhook_duplicated") else 1
        assert self.tasks is not None
        for _ in range(copies):
            delay = self.rng.uniform(5, 120) if self.faults.fire("webhook_delayed") else 0.1
            self.tasks.start_soon(self._deliver, body, delay)

    async def _deliver(self, body: bytes, delay_s: float) -> None:
        await asyncio.sleep(delay_s / self.speed)
        assert self.webhook is not None
        await self.webhook(body)
