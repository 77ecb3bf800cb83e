"""Bank statement files as banks deliver them, read into engine.statements' Statements.

The format is told by the content, not the file's name: XML is ISO 20022 (camt.052, camt.053 or
camt.054, read by engine.camt), a file whose lines carry SWIFT tags (`:20:`, `:25:`, `:61:`) is
MT940, anything else our own CSV layout. A file from outside is untrusted: XML is parsed with
defusedxml (no DTDs, no entities, no external references), and every file is bounded in size.

MT940 is read with the `mt-940` package (tags :20: :25: :28C: :60F:/:60M: :61: :86: :62F:/:62M:
:64: :65:), whole SWIFT messages ({1:...}{4: ... -}) and several statements per file included.
Balances get ISO's codes: :60F: OPBD, :62F: CLBD, :64: CLAV, :65: FWAV; a statement split over
messages opens and closes its parts with :60M: and :62M: (OPIT and CLIT here), each part adding
up on its own.
A :61: line gives the value date, the booking date (its optional MMDD), the mark (C credit, D
debit, RC reversal of a credit: money out, RD reversal of a debit: money in), the amount, the
customer's reference and the bank's (after //); the :86: that follows gives the remittance
information, read for the common structured forms (`/EREF/.../REMI/...`, and the German
`166?00...?20EREF+...` subfields) as well as free text.

The account a file names must be one of ours (`[[bank_accounts]]` in the config): its bank is the
ledger's `bank:<name>`, its time zone the bank's business day. An unknown account refuses the
file, naming it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import re
from collections.abc import Iterable
from typing import Any

import defusedxml.ElementTree as SafeET
import mt940
from defusedxml import DefusedXmlException

from adapters.zones import timezone
from engine import camt
from engine import statements as st
from engine.problems import Problems
from engine.statements import Accounts, Balance, BankAccount, Statement, StatementLine

FILE_BYTES_MAX = 64 * 1024 * 1024
# The mt-940 package logs every tag it matches (and each failure, which it also raises).
logging.getLogger("mt940").setLevel(logging.CRITICAL)


def accounts(configured: Iterable[BankAccount], *, accept_any: bool = False) -> Accounts:
    """The configured accounts with their time zones (raises UnknownTimezone naming one that
    the time zone database does not hold)."""
    found: list[tuple[BankAccount, dt.tzinfo]] = []
    for account in configured:
        found.append((account, timezone(account.timezone)))
    return Accounts(found, accept_any=accept_any)


def kind_of(data: bytes) -> str:
    """xml, mt940 or csv, by what the file holds."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "xml"
    if head.startswith(b"{1:") or re.search(rb"(?m)^:(20|25|28C?|60[FM]|61):", head):
        return "mt940"
    return "csv"


def read(name: str, data: bytes, known: Accounts, *, csv_bank: str) -> list[Statement] | list[str]:
    """The statements in a file, or every problem that refuses it (then nothing is imported).
    `csv_bank` names the bank of a CSV statement (our layout names no account)."""
    if len(data) > FILE_BYTES_MAX:
        return [f"{name}: over {FILE_BYTES_MAX // (1024 * 1024)} MiB"]
    match kind_of(data):
        case "xml":
            return _xml(data, known)
        case "mt940":
            return _mt940(data, known)
        case _:
            return st.parse_csv(csv_bank, data)


def _xml(data: bytes, known: Accounts) -> list[Statement] | list[str]:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as e:
        return [f"refused XML: {type(e).__name__} (DTDs, entities and external references are"
                " not read in files from outside)"]  # fmt: skip
    except SafeET.ParseError as e:
        return [f"not well-formed XML: {e}"]
    return camt.read(root, known)


# --- MT940 ---------------------------------------------------------------------------------------

