"""ISO 20022 cash management messages from a bank: camt.052 (account report), camt.053 (statement)
and camt.054 (debit/credit notification), versions 001.01 to 001.13, read into Statements.

The caller parses the bytes (adapters.statement_files, with defusedxml: a file from outside is
untrusted) and hands the element tree in; this module only reads it. Element names are the
standard's; namespaces are compared by the message they name, not by prefix. The differences
between versions that matter here are all read:

  entry status      <Sts>BOOK</Sts> (to 001.07) or <Sts><Cd>BOOK</Cd></Sts> (001.08 on)
  related parties   <Dbtr><Nm> (to 001.07) or <Dbtr><Pty><Nm> (001.08 on)
  transaction amount <TxDtls><AmtDtls><TxAmt><Amt> (001.02) or <TxDtls><Amt> (001.03 on)
  dates             <Dt> (a business day) or <DtTm> (a moment, with or without an offset)
  account           <Acct><Id><IBAN> or <Acct><Id><Othr><Id> (001.01: <PrtryAcct><Id>, <BBAN>)
  message name      <BkToCstmrStmt> (001.01: <BkToCstmrStmtV01>)
  transactions      <Ntry><NtryDtls><TxDtls> (001.01: also <Ntry><TxDtls>)

An entry (<Ntry>) is one booking on our account: its amount and direction are what the balance
moved by. An entry with several transactions (<TxDtls>, a batch) becomes one line per
transaction when their amounts, in the entry's currency and direction, add up to the entry's;
otherwise it stays one line (the booking is the fact; a note says so). A single <TxDtls> only
adds references and parties to its entry.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import msgspec

from engine import statements as st
from engine.problems import Problems
from engine.statements import Accounts, Balance, Direction, EntryStatus, Statement, StatementLine

# The message element -> (its family, the element of each statement in it).
MESSAGES = {
    "BkToCstmrStmt": ("camt.053", "Stmt"),
    "BkToCstmrDbtCdtNtfctn": ("camt.054", "Ntfctn"),
    "BkToCstmrAcctRpt": ("camt.052", "Rpt"),
}
VERSIONS = range(1, 14)
_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:([a-z]{4}\.[0-9]{3})\.001\.([0-9]{2})")
_DIRECTIONS = {"CRDT": Direction.CREDIT, "DBIT": Direction.DEBIT}
_STATUSES = {s.value: s for s in EntryStatus}
_NOT_PROVIDED = "NOTPROVIDED"
# Where an account's identifier is, by version: an IBAN or <Othr><Id>; in 001.01 also a
# proprietary account, a BBAN or a UPIC.
_ACCOUNT_IDS = (("IBAN",), ("Othr", "Id"), ("PrtryAcct", "Id"), ("BBAN",), ("UPIC",))
# Transaction references by element, in the order a line's `reference` prefers them.
_REFERENCES = (
    ("EndToEndId", "end_to_end_id"),
    ("InstrId", "instr_id"),
    ("TxId", "tx_id"),
    ("PmtInfId", "pmt_inf_id"),
    ("UETR", "uetr"),
    ("MndtId", "mndt_id"),
    ("ChqNb", "chq_nb"),
    ("ClrSysRef", "clr_sys_ref"),
    ("MsgId", "msg_id"),
    ("AcctSvcrRef", "acct_svcr_ref"),
)
_PREFERRED = (
    "end_to_end_id", "instr_id", "tx_id", "pmt_inf_id", "creditor_ref", "uetr", "mndt_id",
    "chq_nb", "clr_sys_ref", "tx_acct_svcr_ref", "acct_svcr_ref", "ntry_ref", "msg_id",
    "proprietary",
)  # fmt: skip


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _children(node: ET.Element | None, name: str) -> list[ET.Element]:
    if node is None:
        return []
    return [c for c in node if _local(c.tag) == name]


def _find(node: ET.Element | None, *path: str) -> ET.Element | None:
    found = node
    for name in path:
        if found is None:
            return None
        found = next((c for c in found if _local(c.tag) == name), None)
    return found


def _text(node: ET.Element | None, *path: str) -> str:
    found = _find(node, *path)
    return (found.text or "").strip() if found is not None else ""


def _texts(node: ET.Element | None, *path: str) -> list[str]:
    """Every element at `path` (the last step may repeat), its text."""
    *parents, last = path
    parent = _find(node, *parents)
    return [(c.text or "").strip() for c in _children(parent, last) if (c.text or "").strip()]


def message_kind(root: ET.Element) -> tuple[str, str, str] | str:
    """(family, version or "", the message element's name), or why the document is not a bank
    statement."""
    if _local(root.tag) != "Document":
        return f"the XML's root is <{_local(root.tag)}>, not an ISO 20022 <Document>"
    message = next(iter(root), None)
    if message is None:
        return "the <Document> is empty"
    namespace = _namespace(root.tag)
    named = _NAMESPACE.fullmatch(namespace)
    # Version 001.01 names its message with the version (<BkToCstmrStmtV01>).
    name = re.sub(r"V0[0-9]$", "", _local(message.tag))
    if name not in MESSAGES:
        what = f"{named.group(1)}.001.{named.group(2)}" if named else f"<{name}>"
        return f"the XML is {what}, not a bank statement (camt.052, camt.053 or camt.054)"
    family, _ = MESSAGES[name]
    if named is None:
        return family, "", name
    if named.group(1) != family:
        return f"the namespace says {named.group(1)} but the message is {family} (<{name}>)"
    version = int(named.group(2))
    if version not in VERSIONS:
        return (
            f"{family}.001.{named.group(2)} is not a version this reader knows (001.01 to"
            f" 001.{VERSIONS[-1]:02d})"
        )
    return family, f"001.{named.group(2)}", name


def read(root: ET.Element, accounts: Accounts) -> list[Statement] | list[str]:
    """Every statement in the document, or every problem found (then none is imported)."""
    kind = message_kind(root)
    if isinstance(kind, str):
        return [kind]
    family, version, name = kind
    message = next(iter(root))
    container = MESSAGES[name][1]
    blocks = _children(message, container)
    if not blocks:
        return [f"the {family} message holds no <{container}>"]
    if len(blocks) > st.STATEMENTS_MAX:
        return [f"more than {st.STATEMENTS_MAX} <{container}> in one file"]
    problems = Problems()
    reader = _Reader(
        format=f"{family}.{version}" if version else family,
        document_id=_text(message, "GrpHdr", "MsgId"),
        accounts=accounts,
        problems=problems,
    )
    found = [reader.statement(n, block, container) for n, block in enumerate(blocks, start=1)]
    if reader.lines > st.LINES_MAX:
        problems.add(f"more than {st.LINES_MAX} entries")
    if problems:
        return problems.listed()
    return [s for s in found if s is not None]


class _Reader:
    def __init__(
        self, *, format: str, document_id: str, accounts: Accounts, problems: Problems
    ) -> None:
        self.format = format
        self.document_id = document_id
        self.accounts = accounts
        self.problems = problems
        self.lines = 0

    def statement(self, n: int, block: ET.Element, container: str) -> Statement | None:
        statement_id = _text(block, "Id")
        where = f"<{container}> {n}" + (f" ({statement_id})" if statement_id else "")
        acct = _find(block, "Acct")
        written = next((text for path in _ACCOUNT_IDS if (text := _text(acct, "Id", *path))), "")
        if not written:
            self.problems.add(f"{where}: no account (<Acct><Id><IBAN> or <Othr><Id>)")
            return None
        found = self.accounts.find(written)
        if found is None:
            self.problems.add(f"{where}: {self.accounts.unknown(written)}")
            return None
        account, tz = found
        written = account.account
        currency = _text(acct, "Ccy") or account.currency
        created = st.moment(_text(block, "CreDtTm"), tz) if _text(block, "CreDtTm") else None
        balances = [
            b
            for i, bal in enumerate(_children(block, "Bal"), start=1)
            if (b := self._balance(f"{where} balance {i}", bal, tz)) is not None
        ]
        notes: list[str] = []
        lines: list[StatementLine] = []
        for i, entry in enumerate(_children(block, "Ntry"), start=1):
            self.lines += 1
            if self.lines > st.LINES_MAX:
                return None
            context = _Context(
                account=account, written=written, tz=tz, statement_id=statement_id,
                created_at=created,
            )  # fmt: skip
            lines.extend(self._entry(f"{where} entry {i}", entry, context, notes))
        booked, renamed = st.with_ids([x for x in lines if x.booked])
        pending, _ = st.with_ids([x for x in lines if not x.booked])
        notes.extend(renamed)
        if pending:
            statuses = sorted({x.status.value for x in pending})
            notes.append(
                f"{st.entries(len(pending))} not booked ({', '.join(statuses)}): read, not recorded"
            )
        return Statement(
            format=self.format, bank=account.bank, account=written, currency=currency,
            statement_id=statement_id, document_id=self.document_id, created_at=created,
            balances=tuple(balances), lines=tuple(booked + pending), notes=tuple(notes),
        )  # fmt: skip

    def _balance(self, where: str, bal: ET.Element, tz: dt.tzinfo) -> Balance | None:
        kind = _find(bal, "Tp")
        code = (
            _text(kind, "CdOrPrtry", "Cd")
            or _text(kind, "CdOrPrtry", "Prtry")
            or _text(kind, "Cd")
            or _text(kind, "Prtry")
        )
        amount = self._amount(where, _find(bal, "Amt"))
        indicator = _text(bal, "CdtDbtInd")
        dated = _find(bal, "Dt")
        if dated is None:
            self.problems.add(f"{where}: no <Dt>")
            return None
        date, at = self._date(where, dated, tz, end=not code.startswith("OP"))
        if amount is None or date is None or at is None:
            return None
        units, currency = amount
        if indicator not in _DIRECTIONS and not (indicator == "" and units == 0):
            self.problems.add(f"{where}: CdtDbtInd is CRDT or DBIT, not {indicator!r}")
            return None
        signed = -units if indicator == "DBIT" else units
        return Balance(code=code or "?", amount=signed, currency=currency, date=date, at=at)

    def _amount(self, where: str, node: ET.Element | None) -> tuple[int, str] | None:
        if node is None:
            self.problems.add(f"{where}: no <Amt>")
            return None
        currency = node.get("Ccy", "").strip().upper()
        units = st.minor_units(node.text or "", currency)
        if isinstance(units, str):
            self.problems.add(f"{where}: {units}")
            return None
        return units, currency

    def _date(
        self, where: str, node: ET.Element | None, tz: dt.tzinfo, *, end: bool
    ) -> tuple[str | None, int | None]:
        """A <Dt>/<DtTm> choice: (the date as written, the moment it stands for). A business
        day stands for its start, or with `end` its last microsecond."""
        if node is None:
            return None, None
        day = _text(node, "Dt")
        if day:
            at = st.day_end(day, tz) if end else st.day_start(day, tz)
            if at is None:
                self.problems.add(f"{where}: {day!r} is not a date (YYYY-MM-DD)")
            return day, at
        when = _text(node, "DtTm")
        at = st.moment(when, tz) if when else None
        if at is None:
            self.problems.add(f"{where}: {when!r} is not an ISO date-time")
            return None, None
        return when[:10], at

    def _entry(
        self, where: str, entry: ET.Element, context: _Context, notes: list[str]
    ) -> list[StatementLine]:
        amount = self._amount(where, _find(entry, "Amt"))
        indicator = _text(entry, "CdtDbtInd")
        direction = _DIRECTIONS.get(indicator)
        if direction is None:
            self.problems.add(f"{where}: CdtDbtInd is CRDT or DBIT, not {indicator!r}")
        status_node = _find(entry, "Sts")
        code = (
            (status_node.text or "").strip()
            or _text(status_node, "Cd")
            or _text(status_node, "Prtry")
            if status_node is not None
            else EntryStatus.BOOKED.value
        )
        status = _STATUSES.get(code)
        if status is None:
            self.problems.add(f"{where}: status {code!r} is not BOOK, PDNG, INFO or FUTR")
        booking, booked_at = self._date(where, _find(entry, "BookgDt"), context.tz, end=False)
        value, value_at = self._date(where, _find(entry, "ValDt"), context.tz, end=False)
        if booked_at is None and _find(entry, "BookgDt") is None:
            if value_at is not None:
                booked_at = value_at
            elif status is EntryStatus.BOOKED:
                self.problems.add(f"{where}: a booked entry with no <BookgDt> or <ValDt>")
            else:
                # An entry not booked may have no date yet: it is reported as of the statement.
                booked_at = context.created_at or 0
        if amount is None or direction is None or status is None or booked_at is None:
            return []
        units, currency = amount
        reversal = _text(entry, "RvslInd").lower() in ("true", "1")
        entry_refs = {
            key: value
            for key, value in (
                ("acct_svcr_ref", _text(entry, "AcctSvcrRef")),
                ("ntry_ref", _text(entry, "NtryRef")),
            )
            if value
        }
        # Transactions sit in <NtryDtls> (in 001.01, also right under the entry).
        txs = _children(entry, "TxDtls") + [
            t for details in _children(entry, "NtryDtls") for t in _children(details, "TxDtls")
        ]
        base = StatementLine(
            bank=context.account.bank, line_id=entry_refs.get("acct_svcr_ref", ""),
            booked_at=booked_at, amount=units, currency=currency, direction=direction,
            reference="", account=context.written, statement_id=context.statement_id,
            status=status, booking_date=booking or "", value_date=value or "",
            reversal=reversal, source=ET.tostring(entry, encoding="unicode"),
        )  # fmt: skip
        extra = _text(entry, "AddtlNtryInf")
        split = self._split(txs, units, currency, indicator) if len(txs) > 1 else None
        if split is None:
            if len(txs) > 1:
                notes.append(
                    f"{where}: {len(txs)} transactions whose amounts do not add up to the"
                    " entry's: kept as one line"
                )
            batch = _find(_find(entry, "NtryDtls"), "Btch")
            if batch is None:
                batch = _find(entry, "Btch")
            refs = dict(entry_refs)
            if batch is not None:
                refs.update(_refs(batch))
            tx = txs[0] if len(txs) == 1 else None
            return [_described(base, tx, refs, direction, extra)]
        found = []
        for i, (tx, tx_units) in enumerate(zip(txs, split, strict=True), start=1):
            tx_ref = _text(tx, "Refs", "AcctSvcrRef")
            entry_ref = entry_refs.get("acct_svcr_ref", "")
            if tx_ref and tx_ref != entry_ref:
                line_id = tx_ref
            else:
                line_id = f"{entry_ref}/{i}" if entry_ref else ""
            line = msgspec.structs.replace(base, line_id=line_id, amount=tx_units)
            found.append(_described(line, tx, dict(entry_refs), direction, extra))
        return found

    def _split(
        self, txs: list[ET.Element], units: int, currency: str, indicator: str
    ) -> list[int] | None:
        """Each transaction's amount when every one states it in the entry's currency and
        direction and together they make the entry; else None."""
        found: list[int] = []
        for tx in txs:
            node = _find(tx, "Amt")
            if node is None:
                node = _find(tx, "AmtDtls", "TxAmt", "Amt")
            if node is None or node.get("Ccy", "").strip().upper() != currency:
                return None
            tx_indicator = _text(tx, "CdtDbtInd")
            if tx_indicator and tx_indicator != indicator:
                return None
            amount = st.minor_units(node.text or "", currency)
            if isinstance(amount, str) or amount == 0:
                return None
            found.append(amount)
        return found if sum(found) == units else None


class _Context:
    __slots__ = ("account", "created_at", "statement_id", "tz", "written")

    def __init__(
        self,
        *,
        account: st.BankAccount,
        written: str,
        tz: dt.tzinfo,
        statement_id: str,
        created_at: int | None,
    ) -> None:
        self.account = account
        self.written = written
        self.tz = tz
        self.statement_id = statement_id
        self.created_at = created_at


def _refs(node: ET.Element | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for element, key in _REFERENCES:
        value = _text(node, element)
        if value and value.upper() != _NOT_PROVIDED:
            found[key] = value
    return found


def _party(tx: ET.Element | None, role: str) -> tuple[str, str]:
    """(account, name) of the debtor or creditor of a transaction."""
    parties = _find(tx, "RltdPties")
    account = _text(parties, f"{role}Acct", "Id", "IBAN") or _text(
        parties, f"{role}Acct", "Id", "Othr", "Id"
    )
    name = _text(parties, role, "Nm") or _text(parties, role, "Pty", "Nm")
    return account, name


def _described(
    line: StatementLine,
    tx: ET.Element | None,
    refs: dict[str, str],
    direction: Direction,
    extra: str,
) -> StatementLine:
    """The line with its transaction's references, counterparty and remittance information."""
    if tx is not None:
        tx_refs = _refs(_find(tx, "Refs"))
        if "acct_svcr_ref" in tx_refs:
            tx_refs["tx_acct_svcr_ref"] = tx_refs.pop("acct_svcr_ref")
        refs = {**refs, **tx_refs}
        proprietary = _find(tx, "Refs", "Prtry")
        if proprietary is not None and _text(proprietary, "Ref"):
            refs["proprietary"] = f"{_text(proprietary, 'Tp')} {_text(proprietary, 'Ref')}".strip()
        for structured in _children(_find(tx, "RmtInf"), "Strd"):
            ref = _text(structured, "CdtrRefInf", "Ref")
            if ref:
                refs.setdefault("creditor_ref", ref)
    refs = {k: st.clean_text(v) for k, v in refs.items()}
    reference = next((refs[k] for k in _PREFERRED if refs.get(k)), "")
    # The other party: who paid us on a credit, whom we paid on a debit.
    account, name = _party(tx, "Dbtr" if direction is Direction.CREDIT else "Cdtr")
    unstructured = " ".join(_texts(tx, "RmtInf", "Ustrd"))
    additional = " ".join(
        _text(s, "AddtlRmtInf") for s in _children(_find(tx, "RmtInf"), "Strd")
    ).strip()
    memo = unstructured or additional or _text(tx, "AddtlTxInf") or extra
    return msgspec.structs.replace(
        line,
        reference=reference,
        references=refs,
        counterparty=st.clean_text(account or name),
        counterparty_name=st.clean_text(name),
        memo=st.clean_text(memo),
    )
