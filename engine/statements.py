"""Bank statements (Series 8: "always reconcile against bank statements"): what the bank says
happened on our account, read from the files banks publish, normalized into the evidence schema.

A file holds one or more statements (`Statement`): the account they are for, their balances
(opening and closing booked, available, interim), and their entries (`StatementLine`), each
booked or pending. Three families of files are read, each by its own reader:

  camt.052 / camt.053 / camt.054   ISO 20022 XML (engine.camt): account reports, statements,
                                   debit/credit notifications, versions 001.02 to 001.13
  MT940                            SWIFT's statement message (adapters.statement_files)
  CSV                              our own flat layout (below), for banks with neither

Whatever the format, the rules are the ones here:

- An amount is converted to the currency's minor units exactly, or the file is refused naming
  the amount: 8.850 EUR is 8.85, 8.855 EUR is more decimals than EUR has. Any ISO 4217 currency
  is read (engine.currencies).
- A date without a time is the bank's business day, which starts at midnight in the account's
  time zone (configured per account); a time without an offset is in that zone too.
- Credits and debits are both lines; a reversal keeps the direction the money moved and says it
  reverses.
- Only booked lines are evidence. Pending (and information-only) lines are read, counted and
  reported, never recorded: a bank may still change them.
- Every line has an id that is the same each time the same file is read (the bank's own
  reference for the entry when it gives one, else a digest of what the line says), so a file
  read twice adds nothing.
- A statement's opening balance plus its booked lines must give its closing balance
  (`arithmetic`); a statement that does not add up is a case for an operator, not silence.

Parsing is strict where money is concerned: a file with any bad amount, date or direction is
refused whole, naming every problem, so a statement is never half-imported.

CSV columns (a header row, in any order; extra columns are ignored):
  line_id      the bank's id for the line (unique within the bank); defaults to the reference
  booked_at    RFC 3339 timestamp
  amount       decimal string in the currency's units, positive
  currency     ISO code we know (USD, MXN, ...)
  direction    credit (money in) or debit (money out)
  reference    the bank's reference for the movement (end-to-end id)
  counterparty the other party's account or name (optional)
  memo         remittance information (optional)
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
from collections.abc import Iterable

import msgspec

from engine import csvfiles, currencies, ledger
from engine.reconciliation import CERTAIN, Finding, Kind, Source, severity_of
from engine.timefmt import micros, parse_rfc3339

LINES_MAX = 100_000
STATEMENTS_MAX = 1_000
TEXT_MAX = 200


class Direction(enum.StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class EntryStatus(enum.StrEnum):
    """ISO 20022's entry status codes: only BOOK is booked evidence."""

    BOOKED = "BOOK"
    PENDING = "PDNG"
    INFO = "INFO"
    FUTURE = "FUTR"