_SWIFT_BLOCK = re.compile(r"\{[1-3]:[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
_TAG = re.compile(r"(?m)^:([0-9]{2}[A-Z]?|NS):")
_MARKS = {
    "C": (st.Direction.CREDIT, False),
    "D": (st.Direction.DEBIT, False),
    "RC": (st.Direction.DEBIT, True),
    "RD": (st.Direction.CREDIT, True),
}
_NO_REFERENCE = "NONREF"
# The German structured :86: keeps the payer's IBAN apart from the name; :86: is kept whole
# however long; lowercase marks are marks.
_OPTIONS = mt940.Options(applicant_iban=True, unbounded_details=True, case_insensitive_marks=True)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unwrap(text: str) -> str:
    """The text blocks of SWIFT messages ({1:...}{2:...}{4: ... -}{5:...}) as plain tag lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SWIFT_BLOCK.sub("", text)
    text = re.sub(r"\{4:\s*", "\n", text)
    text = re.sub(r"(?m)^-\}.*$", "", text)
    text = re.sub(r"\{5:[^\n]*", "", text)
    return text


def _blocks(text: str) -> list[str]:
    return [b for b in re.split(r"(?m)^(?=:20:)", text) if b.strip().startswith(":20:")]


def _entries(block: str) -> list[str]:
    """Each :61: with the :86: (and bank-specific :NS:) lines that follow it, as written."""
    found: list[str] = []
    marks = list(_TAG.finditer(block))
    for n, mark in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(block)
        chunk = block[mark.start() : end].rstrip("\n")
        if mark.group(1) == "61":
            found.append(chunk)
        elif (
            mark.group(1) in ("86", "NS") and found and marks[n - 1].group(1) in ("61", "86", "NS")
        ):
            found[-1] += "\n" + chunk
    return found


def _mt940(data: bytes, known: Accounts) -> list[Statement] | list[str]:
    text = _unwrap(_decode(data))
    blocks = _blocks(text)
    if not blocks:
        return ["MT940: no statement (no :20: tag)"]
    if len(blocks) > st.STATEMENTS_MAX:
        return [f"more than {st.STATEMENTS_MAX} statements in one file"]
    problems = Problems()
    found: list[Statement] = []
    count = 0
    for n, block in enumerate(blocks, start=1):
        try:
            [parsed] = mt940.parse_statements(block, options=_OPTIONS)
        except (RuntimeError, ValueError, decimal.InvalidOperation) as e:
            problems.add(f"statement {n}: {_tag_problem(e)}")
            continue
        count += len(parsed)
        if count > st.LINES_MAX:
            return [f"more than {st.LINES_MAX} entries"]
        statement = _MT940Statement(n, parsed, _entries(block), known, problems).read()
        if statement is not None:
            found.append(statement)
    if problems:
        return problems.listed()
    return found


def _tag_problem(e: Exception) -> str:
    """The package raises RuntimeError(message, tag, value) for a tag it cannot read."""
    if len(e.args) == 3 and isinstance(e.args[2], str):
        tag = getattr(e.args[1], "id", "?")
        return f":{tag}: cannot be read: {e.args[2][:80]!r}"
    return str(e.args[0] if e.args else type(e).__name__)[:200]


class _MT940Statement:
    def __init__(
        self,
        n: int,
        parsed: mt940.models.Transactions,
        raw: list[str],
        known: Accounts,
        problems: Problems,
    ) -> None:
        self.data: dict[str, Any] = parsed.data
        self.transactions = list(parsed)
        self.raw = raw
        self.known = known
        self.problems = problems
        reference = str(self.data.get("transaction_reference") or "")
        self.where = f"statement {n}" + (f" ({reference})" if reference else "")

    def read(self) -> Statement | None:
        written = str(self.data.get("account_identification") or "").strip()
        if not written:
            self.problems.add(f"{self.where}: no :25: account identification")
            return None
        found = self.known.find(written)
        if found is None:
            self.problems.add(f"{self.where}: {self.known.unknown(written)}")
            return None
        account, tz = found
        written = account.account
        if len(self.raw) != len(self.transactions):
            self.problems.add(f"{self.where}: {len(self.raw)} :61: lines were not all read")
            return None
        number = str(self.data.get("statement_number") or "")
        sequence = str(self.data.get("sequence_number") or "")
        statement_id = f"{number}/{sequence}" if sequence else number
        balances = [
            b
            for code, slug in (
                ("OPBD", "final_opening_balance"),
                ("OPIT", "intermediate_opening_balance"),
                ("OPBD", "opening_balance"),
                ("CLBD", "final_closing_balance"),
                ("CLIT", "intermediate_closing_balance"),
                ("CLBD", "closing_balance"),
                ("CLAV", "available_balance"),
                ("FWAV", "forward_available_balance"),
            )
            if slug in self.data and (b := self._balance(code, slug, tz)) is not None
        ]
        lines = [
            line
            for i, (tx, raw) in enumerate(zip(self.transactions, self.raw, strict=True), start=1)
            if (line := self._line(i, tx.data, raw, account, written, statement_id, tz))
        ]
        booked, renamed = st.with_ids(lines)
        return Statement(
            format="mt940", bank=account.bank, account=written,
            currency=str(self.data.get("currency") or account.currency),
            statement_id=statement_id,
            document_id=str(self.data.get("transaction_reference") or ""),
            balances=tuple(balances), lines=tuple(booked), notes=tuple(renamed),
        )  # fmt: skip

    def _units(self, where: str, amount: object, currency: str) -> int | None:
        value = getattr(amount, "amount", None)
        if not isinstance(value, decimal.Decimal):
            self.problems.add(f"{where}: no amount")
            return None
        units = st.minor_units(format(abs(value), "f"), currency)
        if isinstance(units, str):
            self.problems.add(f"{where}: {units}")
            return None
        return units

    def _balance(self, code: str, slug: str, tz: dt.tzinfo) -> Balance | None:
        where = f"{self.where} :{slug.replace('_', ' ')}:"
        balance = self.data[slug]
        currency = str(getattr(balance.amount, "currency", "") or "")
        units = self._units(where, balance.amount, currency)
        day = balance.date.isoformat() if balance.date is not None else ""
        at = st.day_start(day, tz) if code.startswith("OP") else st.day_end(day, tz)
        if units is None or at is None:
            if at is None:
                self.problems.add(f"{where}: no date")
            return None
        signed = -units if balance.status == "D" else units
        return Balance(code=code, amount=signed, currency=currency, date=day, at=at)

    def _line(
        self,
        i: int,
        tx: dict[str, Any],
        raw: str,
        account: BankAccount,
        written: str,
        statement_id: str,
        tz: dt.tzinfo,
    ) -> StatementLine | None:
        where = f"{self.where} :61: line {i}"
        mark = str(tx.get("status") or "").upper()
        if mark not in _MARKS:
            self.problems.add(f"{where}: mark {mark!r} is not C, D, RC or RD")
            return None
        direction, reversal = _MARKS[mark]
        currency = str(tx.get("currency") or account.currency)
        units = self._units(where, tx.get("amount"), currency)
        value = tx.get("date")
        booking = tx.get("entry_date") or value
        if units is None or value is None or booking is None:
            if value is None:
                self.problems.add(f"{where}: no value date")
            return None
        booked_at = st.day_start(booking.isoformat(), tz)
        assert booked_at is not None
        details = _details(tx)
        refs = {
            "customer_ref": str(tx.get("customer_reference") or "").strip(),
            "bank_ref": str(tx.get("bank_reference") or "").strip(),
            "end_to_end_id": details.get("eref", ""),
            "mndt_id": details.get("mref", ""),
            "transaction_code": str(tx.get("id") or "").strip(),
        }
        refs = {k: st.clean_text(v) for k, v in refs.items() if v and v.upper() != _NO_REFERENCE}
        reference = next(
            (
                refs[k]
                for k in ("end_to_end_id", "customer_ref", "bank_ref", "mndt_id")
                if k in refs
            ),
            "",
        )
        # The bank's reference names the entry, with its date, amount and direction: a bank
        # reusing a reference (or writing NONREF) cannot make two entries one.
        line_id = ""
        if "bank_ref" in refs:
            line_id = f"{refs['bank_ref']}/{booking.isoformat()}/{direction.value}/{units}"
        return StatementLine(
            bank=account.bank, line_id=line_id, booked_at=booked_at, amount=units,
            currency=currency, direction=direction, reference=reference,
            counterparty=st.clean_text(details.get("iban", "") or details.get("name", "")),
            counterparty_name=st.clean_text(details.get("name", "")),
            memo=st.clean_text(details.get("memo", "")), account=written,
            statement_id=statement_id, booking_date=booking.isoformat(),
            value_date=value.isoformat(), reversal=reversal, references=refs, source=raw,
        )  # fmt: skip


_SEPA_KEYS = ("EREF", "MREF", "CRED", "REMI", "NAME", "IBAN", "BIC", "CNTP", "PURP", "ORDP", "BENM")


def _details(tx: dict[str, Any]) -> dict[str, str]:
    """The :86: field's parts we use (eref, mref, name, iban, memo). The package reads the
    German structured form itself (`166?00...?20EREF+x?21SVWZ+y?32name`); the SEPA-style
    `/EREF/x/NAME/y/REMI/z` is read here; anything else is the memo."""
    if "end_to_end_reference" in tx or "purpose" in tx:
        return {
            "eref": str(tx.get("end_to_end_reference") or ""),
            "mref": str(tx.get("additional_position_reference") or ""),
            "name": str(tx.get("applicant_name") or ""),
            "iban": str(tx.get("applicant_iban") or ""),
            "memo": str(tx.get("purpose") or tx.get("posting_text") or ""),
        }
    flat = str(tx.get("transaction_details") or "").replace("\n", "")
    if flat.startswith("/") and any(f"/{key}/" in flat for key in _SEPA_KEYS):
        return _sepa(flat)
    return {"memo": flat}


def _sepa(flat: str) -> dict[str, str]:
    parts = flat.split("/")
    found: dict[str, str] = {}
    n = 1
    while n < len(parts):
        key = parts[n]
        if key in _SEPA_KEYS:
            values: list[str] = []
            n += 1
            while n < len(parts) and parts[n] not in _SEPA_KEYS:
                values.append(parts[n])
                n += 1
            found[key] = "/".join(values).strip("/ ")
        else:
            n += 1
    cntp = found.get("CNTP", "").split("/")
    return {
        "eref": found.get("EREF", ""),
        "mref": found.get("MREF", ""),
        "name": found.get("NAME", "") or (cntp[2] if len(cntp) > 2 else ""),
        "iban": found.get("IBAN", "") or cntp[0],
        "memo": found.get("REMI", "").removeprefix("USTD//").removeprefix("STRD/CUR/"),
    }
