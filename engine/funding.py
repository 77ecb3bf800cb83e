"""Client funding: a bank credit to a client's available balance, as a one-event stream (dp_...).

The deposit id is the stream id, so a bank credit reported twice (a duplicated webhook, a statement
line seen again) is appended once: the second append finds the stream already at version 1.
"""

from __future__ import annotations

from engine import ledger, money
from engine.commands import CreditDeposit
from engine.events import DepositCredited
from engine.ids import is_id
from engine.results import Result

bank_reference_length_max = 128


def decide_deposit(cmd: CreditDeposit, now: int) -> Result | DepositCredited:
    if not is_id(cmd.deposit_id, "dp"):
        return Result.command_malformed
    if not ledger.is_name(cmd.client_id):
        return Result.client_id_invalid
    if not ledger.is_name(cmd.bank):
        return Result.command_malformed
    if not 0 < len(cmd.bank_reference) <= bank_reference_length_max:
        return Result.command_malformed
    asset = money.asset(cmd.currency)
    if asset is None:
        return Result.currency_unknown
    amount = money.parse_amount(cmd.amount, asset)
    if isinstance(amount, Result):
        return amount
    if amount == 0:
        return Result.amount_must_be_positive
    return DepositCredited(
        at=now,
        deposit_id=cmd.deposit_id,
        client_id=cmd.client_id,
        currency=asset.code,
        amount=amount,
        bank=cmd.bank,
        bank_reference=cmd.bank_reference,
        entries=ledger.deposit(cmd.client_id, asset.code, amount, cmd.bank),
    )
