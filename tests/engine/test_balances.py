"""Balance-level reconciliation's arithmetic: the in-flight window says how far each holder may be
from the ledger right now (a mined payment the ledger has not booked lowers the wallet and, on the
off-ramp route, raises the provider; a payout the provider paid or returned before the ledger
heard lowers the provider and, returned, raises the wallet; the bank account has no window), a
drift inside it is explained, and a drift that stays outside it is a case: CRITICAL when value is
missing from a treasury wallet, HIGH otherwise."""

from __future__ import annotations

import pytest

from engine import ledger
from engine.balances import Reading, drift_finding, in_flight, source_of
from engine.chain import SignedTx
from engine.destinations import BankDestination, WalletDestination
from engine.reconciliation import Kind, Severity, Source
from engine.states import Route, Status
from engine.transfer import TransferState

TREASURY = ledger.treasury("ethereum", "0x" + "aa" * 20)
PROVIDER = ledger.provider("bitso")
BANK = ledger.bank("bank-sim")


def moving(
    n: int, route: Route, status: Status, amount: int, currency: str = "USDC"
) -> TransferState:
    tx = SignedTx(
        chain="ethereum", tx_hash=f"0x{n:064x}", raw="0x", nonce=n,
        from_address="0x" + "aa" * 20, to_address="0x" + "bb" * 20, currency=currency,
        amount=amount, max_fee_per_gas=1,
    )  # fmt: skip
    destination = (
        WalletDestination(chain="ethereum", address="0x" + "bb" * 20)
        if route is Route.WALLET
        else BankDestination(country="MX", clabe="002010077777777771", name="Ana")
    )
    return TransferState(
        transfer_id=f"tr_{n}", client_id="c", initiator="c", idempotency_key=f"k{n}",
        request_hash="h", request_id=None, status=status, route=route, source_currency="USD",
        target_currency="USDC" if route is Route.WALLET else "MXN", amount=amount,
        destination=destination, reference=None, metadata={}, approvals_required=0, txs=(tx,),
        created_at=0, updated_at=0, status_since=0, version=5,
    )  # fmt: skip


IN_FLIGHT = [
    moving(1, Route.WALLET, Status.SENT_ON_CHAIN, 100),
    moving(2, Route.BANK, Status.SENT_ON_CHAIN, 20),
    moving(3, Route.BANK, Status.CONFIRMED, 7),
    moving(4, Route.WALLET, Status.CONFIRMED, 1_000),  # booked on both sides: no window
    moving(5, Route.WALLET, Status.SENT_ON_CHAIN, 9, currency="EURC"),  # another asset
]


def test_each_holder_has_its_own_window_from_the_transfers_in_flight() -> None:
    assert in_flight(TREASURY, "USDC", IN_FLIGHT) == (-120, 7)
    assert in_flight(PROVIDER, "USDC", IN_FLIGHT) == (-7, 20)
    assert in_flight(BANK, "USD", IN_FLIGHT) == (0, 0)
    assert in_flight(TREASURY, "EURC", IN_FLIGHT) == (-9, 0)
    assert [source_of(a) for a in (TREASURY, PROVIDER, BANK, ledger.SUSPENSE)] == [
        Source.CHAIN, Source.PROVIDER, Source.BANK, None,
    ]  # fmt: skip


def reading(source: Source, external: int, low: int = -120, high: int = 7) -> Reading:
    account = {Source.CHAIN: TREASURY, Source.PROVIDER: PROVIDER, Source.BANK: BANK}[source]
    return Reading(
        source=source, holder="h", account=account, currency="USDC", ledger=1_000,
        external=external, low=low, high=high, at=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("external", "explained"),
    [(1_000, True), (880, True), (879, False), (1_007, True), (1_008, False)],
)
def test_a_drift_is_explained_only_inside_the_window(external: int, explained: bool) -> None:
    assert reading(Source.CHAIN, external).explained is explained


@pytest.mark.parametrize(
    ("source", "external", "severity"),
    [
        (Source.CHAIN, 500, Severity.CRITICAL),  # value missing from our wallet
        (Source.CHAIN, 1_500, Severity.HIGH),
        (Source.PROVIDER, 500, Severity.HIGH),
        (Source.BANK, 1_500, Severity.HIGH),
    ],
)
def test_a_drift_case_names_both_sides(source: Source, external: int, severity: Severity) -> None:
    finding = drift_finding(reading(source, external), "ex_1")
    assert (finding.kind, finding.severity, finding.source, finding.transfer_id) == (
        Kind.BALANCE_DRIFT, severity, source, None,
    )  # fmt: skip
    assert finding.expected["amount"] == "1000" and finding.actual["amount"] == str(external)
    assert finding.actual["drift"] == str(external - 1_000)
    assert finding.case_key == f"balance_drift:{source}:ex_1"
