"""Request bodies: strict msgspec Structs, decoded once per request.

Unknown fields are refused (`forbid_unknown_fields`), so a client can never set a server-owned
field (status, id, fee, client_id); money is a string (a JSON number is refused by type, not
rounded); the engine's validation ladder then judges the values.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from adapters.http.problems import Problem
from engine.destinations import BankDestination, Destination, WalletDestination
from engine.policy import RuleSetDoc

T = TypeVar("T")


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class WalletDestinationBody(_Body, tag="wallet", tag_field="kind", frozen=True, kw_only=True):
    chain: str
    address: str


class BankDestinationBody(_Body, tag="bank", tag_field="kind", frozen=True, kw_only=True):
    country: str
    clabe: str
    name: str


DestinationBody = WalletDestinationBody | BankDestinationBody


def destination(body: DestinationBody) -> Destination:
    match body:
        case WalletDestinationBody(chain=chain, address=address):
            return WalletDestination(chain=chain, address=address)
        case BankDestinationBody(country=country, clabe=clabe, name=name):
            return BankDestination(country=country, clabe=clabe, name=name)


class QuoteBody(_Body, frozen=True, kw_only=True):
    source_currency: str
    target_currency: str
    source_amount: str
    destination_kind: str = "wallet"


class TransferBody(_Body, frozen=True, kw_only=True):
    source_currency: str
    target_currency: str
    amount: str
    destination: DestinationBody
    quote_id: str | None = None
    reference: str | None = None
    metadata: dict[str, str] = {}


class ReasonBody(_Body, frozen=True, kw_only=True):
    reason: str = ""


class ApproveBody(_Body, frozen=True, kw_only=True):
    reason: str = ""
    # The transfer's `approval.terms_hash` as the approver saw it: refused if the terms differ.
    terms_hash: str | None = None


class EndpointBody(_Body, frozen=True, kw_only=True):
    url: str
    events: list[str]


class ApiKeyBody(_Body, frozen=True, kw_only=True):
    role: str
    user: str
    # An operator names the client; a client admin's keys are its own client's.
    client_id: str | None = None


class CorrectionLine(_Body, frozen=True, kw_only=True):
    """One correcting ledger line: exactly one of debit and credit, a decimal string."""

    account: str
    currency: str
    debit: str | None = None
    credit: str | None = None


class ResolveBody(_Body, frozen=True, kw_only=True):
    resolution: str
    notes: str
    correction: list[CorrectionLine] = []


class AssignBody(_Body, frozen=True, kw_only=True):
    owner: str | None = None


class NoteBody(_Body, frozen=True, kw_only=True):
    note: str


class ControlBody(_Body, frozen=True, kw_only=True):
    reason: str


class OverrideBody(_Body, frozen=True, kw_only=True):
    kind: str
    transfer_id: str
    reason: str


class RebalanceBody(_Body, frozen=True, kw_only=True):
    from_account: str
    to_account: str
    currency: str
    amount: str
    reason: str


class PolicyBody(_Body, frozen=True, kw_only=True):
    reason: str
    rule_set: RuleSetDoc


class DryRunBody(_Body, frozen=True, kw_only=True):
    client_id: str
    source_currency: str
    target_currency: str
    amount: str
    destination: DestinationBody
    # The initiating user (absent: the key's own user).
    initiator: str | None = None


class InboundBody(msgspec.Struct, frozen=True, kw_only=True):
    """For the document only: each provider's payload is its own (decoded by the engine)."""


class BankCreditNotice(_Body, frozen=True, kw_only=True):
    """The bank's credit notification: a deposit into a client's virtual account."""

    reference: str
    client_id: str
    currency: str
    amount: str
    booked_at: str


class StatementLineNotice(_Body, frozen=True, kw_only=True):
    """The bank's statement feed: one booked line on our account, as it is booked."""

    kind: str
    line_id: str
    booked_at: str
    amount: str
    currency: str
    direction: str
    reference: str
    counterparty: str = ""
    memo: str = ""


class DepositBody(_Body, frozen=True, kw_only=True):
    client_id: str
    currency: str
    amount: str


class AdvanceBody(_Body, frozen=True, kw_only=True):
    seconds: int


def decode(raw: bytes, kind: type[T]) -> T:
    """The body as `kind`, or a 422 problem naming what is wrong."""
    if not raw.strip():
        raise Problem.http("body_malformed", "the request needs a JSON object body")
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as e:
        message = str(e)
        if "unknown field" in message:
            raise Problem.http("unknown_field", message) from None
        raise Problem.http("field_invalid", message) from None
    except msgspec.DecodeError as e:
        raise Problem.http("body_malformed", str(e)) from None