class StatementLine(msgspec.Struct, frozen=True, kw_only=True):
    bank: str
    line_id: str
    booked_at: int
    amount: int
    currency: str
    direction: str
    reference: str
    counterparty: str = ""
    memo: str = ""
    # Where the line came from: our account at the bank as the file names it, the statement.
    account: str = ""
    statement_id: str = ""
    status: EntryStatus = EntryStatus.BOOKED
    # The booking and value dates as the bank wrote them (YYYY-MM-DD), when it gave dates.
    booking_date: str = ""
    value_date: str = ""
    # True when the entry reverses an earlier one (ISO's RvslInd, MT940's RC/RD marks).
    reversal: bool = False
    # Every reference the bank gave, by kind (acct_svcr_ref, end_to_end_id, instr_id, tx_id,
    # pmt_inf_id, creditor_ref, bank_ref, customer_ref, ...); `reference` is the first of them.
    references: dict[str, str] = msgspec.field(default_factory=dict)
    counterparty_name: str = ""
    # The entry as the bank wrote it (the XML element, the MT940 tags), kept as the raw payload.
    source: str = ""

    def normalized(self) -> dict[str, str]:
        found = {
            "amount": str(self.amount),
            "currency": self.currency,
            "direction": self.direction,
            "reference": self.reference,
            "counterparty": self.counterparty,
            "memo": self.memo,
        }
        optional = {
            "account": self.account,
            "statement_id": self.statement_id,
            "booking_date": self.booking_date,
            "value_date": self.value_date,
            "counterparty_name": self.counterparty_name,
            "reversal": "true" if self.reversal else "",
        }
        found.update({k: v for k, v in optional.items() if v})
        found.update({f"ref_{k}": v for k, v in self.references.items()})
        return found

    def raw(self) -> bytes:
        if self.source:
            return self.source.encode()
        return msgspec.json.encode(self)

    @property
    def booked(self) -> bool:
        return self.status is EntryStatus.BOOKED


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One balance a statement states: its ISO code (OPBD opening booked, CLBD closing booked,
    PRCD previously closed booked, ITBD interim booked, OPAV/CLAV/FWAV/ITAV available, ...), signed
    minor units (negative: the account was overdrawn), its currency and its date."""

    code: str
    amount: int
    currency: str
    date: str
    # The moment it stands for: an opening balance (OP...) at the start of its business day in
    # the account's time zone, any other at the end of it; or the moment the bank gave.
    at: int


OPENING_CODES = ("OPBD", "PRCD", "OPIT")
CLOSING_CODE = "CLBD"
# A statement split over several messages (MT940's :60M: and :62M:) opens and closes each part
# with an intermediate balance: each part adds up on its own; only the final closing balance is
# the day's, compared with the ledger.
CLOSING_CODES = (CLOSING_CODE, "CLIT")


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    """One statement (or report, or notification) of one account, as read from a file."""

    # camt.053.001.08, camt.054.001.02, mt940, csv
    format: str
    bank: str
    # Our account at the bank, as the file writes it (spaces removed); "" for our CSV layout.
    account: str
    currency: str
    statement_id: str
    # The file's own id (camt GrpHdr/MsgId, MT940 :20:).
    document_id: str = ""
    created_at: int | None = None
    balances: tuple[Balance, ...] = ()
    lines: tuple[StatementLine, ...] = ()
    # What the reader decided that an operator should know (a batch kept as one line, ...).
    notes: tuple[str, ...] = ()

    def balance(self, *codes: str) -> Balance | None:
        for code in codes:
            for b in self.balances:
                if b.code == code:
                    return b
        return None

    @property
    def booked(self) -> list[StatementLine]:
        return [line for line in self.lines if line.booked]

    @property
    def not_booked(self) -> list[StatementLine]:
        return [line for line in self.lines if not line.booked]


class BankAccount(msgspec.Struct, frozen=True, kw_only=True):
    """One of our accounts at a bank (configuration): the bank's name in the ledger (its account
    `bank:<bank>`), the account's identifier as the bank writes it (an IBAN, or the bank's own
    number), its currency and the time zone of its business day."""

    bank: str
    account: str
    currency: str
    timezone: str = "UTC"


# The bank of an account read without configuration (only by `stablerail statements check`).
UNCONFIGURED = "unconfigured"


def account_key(text: str) -> str:
    """An account identifier compared without spaces or case (IBANs are often grouped)."""
    return "".join(text.split()).upper()


class Accounts:
    """The configured bank accounts, found by what a file calls them, each with its time zone
    (read by the caller: the engine reads no files). `accept_any` makes an unconfigured account
    readable (for `stablerail statements check`, which records nothing)."""

    def __init__(
        self, accounts: Iterable[tuple[BankAccount, dt.tzinfo]], *, accept_any: bool = False
    ) -> None:
        self.by_key = {account_key(a.account): (a, tz) for a, tz in accounts}
        self.accept_any = accept_any

    def find(self, written: str) -> tuple[BankAccount, dt.tzinfo] | None:
        """The account a file names: exactly, or as MT940's :25: often writes it (the bank's
        BIC or sort code, a slash, the account; or the account followed by its currency)."""
        key = account_key(written)
        if key in self.by_key:
            return self.by_key[key]
        for part in key.split("/"):
            if part in self.by_key:
                return self.by_key[part]
            with_currency = len(part) > 3 and currencies.exponent(part[-3:]) is not None
            if with_currency and part[:-3] in self.by_key:
                return self.by_key[part[:-3]]
        if self.accept_any:
            return BankAccount(bank=UNCONFIGURED, account=key, currency=""), dt.UTC
        return None

    def unknown(self, written: str) -> str:
        """Why a file for `written` is refused."""
        configured = ", ".join(sorted(self.by_key)) or "none"
        return f"account {written} is not one of our bank accounts (configured: {configured})"


# --- amounts and dates ---------------------------------------------------------------------------

_DECIMAL = re.compile(r"([0-9]{1,18})(?:[.,]([0-9]{0,18}))?")


def minor_units(text: str, currency: str) -> int | str:
    """A non-negative decimal amount as written by a bank ("8.85", "8.850", "1000,00", "2700")
    in `currency`'s minor units, exactly; or what is wrong with it."""
    scale = currencies.exponent(currency)
    if scale is None:
        return f"currency {currency!r} is not an ISO 4217 currency"
    found = _DECIMAL.fullmatch(text.strip())
    if found is None:
        return f"amount {text.strip()[:40]!r} is not a decimal amount"
    whole, fraction = found.group(1), found.group(2) or ""
    extra = fraction[scale:]
    if extra.strip("0"):
        return (
            f"amount {text.strip()} {currency} has more decimals than {currency} allows"
            f" ({scale}): it cannot be booked exactly"
        )
    units: int = int(whole) * 10**scale + int(fraction[:scale].ljust(scale, "0") or "0")
    return units


