"""Provider trade reports (Series 5's provider_reports): the off-ramp's own file of the payouts it
settled, one row per trade, read the way bank statements are (strict: a file with any bad row is
refused whole, naming every problem).

A row is the provider's report of a payout, the same fact its webhook and its status API give,
normalized the same way (engine.matching.payout_facts), so a row that agrees with what the
provider already told us adds nothing, and one that disagrees is kept beside it for the matcher
to see (a second, different report under one trade id is a HIGH duplicate_external_event case).

CSV columns (a header row, in any order; extra columns are ignored):
  trade_id        the provider's trade id (our transfer's provider_trade_id)
  state           paid or returned
  currency        the payout's currency (ISO code we know)
  amount          decimal string in the currency's units: what the beneficiary was paid
  reported_at     RFC 3339 timestamp
  fee             the fee the provider kept, decimal (optional)
  rate            the rate it filled at, decimal (optional)
  bank_reference  the reference the payout went under (optional)
  return_tx_hash  a returned trade's stablecoin transaction back to us (optional)
"""

from __future__ import annotations

import re

import msgspec

from engine import csvfiles, money
from engine.rails import PayoutState, PayoutStatus
from engine.results import Result
from engine.timefmt import parse_rfc3339

ROWS_MAX = 100_000
TEXT_MAX = 200
_TX_HASH = re.compile(r"^0x[0-9a-f]{64}$")


class ReportLine(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    trade_id: str
    state: PayoutState
    currency: str
    amount: int
    reported_at: int
    fee: int | None = None
    rate: str | None = None
    bank_reference: str | None = None
    return_tx_hash: str | None = None

    @classmethod
    def of(cls, status: PayoutStatus, reported_at: int) -> ReportLine:
        return cls(
            provider=status.provider, trade_id=status.provider_trade_id, state=status.state,
            currency=status.currency, amount=status.amount, reported_at=reported_at,
            fee=status.fee, rate=status.rate, bank_reference=status.bank_reference,
            return_tx_hash=status.return_tx_hash,
        )  # fmt: skip

    def status(self) -> PayoutStatus:
        """The row as the provider's payout status (the form its webhook has)."""
        return PayoutStatus(
            provider=self.provider, provider_trade_id=self.trade_id, state=self.state,
            currency=self.currency, amount=self.amount, bank_reference=self.bank_reference,
            fee=self.fee, rate=self.rate, return_tx_hash=self.return_tx_hash,
        )  # fmt: skip

    def raw(self) -> bytes:
        return msgspec.json.encode(self)


def _row(provider: str, n: int, fields: dict[str, str], problems: list[str]) -> ReportLine | None:
    where = f"row {n}"
    texts = {k: fields.get(k, "").strip() for k in ("trade_id", "bank_reference")}
    for name, text in texts.items():
        if len(text) > TEXT_MAX or not text.isprintable():
            problems.append(f"{where}: {name} is up to {TEXT_MAX} printable characters")
            return None
    if not texts["trade_id"]:
        problems.append(f"{where}: trade_id is required")
        return None
    state = fields.get("state", "").strip().lower()
    if state not in (PayoutState.PAID, PayoutState.RETURNED):
        problems.append(f"{where}: state is paid or returned")
        return None
    priced = csvfiles.positive_amount(fields, where, problems)
    if priced is None:
        return None
    asset, amount = priced
    fee_text = fields.get("fee", "").strip()
    fee = money.parse_amount(fee_text, asset) if fee_text else None
    if isinstance(fee, Result):
        problems.append(f"{where}: fee must be a {asset.code} amount")
        return None
    rate_text = fields.get("rate", "").strip()
    if rate_text and not isinstance(money.parse_rate(rate_text), money.Rate):
        problems.append(f"{where}: rate must be a positive decimal")
        return None
    reported = parse_rfc3339(fields.get("reported_at", "").strip())
    if reported is None:
        problems.append(f"{where}: reported_at must be an RFC 3339 timestamp")
        return None
    return_tx = fields.get("return_tx_hash", "").strip().lower()
    if return_tx and not _TX_HASH.match(return_tx):
        problems.append(f"{where}: return_tx_hash must be a 0x-prefixed 32-byte hex hash")
        return None
    return ReportLine(
        provider=provider, trade_id=texts["trade_id"], state=PayoutState(state),
        currency=asset.code, amount=amount, reported_at=reported, fee=fee,
        rate=rate_text or None, bank_reference=texts["bank_reference"] or None,
        return_tx_hash=return_tx or None,
    )  # fmt: skip


def parse_csv(provider: str, data: bytes) -> list[ReportLine] | list[str]:
    """The report's rows, or every problem found (then nothing is imported)."""
    rows = csvfiles.rows(data, {"trade_id", "state", "currency", "amount", "reported_at"})
    if isinstance(rows, list):
        return rows
    lines: list[ReportLine] = []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for n, row in enumerate(rows, start=1):
        if n > ROWS_MAX:
            return [f"more than {ROWS_MAX} rows"]
        line = _row(provider, n, row, problems)
        if line is None:
            continue
        if (line.trade_id, line.state) in seen:
            problems.append(f"row {n}: trade {line.trade_id} is {line.state} twice in the file")
            continue
        seen.add((line.trade_id, line.state))
        lines.append(line)
    if problems:
        return problems
    if not lines:
        return ["the report has no rows"]
    return lines
