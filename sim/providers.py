"""Simulated quote providers, off-ramps and a bank, with latency and faults.

- `SimQuotes` is a market of five providers (PROFILES) pricing their corridors from a rate that
  drifts, each with its own spread, fees, speed and outages.
- `SimOffRamp` runs the three Mexican off-ramps ("bitso-sim", "conduit-sim", "rampa-sim"), each
  with its own deposit address: it takes stablecoin there and pays MXN over SPEI through the
  bank. Payouts are idempotent by our transfer id. It pays only after it sees the deposit
  confirmed on the chain; a rejected beneficiary makes it send the stablecoin back
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
from eth_account.signers.local import LocalAccount

from engine import limits, money
from engine.chain import SignedTx
from engine.destinations import BankDestination
from engine.funding import deposit_id_for
from engine.policy import corridor_id
from engine.provider_reports import ReportLine
from engine.rails import (
    BankCredit,
    PayoutRequest,
    PayoutState,
    PayoutStatus,
    ProviderQuote,
    QuoteRequest,
    RailError,
    SignRequest,
    TxPresence,
    WithdrawalRequest,
    WithdrawalState,
    WithdrawalStatus,
)
from engine.results import Result
from sim.chain import SimChain
from sim.custody import key_for, sign_token_transfer
from sim.faults import FaultLog

QUOTE_TTL_US = 30 * 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """A simulated pricing provider: what it charges, how fast it answers, whether it pays out
    fiat (an off-ramp with a deposit address)."""

    name: str
    # (source, target) -> (fee in basis points of the amount, flat fee in source minor units)
    fees: dict[tuple[str, str], tuple[int, int]]
    # Below the market's mid rate, in basis points (stablecoin at par has none).
    spread_bps: int
    latency_s: tuple[float, float]
    # The prefix of its own quote and trade ids.
    prefix: str
    offramp: bool = False


# Five providers with different prices, fees and speeds: which one is best depends on the amount
# (flat against proportional fees) and on the moment (each one's rate wanders on its own), and the
# slowest sometimes answers after the pricing desk's deadline.
PROFILES = (
    Profile("circle-sim", {("USD", "USDC"): (10, 0), ("EUR", "EURC"): (10, 0)}, 0, (0.05, 0.3),
            "CRC"),
    Profile("paxos-sim", {("USD", "USDC"): (5, 100)}, 0, (0.1, 0.5), "PXS"),
    Profile("bitso-sim", {("USD", "MXN"): (50, 0)}, 30, (0.05, 0.3), "BTS", offramp=True),
    Profile("conduit-sim", {("USD", "MXN"): (20, 200)}, 45, (0.1, 0.6), "CND", offramp=True),
    Profile("rampa-sim", {("USD", "MXN"): (35, 0)}, 25, (0.3, 2.5), "RMP", offramp=True),
)  # fmt: skip
# The market's mid rate per pair, in 10^-8 (Rate units).
MIDS = {("USD", "USDC"): 100_000_000, ("EUR", "EURC"): 100_000_000, ("USD", "MXN"): 1_725_000_000}
CORRIDORS = frozenset(pair for profile in PROFILES for pair in profile.fees)
OFFRAMPS = frozenset(profile.name for profile in PROFILES if profile.offramp)
BANK = "bank-sim"
SPEI = "spei-sim"

Webhook = Callable[[bytes], Awaitable[object]]


class SimQuotes:
    """The simulated market: the providers of PROFILES over one drifting mid rate per pair.
    Each provider's rate wanders a little on its own too; each has outage episodes (the fault
    `provider_outage`: down for minutes, failing fast or hanging) and single failed calls
    (`quote_outage`)."""

    # How many times faster than real time the world moves (`serve --sim-speed`).
    speed: float = 1.0

    def __init__(
        self,
        rng: random.Random,
        faults: FaultLog,
        now: Callable[[], int],
        deposit_addresses: dict[str, str],
    ) -> None:
        self.rng = rng
        self.faults = faults
        self.now = now
        self.drift = {pair: 0 for pair in MIDS}
        self.providers = tuple(
            SimQuoteProvider(self, profile, random.Random(rng.getrandbits(64)))
            for profile in PROFILES
        )
        self.deposit_addresses = deposit_addresses

    def __setstate__(self, state: dict[str, object]) -> None:
        """A world saved before there were several providers had one quote source: the market
        is built anew from its generator."""
        if "providers" not in state:
            rng = state["rng"]
            assert isinstance(rng, random.Random)
            address = state["offramp_address"]
            assert isinstance(address, str)
            state["drift"] = {pair: 0 for pair in MIDS}
            state["providers"] = ()
            state["deposit_addresses"] = {name: address for name in OFFRAMPS}
            self.__dict__.update(state)
            self.providers = tuple(
                SimQuoteProvider(self, profile, random.Random(rng.getrandbits(64)))
                for profile in PROFILES
            )
            return
        self.__dict__.update(state)

    def answer_at_once(self) -> None:
        for provider in self.providers:
            provider.latency_s = (0.0, 0.0)

    def moved(self, pair: tuple[str, str]) -> int:
        """The pair's market mid rate now (it drifts a little each time it is read)."""
        mid = MIDS[pair]
        if mid == 100_000_000:  # Stablecoin at par never moves.
            return mid
        self.drift[pair] += self.rng.randint(-200_000, 200_000)
        return mid + self.drift[pair]