def decimal_text(minor: int, currency: str) -> str:
    """Minor units as the currency's decimal text: 125050 EUR -> "1250.50", -1440 JPY -> "-1440"."""
    scale = currencies.exponent(currency) or 0
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**scale)
    return f"{sign}{whole}.{fraction:0{scale}d}" if scale else f"{sign}{whole}"


_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]{1,9}))?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)


def day_start(text: str, tz: dt.tzinfo) -> int | None:
    """An ISO date (YYYY-MM-DD) as the microsecond its business day starts in `tz`."""
    found = _DATE.fullmatch(text.strip())
    if found is None:
        return None
    try:
        day = dt.date(*(int(g) for g in found.groups()))
    except ValueError:
        return None
    return micros(dt.datetime(day.year, day.month, day.day, tzinfo=tz))


def day_end(text: str, tz: dt.tzinfo) -> int | None:
    """The last microsecond of a business day in `tz`."""
    start = day_start(text, tz)
    if start is None:
        return None
    day = dt.date.fromisoformat(text.strip()) + dt.timedelta(days=1)
    return micros(dt.datetime(day.year, day.month, day.day, tzinfo=tz)) - 1


def moment(text: str, tz: dt.tzinfo) -> int | None:
    """An ISO date-time as banks write it (2014-12-31T13:15:00+01:00, ...Z, a fraction of up to
    nine digits, or no offset: then local time in `tz`) in microseconds since the epoch."""
    found = _DATETIME.fullmatch(text.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    fraction_us = int((fraction or "").ljust(6, "0")[:6])
    zone: dt.tzinfo = tz
    if offset is not None and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    elif offset == "Z":
        zone = dt.UTC
    try:
        local = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), fraction_us,
            tzinfo=zone,
        )  # fmt: skip
    except ValueError:
        return None
    return micros(local)


def entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def clean_text(text: str) -> str:
    """A bank's free text in one line, bounded (the raw entry keeps all of it)."""
    one_line = " ".join(text.split())
    printable = "".join(c if c.isprintable() else " " for c in one_line)
    return printable[:TEXT_MAX]


# --- line ids ------------------------------------------------------------------------------------


def with_ids(lines: list[StatementLine]) -> tuple[list[StatementLine], list[str]]:
    """Every line with an id that reading the same file again gives again: the bank's own
    reference for the entry (`line_id` as read), else a digest of the line's account, dates,
    direction, amount and references; the n-th line with an id already taken gets `#n` (two
    identical fees on one day are two lines). Also the notes of what was renamed."""
    taken: dict[str, int] = {}
    found: list[StatementLine] = []
    renamed = 0
    for line in lines:
        base = line.line_id or _digest_id(line)
        seen = taken.get(base, 0) + 1
        taken[base] = seen
        line_id = base if seen == 1 else f"{base}#{seen}"
        renamed += seen > 1 and bool(line.line_id)
        found.append(msgspec.structs.replace(line, line_id=line_id))
    notes = [f"{entries(renamed)} with a bank reference used before in the file: each is kept"
             " as its own line (#2, #3, ...)"] if renamed else []  # fmt: skip
    return found, notes


