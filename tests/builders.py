"""Transfers in every status, built through the engine itself (decide + evolve, valid commands).

`Walk` keeps its own `now` (one millisecond per step) and the events it produced, so tests can
append them to a store or check them against the ledger rules.
"""

from __future__ import annotations

import hashlib

from engine import commands as c
from engine import events as ev
from engine import limits, money, policy, quotes
from engine.chain import SignedTx
from engine.destinations import BankDestination, Destination, WalletDestination
from engine.hashing import request_hash
from engine.ids import format_id
from engine.results import Result
from engine.states import Route, Status
from engine.transfer import Decision, TransferState, decide, evolve_all
from sim.scripted import deposit

T0 = 1_795_564_800_000_000  # 2026-11-25T00:00:00Z
WALLET_ADDRESS = "0x" + "b0" * 20
PROVIDER_ADDRESS = "0x" + "0f" * 20
TREASURY = "0x" + "7e" * 20
CLABE = "032180000118359719"


def wallet() -> WalletDestination:
    return WalletDestination(chain="ethereum", address=WALLET_ADDRESS)


def bank() -> BankDestination:
    return BankDestination(country="MX", clabe=CLABE, name="Proveedora del Norte")


def tid(n: int) -> str:
    return format_id("tr", 1_000 + n, n.to_bytes(10, "big"))


def create_command(
    n: int = 1,
    *,
    route: Route = Route.WALLET,
    amount: str = "100.00",
    client: str = "acme",
    approvals: int = 0,
    initiator: str = "alice",
    quote_id: str | None = None,
    **overrides: object,
) -> c.CreateTransfer:
    destination: Destination = wallet() if route is Route.WALLET else bank()
    target = "USDC" if route is Route.WALLET else "MXN"
    fields: dict[str, object] = {
        "transfer_id": tid(n),
        "client_id": client,
        "initiator": initiator,
        "idempotency_key": f"key-{n}",
        "request_hash": request_hash("create", n),
        "source_currency": "USD",
        "target_currency": target,
        "amount": amount,
        "destination": destination,
        "policy": decision(approvals, destination),
        "quote_id": quote_id,
    }
    fields.update(overrides)
    return c.CreateTransfer(**fields)  # type: ignore[arg-type]


def decision(
    approvals: int = 0, destination: Destination | None = None, *, usd_amount: int = 0
) -> policy.PolicyDecision:
    """A policy decision as engine.policy would make it: allow, or require `approvals`."""
    return policy.PolicyDecision(
        version=1,
        rule_id="test-approve" if approvals else "test-allow",
        action=policy.Action.APPROVE if approvals else policy.Action.ALLOW,
        approvals_required=approvals,
        usd_amount=usd_amount,
        beneficiary=policy.beneficiary_key(destination or wallet()),
    )


def make_quote(
    source: str,
    target: str,
    amount: int,
    now: int,
    *,
    n: int = 1,
    fee_bps: int = 25,
    rate: str | None = None,
    ttl_us: int = 30_000_000,
) -> quotes.Quote:
    fiat = money.ASSETS[target].kind is money.AssetKind.FIAT
    quote = quotes.priced_quote(
        quote_id=format_id("qt", 2_000 + n, n.to_bytes(10, "big")),
        provider="bitso-sim" if fiat else "circle-sim",
        source_currency=source,
        target_currency=target,
        amount=amount,
        fee=amount * fee_bps // 10_000,
        rate=rate or ("17.25000000" if fiat else "1.00000000"),
        payout_address=PROVIDER_ADDRESS if fiat else None,
        issued_at=now,
        ttl_us=ttl_us,
    )
    assert isinstance(quote, quotes.Quote), quote
    return quote


def quote_for(state: TransferState, now: int, n: int = 1, **kw: object) -> quotes.Quote:
    return make_quote(state.source_currency, state.target_currency, state.amount, now, n=n, **kw)  # type: ignore[arg-type]


