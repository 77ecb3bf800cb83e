"""Bank statements (Series 8: "always reconcile against bank statements"): one line per booked
movement on our account, read from a CSV file or a camt.053-style XML file (or pushed one by one by
the bank's statement webhook), normalized into the evidence schema. Parsing is strict: a file with
any bad line is refused whole, naming every problem, so a statement is never half-imported.

CSV columns (a header row, in any order; extra columns are ignored):
  line_id      the bank's id for the line (unique within the bank); defaults to the reference
  booked_at    RFC 3339 timestamp
  amount       decimal string in the currency's units, positive
  currency     ISO code we know (USD, MXN, ...)
  direction    credit (money in) or debit (money out)
  reference    the bank's reference for the movement (end-to-end id)
  counterparty the other party's account or name (optional)
  memo         remittance information (optional)

camt.053: each Ntry gives Amt (with Ccy), CdtDbtInd (CRDT/DBIT), BookgDt/DtTm, AcctSvcrRef
(line id), NtryDtls/TxDtls/Refs/EndToEndId (reference), RmtInf/Ustrd (memo) and the related
party's name or account (counterparty). Namespaces are ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

import msgspec

from engine import csvfiles
from engine.timefmt import parse_rfc3339

LINES_MAX = 100_000
TEXT_MAX = 200


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

    def normalized(self) -> dict[str, str]:
        return {
            "amount": str(self.amount),
            "currency": self.currency,
            "direction": self.direction,
            "reference": self.reference,
            "counterparty": self.counterparty,
            "memo": self.memo,
        }

    def raw(self) -> bytes:
        return msgspec.json.encode(self)


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
        **texts,
    )  # fmt: skip


def line(bank: str, fields: dict[str, str]) -> StatementLine | list[str]:
    """One line on its own (the bank's statement feed pushes lines one by one), or its
    problems."""
    problems: list[str] = []
    found = _line(bank, 1, fields, problems)
    return found if found is not None else problems


def parse_csv(bank: str, data: bytes) -> list[StatementLine] | list[str]:
    """The statement's lines, or every problem found (then nothing is imported)."""
    found = csvfiles.rows(data, {"booked_at", "amount", "currency", "direction", "reference"})
    return found if isinstance(found, list) else _collect(bank, found)


def _collect(bank: str, rows: Iterable[dict[str, str]]) -> list[StatementLine] | list[str]:
    lines: list[StatementLine] = []
    problems: list[str] = []
    seen: set[str] = set()
    for n, fields in enumerate(rows, start=1):
        if n > LINES_MAX:
            return [f"more than {LINES_MAX} lines"]
        line = _line(bank, n, fields, problems)
        if line is None:
            continue
        if line.line_id in seen:
            problems.append(f"line {n}: line_id {line.line_id} appears twice in the file")
            continue
        seen.add(line.line_id)
        lines.append(line)
    if problems:
        return problems
    if not lines:
        return ["the statement has no lines"]
    return lines


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node: ET.Element, *path: str) -> ET.Element | None:
    found: ET.Element | None = node
    for name in path:
        if found is None:
            return None
        found = next((c for c in found if _local(c.tag) == name), None)
    return found


def _text(node: ET.Element, *path: str) -> str:
    found = _find(node, *path)
    return (found.text or "").strip() if found is not None else ""


def parse_camt053(bank: str, data: bytes) -> list[StatementLine] | list[str]:
    """The entries of a camt.053 bank-to-customer statement, or every problem found."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return [f"not well-formed XML: {e}"]
    entries = [e for e in root.iter() if _local(e.tag) == "Ntry"]
    rows: list[dict[str, str]] = []
    for entry in entries:
        amount = _find(entry, "Amt")
        tx = _find(entry, "NtryDtls", "TxDtls")
        details = tx if tx is not None else entry
        credit = _text(entry, "CdtDbtInd") == "CRDT"
        party = ("RltdPties", "Dbtr" if credit else "Cdtr", "Nm")
        rows.append(
            {
                "amount": (amount.text or "").strip() if amount is not None else "",
                "currency": amount.get("Ccy", "") if amount is not None else "",
                "direction": _text(entry, "CdtDbtInd"),
                "booked_at": _text(entry, "BookgDt", "DtTm"),
                "line_id": _text(entry, "AcctSvcrRef"),
                "reference": _text(details, "Refs", "EndToEndId"),
                "counterparty": _text(details, *party),
                "memo": _text(details, "RmtInf", "Ustrd"),
            }
        )
    return _collect(bank, iter(rows))


def parse(bank: str, name: str, data: bytes) -> list[StatementLine] | list[str]:
    """By the file's name: .xml is camt.053, anything else CSV."""
    if name.lower().endswith(".xml"):
        return parse_camt053(bank, data)
    return parse_csv(bank, data)