def _digest_id(line: StatementLine) -> str:
    parts = [
        line.account, line.booking_date or str(line.booked_at), line.value_date, line.direction,
        str(line.amount), line.currency, line.status.value, str(line.reversal),
        *(f"{k}={v}" for k, v in sorted(line.references.items())), line.counterparty, line.memo,
    ]  # fmt: skip
    return "h" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


# --- checks --------------------------------------------------------------------------------------


class Arithmetic(msgspec.Struct, frozen=True, kw_only=True):
    """A statement's balances against its booked lines: opening + credits - debits = closing."""

    currency: str
    opening: int
    credits: int
    debits: int
    closing: int
    # Why the statement does not add up; empty when it does.
    problems: tuple[str, ...]

    @property
    def computed(self) -> int:
        return self.opening + self.credits - self.debits


def arithmetic(statement: Statement) -> Arithmetic | None:
    """The statement's sums, when it states an opening and a closing booked balance (a
    notification or an intraday report has none: nothing to add up)."""
    opening = statement.balance(*OPENING_CODES)
    closing = statement.balance(*CLOSING_CODES)
    if opening is None or closing is None:
        return None
    currency = statement.currency or opening.currency
    problems: list[str] = []
    for b in (opening, closing):
        if b.currency != currency:
            problems.append(f"the {b.code} balance is in {b.currency}, the account in {currency}")
    booked = statement.booked
    other = sorted({line.currency for line in booked if line.currency != currency})
    if other:
        problems.append(f"booked lines in {', '.join(other)} on a {currency} account")
    credits = sum(
        x.amount for x in booked if x.currency == currency and x.direction == Direction.CREDIT
    )
    debits = sum(
        x.amount for x in booked if x.currency == currency and x.direction == Direction.DEBIT
    )
    if opening.amount + credits - debits != closing.amount:

        def text(minor: int) -> str:
            return decimal_text(minor, currency)

        problems.append(
            f"{opening.code} {text(opening.amount)} + credits {text(credits)} - debits"
            f" {text(debits)} = {text(opening.amount + credits - debits)} {currency}, but"
            f" {closing.code} says {text(closing.amount)}"
        )
    return Arithmetic(
        currency=currency, opening=opening.amount, credits=credits, debits=debits,
        closing=closing.amount, problems=tuple(problems),
    )  # fmt: skip


# What a statement's balances are kept as (one per statement that states any), beside its lines.
STATEMENT_BALANCE = "statement_balance"


def balance_ref(statement: Statement) -> str:
    """The statement's balances are one fact per account, statement and closing date."""
    closing = statement.balance(CLOSING_CODE)
    day = closing.date if closing is not None else ""
    return f"{account_key(statement.account)}/{statement.statement_id}/{day}"


def balance_facts(statement: Statement) -> dict[str, str]:
    """The statement's balances in the evidence schema."""
    found = {
        "account": account_key(statement.account),
        "currency": statement.currency,
        "statement_id": statement.statement_id,
        "format": statement.format,
        "lines_booked": str(len(statement.booked)),
        "lines_not_booked": str(len(statement.not_booked)),
    }
    for b in statement.balances:
        found[b.code.lower()] = str(b.amount)
        found[f"{b.code.lower()}_currency"] = b.currency
        found[f"{b.code.lower()}_date"] = b.date
    return found


def closing_check(statement: Statement) -> tuple[str, str, int] | None:
    """(ledger account, currency, as of) against which the statement's closing booked balance
    is compared: the ledger's view of our account at the bank at the end of the closing day."""
    closing = statement.balance(CLOSING_CODE)
    if closing is None or not ledger.is_name(statement.bank):
        return None
    return ledger.bank(statement.bank), closing.currency, closing.at


def problems(statement: Statement, ledger_amount: int | None) -> list[str]:
    """Why a statement does not add up: its opening balance plus its booked lines are not its
    closing balance, or its closing balance is not what the ledger holds for the account at
    that moment (`ledger_amount`, when known). Empty when it agrees, or states nothing to
    check."""
    sums = arithmetic(statement)
    found = list(sums.problems) if sums is not None else []
    closing = statement.balance(CLOSING_CODE)
    check = closing_check(statement)
    if closing is not None and check is not None and ledger_amount not in (None, closing.amount):
        assert ledger_amount is not None
        found.append(
            f"the ledger's {check[0]} holds {decimal_text(ledger_amount, closing.currency)}"
            f" {closing.currency} at the end of {closing.date}, the bank's closing balance is"
            f" {decimal_text(closing.amount, closing.currency)}"
        )
    return found