def signed_tx(
    state: TransferState,
    *,
    nonce: int = 0,
    fee: int = 30_000_000_000,
    salt: int = 0,
    tip: int = 0,
) -> SignedTx:
    """A transaction paying what `state` promises (or, without a quote, what a fresh one would)."""
    quote = state.quote or quote_for(state, T0)
    to = WALLET_ADDRESS if state.route is Route.WALLET else PROVIDER_ADDRESS
    raw = "0x" + f"{state.transfer_id}|{nonce}|{fee}|{salt}".encode().hex()
    return SignedTx(
        chain="ethereum",
        tx_hash="0x" + hashlib.sha256(raw.encode()).hexdigest(),
        raw=raw,
        nonce=nonce,
        from_address=TREASURY,
        to_address=to,
        currency=quote.rail_currency,
        amount=quote.rail_amount,
        max_fee_per_gas=fee,
        max_priority_fee_per_gas=tip,
    )


def block_hash(n: int) -> str:
    return "0x" + hashlib.sha256(f"block-{n}".encode()).hexdigest()


class Walk:
    """Drives one transfer with valid commands, recording every event."""

    def __init__(self, create: c.CreateTransfer, now: int = T0) -> None:
        self.now = now
        self.events: list[ev.TransferEvent] = []
        self.state: TransferState | None = None
        self.apply(create)

    def tick(self, us: int = 1_000) -> int:
        self.now += us
        return self.now

    def decide(self, command: c.TransferCommand, now: int | None = None) -> Decision:
        return decide(self.state, command, self.tick() if now is None else now)

    def apply(self, command: c.TransferCommand, now: int | None = None) -> Decision:
        decision = self.decide(command, now)
        assert decision.result is Result.ok, (c.command_type(command), decision.result)
        if decision.events:
            self.state = evolve_all(self.state, decision.events)
            self.events.extend(decision.events)
        return decision

    @property
    def s(self) -> TransferState:
        assert self.state is not None
        return self.state


def walk_to(target: str, *, route: Route = Route.WALLET, n: int = 1, **create_kw: object) -> Walk:
    """A transfer in `target`: a Status name, or CREATED_PENDING (awaiting one approval)."""
    approvals = 1 if target == "CREATED_PENDING" else 0
    w = Walk(create_command(n, route=route, approvals=approvals, **create_kw))  # type: ignore[arg-type]
    if target in ("CREATED", "CREATED_PENDING"):
        return w
    if target == "FAILED":
        w.apply(c.QuoteTransfer(quote=quote_for(w.s, w.now)))
        w.apply(c.FailTransfer(code="provider_unavailable", message="test"))
        return w
    if target == "EXPIRED":
        w.apply(c.QuoteTransfer(quote=quote_for(w.s, w.now)))
        w.apply(c.ExpireTransfer(), now=w.tick(60_000_000))
        return w
    w.apply(c.QuoteTransfer(quote=quote_for(w.s, w.now)))
    if target == "QUOTED":
        return w
    w.apply(c.LockFunds())
    if target == "FUNDS_LOCKED":
        return w
    if target == "CANCELLED":
        w.apply(c.CancelTransfer(by="alice", reason="test"))
        return w
    w.apply(c.SubmitOnChain(tx=signed_tx(w.s)))
    if target == "SENT_ON_CHAIN":
        return w
    w.apply(
        c.ObserveConfirmation(
            tx_hash=w.s.txs[-1].tx_hash,
            block_number=100,
            block_hash=block_hash(100),
            confirmations=limits.confirmations_required,
        )
    )
    if target == "CONFIRMED":
        return w
    if route is Route.BANK:
        w.apply(c.InitiateOffRamp(provider_trade_id="trade-1"))
        assert w.s.quote is not None
        w.apply(c.MarkFiatSettled(bank_reference="SPEI-1", amount=w.s.quote.target_amount))
        if target == "FIAT_SETTLED":
            return w
    w.apply(c.Reconcile(evidence=("evidence-1",)))
    assert target == "RECONCILED", target
    return w


STATUSES_BY_ROUTE = {
    Route.WALLET: [s.value for s in Status if s is not Status.FIAT_SETTLED] + ["CREATED_PENDING"],
    Route.BANK: [s.value for s in Status] + ["CREATED_PENDING"],
}


def deposit_event(
    client: str = "acme", amount: str = "1000.00", n: int = 1, currency: str = "USD"
) -> ev.DepositCredited:
    deposit_id = format_id("dp", 3_000 + n, n.to_bytes(10, "big"))
    return deposit(deposit_id, client, amount, T0, currency=currency, n=n)