class SimQuoteProvider:
    def __init__(self, market: SimQuotes, profile: Profile, rng: random.Random) -> None:
        self.market = market
        self.profile = profile
        self._corridors = frozenset(corridor_id(source, target) for source, target in profile.fees)
        self.rng = rng
        self.latency_s = profile.latency_s
        self.own_drift = 0
        self.down_until = 0
        self.hangs = False
        self._n = 0

    @property
    def name(self) -> str:
        return self.profile.name

    def corridors(self) -> frozenset[str]:
        return self._corridors

    async def quote(self, request: QuoteRequest) -> ProviderQuote:
        market = self.market
        await asyncio.sleep(self.rng.uniform(*self.latency_s) / market.speed)
        pair = (request.source_currency, request.target_currency)
        if pair not in self.profile.fees:
            raise RailError(Result.currency_pair_unsupported, str(pair), transient=False)
        now = market.now()
        if now >= self.down_until and market.faults.fire("provider_outage"):
            self.down_until = now + int(self.rng.uniform(30, 300) * 1_000_000 / market.speed)
            self.hangs = self.rng.random() < 0.5
        if now < self.down_until:
            if self.hangs:
                await asyncio.sleep((self.down_until - now) / 1_000_000)
            raise RailError(Result.provider_unavailable, f"{self.name} is down", transient=True)
        if market.faults.fire("quote_outage"):
            raise RailError(Result.provider_unavailable, f"{self.name} erred", transient=True)
        rate = market.moved(pair)
        if self.profile.spread_bps:
            self.own_drift = max(
                -50_000, min(50_000, self.own_drift + self.rng.randint(-5_000, 5_000))
            )
            rate += self.own_drift - rate * self.profile.spread_bps // 10_000
        fee_bps, flat = self.profile.fees[pair]
        fee = min(request.amount * fee_bps // 10_000 + flat, request.amount - 1)
        self._n += 1
        deposit = market.deposit_addresses.get(self.name) if request.bank else None
        formatted = money.format_rate(money.Rate(rate))
        raw = {
            "id": f"{self.profile.prefix}-Q{self._n:08d}",
            "pair": f"{pair[0]}/{pair[1]}",
            "amount": request.amount,
            "rate": formatted,
            "fee": fee,
            "expires_in_s": QUOTE_TTL_US // 1_000_000,
            "deposit_address": deposit,
        }
        return ProviderQuote(
            provider=self.name,
            rate=formatted,
            fee=fee,
            ttl_us=QUOTE_TTL_US,
            provider_quote_id=str(raw["id"]),
            raw=msgspec.json.encode(raw).decode(),
            payout_address=deposit,
        )


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
    # The stablecoin the fill cost us (rail minor units): the rail amount, or more or less
    # when it filled off the quote.
    debited: int | None = None
    # The deposit that funds it: the sender's nonce slot of the transaction named in the
    # request, and the transaction mined in that slot as last seen (a replacement of a payment
    # a reorg took away funds the same payout, as a deposit to the same address would).
    slot: tuple[str, int] | None = None
    deposit: str = ""


@dataclasses.dataclass(slots=True)
class _Withdrawal:
    request: WithdrawalRequest
    withdrawal_id: str
    tx: SignedTx | None = None
    refused: str | None = None


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


_PREFIX = {profile.name: profile.prefix for profile in PROFILES}


def _offramp_accounts(seed: int) -> dict[str, LocalAccount]:
    """Each off-ramp's own deposit key (bitso-sim keeps the key it had as the only one)."""
    return {
        name: key_for(seed, "offramp" if name == "bitso-sim" else f"offramp:{name}")
        for name in sorted(OFFRAMPS)
    }


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
        self.accounts = _offramp_accounts(seed)
        self.addresses = {name: a.address.lower() for name, a in self.accounts.items()}
        self.payouts: dict[tuple[str, str], _Payout] = {}  # (provider, transfer id) -> payout
        self.by_trade: dict[str, _Payout] = {}
        self.webhook: Webhook | None = None
        self.tasks: TaskGroup | None = None
        self._n = 0
        self._nonces = dict.fromkeys(OFFRAMPS, 0)
        # Stablecoin each provider paid out (converted and gone from its address's books).
        self.spent = dict.fromkeys(OFFRAMPS, 0)
        self.generation = 0
        # Trades already in a trade report.
        self.reported: set[str] = set()
        # Rebalancing withdrawals, by the move's id (the idempotency key).
        self.withdrawals: dict[str, _Withdrawal] = {}

    def __getstate__(self) -> dict[str, object]:
        """What outlives the process (sim.durable): the payouts and the books, not the key
        (derived again from the seed) nor the tasks and webhook of the process that ran it."""
        state = dict(self.__dict__)
        state.update(accounts=None, webhook=None, tasks=None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("reported", set())  # a world saved before trade reports
        state.setdefault("withdrawals", {})  # a world saved before withdrawals
        if "_nonce" in state:  # a world saved when bitso-sim was the only off-ramp
            state["_nonces"] = {**dict.fromkeys(OFFRAMPS, 0), "bitso-sim": state.pop("_nonce")}
            state.pop("account", None)
            state.pop("address", None)
        if "spent" not in state:  # saved before prefunding: paid payouts spent their deposits
            payouts = state["payouts"]
            assert isinstance(payouts, dict)
            state["payouts"] = {(p.request.provider, tid): p for tid, p in payouts.items()}
            spent = dict.fromkeys(OFFRAMPS, 0)
            for p in payouts.values():
                if p.state is PayoutState.PAID:
                    spent[p.request.provider] += p.request.rail_amount
            state["spent"] = spent
        self.__dict__.update(state)
        self.accounts = _offramp_accounts(self.seed)
        self.addresses = {name: a.address.lower() for name, a in self.accounts.items()}

    def resume(self) -> None:
        """After a restart: take up again every payout that was still in progress, and every
        withdrawal signed and not yet final."""
        assert self.tasks is not None
        for payout in self.payouts.values():
            if payout.state is PayoutState.PENDING:
                self.tasks.start_soon(self._work, payout)
        for withdrawal in self.withdrawals.values():
            if withdrawal.tx is not None:
                self.tasks.start_soon(self._send_back, withdrawal.tx)

    async def _answering(self, provider: str) -> None:
        """The provider's API taking a request: a moment, an unknown provider refused for good,
        an outage (`offramp_outage`) a passing error."""
        await asyncio.sleep(self.rng.uniform(0.05, 0.3) / self.speed)
        if provider not in self.accounts:
            raise RailError(Result.provider_unavailable, provider, transient=False)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{provider} is down", transient=True)

    async def withdraw(self, request: WithdrawalRequest) -> str:
        """Send our stablecoin from the provider's address where the move says: signed once
        (by the move's id), then sent until final. Refused for good when the provider holds
        less of ours than the amount."""
        provider = request.provider
        await self._answering(provider)
        found = self.withdrawals.get(request.rebalance_id)
        if found is not None:
            return found.withdrawal_id
        self._n += 1
        found = _Withdrawal(request=request, withdrawal_id=f"WD{self._n:08d}")
        free = self.holding(provider, request.currency) - self._reserved(provider)
        if free < request.amount:
            found.refused = f"holds {free} of our {request.currency}, not {request.amount}"
        else:
            found.tx = sign_token_transfer(
                self.accounts[provider],
                SignRequest(
                    chain=self.chain.chain, to_address=request.to_address,
                    currency=request.currency, amount=request.amount,
                    nonce=self._nonces[provider], max_fee_per_gas=10**12,
                ),
            )  # fmt: skip
            self._nonces[provider] += 1
            assert self.tasks is not None
            self.tasks.start_soon(self._send_back, found.tx)
        self.withdrawals[request.rebalance_id] = found
        self.generation += 1
        return found.withdrawal_id

    async def withdrawal_status(self, provider: str, withdrawal_id: str) -> WithdrawalStatus:
        await asyncio.sleep(self.rng.uniform(0.05, 0.2) / self.speed)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{provider} is down", transient=True)
        found = next(
            (w for w in self.withdrawals.values() if w.withdrawal_id == withdrawal_id), None
        )
        if found is None or found.request.provider != provider:
            raise RailError(Result.transaction_unknown, withdrawal_id, transient=False)
        if found.refused is not None:
            return WithdrawalStatus(
                provider=provider, withdrawal_id=withdrawal_id, state=WithdrawalState.REFUSED,
                reason=found.refused,
            )  # fmt: skip
        assert found.tx is not None
        return WithdrawalStatus(
            provider=provider, withdrawal_id=withdrawal_id, state=WithdrawalState.SENT,
            tx_hash=found.tx.tx_hash,
        )  # fmt: skip

    async def start_payout(self, request: PayoutRequest) -> str:
        provider = request.provider
        await self._answering(provider)
        found = self.payouts.get((provider, request.transfer_id))
        if found is None:
            if not request.prefunded and self.faults.fire("payout_refused"):
                raise RailError(
                    Result.provider_unavailable,
                    f"{provider} refused the payout: compliance hold on the corridor",
                    transient=False,
                )
            free = self.holding(provider, request.rail_currency) - self._reserved(provider)
            if request.prefunded and free < request.rail_amount:
                raise RailError(
                    Result.provider_unavailable,
                    f"{provider} holds {free} of our {request.rail_currency}, not"
                    f" {request.rail_amount}",
                    transient=False,
                )
            self._n += 1
            found = _Payout(
                request=request,
                trade_id=f"{_PREFIX[provider]}{self._n:08d}",
                slot=self.chain.slot_of(request.tx_hash),
                deposit=request.tx_hash,
            )
            self.generation += 1
            self.payouts[(provider, request.transfer_id)] = found
            self.by_trade[found.trade_id] = found
            assert self.tasks is not None
            self.tasks.start_soon(self._work, found)
        return found.trade_id

    async def payout_status(self, provider: str, provider_trade_id: str) -> PayoutStatus:
        await asyncio.sleep(self.rng.uniform(0.05, 0.2) / self.speed)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{provider} is down", transient=True)
        found = self.by_trade.get(provider_trade_id)
        if found is None or found.request.provider != provider:
            raise RailError(Result.transaction_unknown, provider_trade_id, transient=False)
        return self._status(found)

    async def prefunded(self, provider: str, currency: str) -> int:
        await asyncio.sleep(self.rng.uniform(0.05, 0.2) / self.speed)
        if self.faults.fire("offramp_outage"):
            raise RailError(Result.provider_unavailable, f"{provider} is down", transient=True)
        return self.holding(provider, currency)

    def holding(self, provider: str, currency: str) -> int:
        """The stablecoin `provider` holds for us: what its deposit address holds on chain (its
        prefunding and our deposits, less what it sent back), less what it paid out."""
        held = self.chain.balance(currency, self.addresses[provider])
        return held - (self.spent.get(provider, 0) if currency == "USDC" else 0)

    def _reserved(self, provider: str) -> int:
        """Prefunding promised to payouts rerouted to `provider` and not paid yet."""
        return sum(
            p.request.rail_amount
            for (name, _), p in self.payouts.items()
            if name == provider and p.request.prefunded and p.state is PayoutState.PENDING
        )

    def _deposit(self, payout: _Payout) -> str:
        """The transaction that deposits the payout's stablecoin: the one named in the request,
        or the one mined in its nonce slot since (a payout saved before slots: the named one)."""
        deposit = getattr(payout, "deposit", "") or payout.request.tx_hash
        slot = getattr(payout, "slot", None)
        if deposit in self.chain.mined_at or slot is None:
            return deposit
        payout.deposit = self.chain.mined_in_slot(*slot) or deposit
        return payout.deposit

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
            provider=payout.request.provider,
            provider_trade_id=payout.trade_id,
            state=payout.state,
            currency=payout.request.target_currency,
            amount=payout.paid if payout.paid is not None else payout.request.target_amount,
            bank_reference=payout.bank_reference,
            reason=payout.reason,
            fee=payout.fee,
            rate=payout.rate,
            debited=getattr(payout, "debited", None),
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
            while not request.prefunded:  # a deposit-funded payout waits for its deposit
                await asyncio.sleep(2 / self.speed)
                receipt = await self.chain.receipt(self.chain.chain, self._deposit(payout))
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
                self.spent[request.provider] += payout.debited or request.rail_amount
            self.generation += 1
        if payout.return_tx is not None:
            await self._send_back(payout.return_tx)
            payout.state = PayoutState.RETURNED
            payout.reason = "beneficiary account rejected the credit"
            self.generation += 1
        await self._announce(payout)

    def _fill(self, payout: _Payout) -> None:
        """The trade as filled: the beneficiary gets the quoted amount, at the quoted rate, for
        the rail amount, unless a fault makes the provider keep a fee (1%: the beneficiary gets
        less), or fill off the quote (`fx_slippage`): 0.3% either way (within the slippage
        tolerance: FX P&L) or 2% worse (beyond it: an fx_mismatch case). A fill off the quote
        still pays the quoted amount and costs our stablecoin what the fill rate says."""
        request = payout.request
        payout.paid, payout.fee, payout.rate = request.target_amount, 0, request.rate or None
        payout.debited = request.rail_amount
        if self.faults.fire("provider_fee"):
            payout.fee = request.target_amount // 100
            payout.paid = request.target_amount - payout.fee
        elif self.faults.fire("fx_slippage") and request.rate:
            rate = money.parse_rate(request.rate)
            assert isinstance(rate, money.Rate)
            off_bps = self.rng.choice((-30, 30, -200))
            filled = rate.units * (10_000 + off_bps) // 10_000
            payout.rate = money.format_rate(money.Rate(filled))
            payout.debited = -(-request.rail_amount * rate.units // filled)  # rounded up

    def _sign_return(self, request: PayoutRequest) -> SignedTx:
        tx = sign_token_transfer(
            self.accounts[request.provider],
            SignRequest(
                chain=self.chain.chain,
                to_address=self.treasury,
                currency=request.rail_currency,
                amount=request.rail_amount,
                nonce=self._nonces[request.provider],
                max_fee_per_gas=10**12,
            ),
        )
        self._nonces[request.provider] += 1
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