def finding(
    statement: Statement, found: list[str], ledger_amount: int | None, evidence_id: str
) -> Finding:
    """The `balance_drift` case a statement that does not add up makes: both sides, and why."""
    assert found
    sums = arithmetic(statement)
    closing = statement.balance(CLOSING_CODE)
    check = closing_check(statement)
    expected = {"ledger_account": check[0] if check else "", "currency": statement.currency}
    if ledger_amount is not None:
        expected["amount"] = str(ledger_amount)
    if sums is not None:
        expected["computed_closing"] = str(sums.computed)
    actual = {
        "bank_account": account_key(statement.account),
        "statement_id": statement.statement_id,
        "problems": "; ".join(found)[: 4 * TEXT_MAX],
    }
    if closing is not None:
        actual.update(closing=str(closing.amount), closing_date=closing.date)
    if sums is not None:
        actual.update(opening=str(sums.opening), credits=str(sums.credits), debits=str(sums.debits))
    return Finding(
        kind=Kind.BALANCE_DRIFT,
        severity=severity_of(Kind.BALANCE_DRIFT),
        confidence=CERTAIN,
        source=Source.BANK,
        transfer_id=None,
        evidence_ids=(evidence_id,),
        expected=expected,
        actual=actual,
    )


# --- our CSV layout and the bank's statement feed -----------------------------------------------


def _line(bank: str, n: int, fields: dict[str, str], problems: list[str]) -> StatementLine | None:
    where = f"line {n}"
    priced = csvfiles.positive_amount(fields, where, problems)
    if priced is None:
        return None
    asset, amount = priced
    booked = parse_rfc3339(fields.get("booked_at", "").strip())
    if booked is None:
        problems.append(f"{where}: booked_at must be an RFC 3339 timestamp")
        return None
    direction = fields.get("direction", "").strip().lower()
    direction = {"crdt": "credit", "dbit": "debit"}.get(direction, direction)
    if direction not in ("credit", "debit"):
        problems.append(f"{where}: direction is credit or debit")
        return None
    reference = fields.get("reference", "").strip()
    line_id = fields.get("line_id", "").strip() or reference
    texts = {
        "reference": reference,
        "line_id": line_id,
        "counterparty": fields.get("counterparty", "").strip(),
        "memo": fields.get("memo", "").strip(),
    }
    for name, text in texts.items():
        if len(text) > TEXT_MAX or not text.isprintable():
            problems.append(f"{where}: {name} is up to {TEXT_MAX} printable characters")
            return None
    if not line_id:
        problems.append(f"{where}: a line needs a line_id or a reference")
        return None
    return StatementLine(
        bank=bank, booked_at=booked, amount=amount, currency=asset.code, direction=direction,
        reference=reference, line_id=line_id, counterparty=texts["counterparty"],
        memo=texts["memo"],
    )  # fmt: skip


def line(bank: str, fields: dict[str, str]) -> StatementLine | list[str]:
    """One line on its own (the bank's statement feed pushes lines one by one), or its
    problems."""
    problems: list[str] = []
    found = _line(bank, 1, fields, problems)
    return found if found is not None else problems


def parse_csv(bank: str, data: bytes) -> list[Statement] | list[str]:
    """A CSV statement of `bank` (one statement, no balances), or every problem found (then
    nothing is imported)."""
    found = csvfiles.rows(data, {"booked_at", "amount", "currency", "direction", "reference"})
    if isinstance(found, list):
        return found
    lines: list[StatementLine] = []
    problems: list[str] = []
    seen: set[str] = set()
    for n, fields in enumerate(found, start=1):
        if n > LINES_MAX:
            return [f"more than {LINES_MAX} lines"]
        parsed = _line(bank, n, fields, problems)
        if parsed is None:
            continue
        if parsed.line_id in seen:
            problems.append(f"line {n}: line_id {parsed.line_id} appears twice in the file")
            continue
        seen.add(parsed.line_id)
        lines.append(parsed)
    if problems:
        return problems
    if not lines:
        return ["the statement has no lines"]
    return [
        Statement(
            format="csv", bank=bank, account="", currency="", statement_id="",
            lines=tuple(lines),
        )
    ]  # fmt: skip
