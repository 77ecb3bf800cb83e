"""camt.052, camt.053 and camt.054 are read as ISO 20022 writes them, in every version's shape.

The fixtures (tests/fixtures/statements/camt*.xml) were written for these tests from the ISO
20022 message definitions, one per variant a bank sends: 001.01's versioned message name and
proprietary account, 001.02's <Dt> dates and text <Sts>, 001.03/.04's transaction amounts and
<Othr> accounts, 001.08's <Sts><Cd> and <Pty> parties, batches that add up and one that does
not, reversals, pending entries, several statements per file, every balance type, five-decimal
amounts and a statement with no entries. Each test states what a bank's file must become; the
refusals name what is wrong. The element tree is parsed here with the standard library (the
fixtures are ours); files from outside go through defusedxml (tests/adapters).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zoneinfo
from pathlib import Path

import pytest

from engine import camt
from engine import statements as st
from engine.statements import Accounts, BankAccount, Direction, EntryStatus, Statement

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"
ZONES = {
    "Europe/Berlin": zoneinfo.ZoneInfo("Europe/Berlin"),
    "America/New_York": zoneinfo.ZoneInfo("America/New_York"),
    "Europe/Zurich": zoneinfo.ZoneInfo("Europe/Zurich"),
    "Europe/Bucharest": zoneinfo.ZoneInfo("Europe/Bucharest"),
    "Asia/Tokyo": zoneinfo.ZoneInfo("Asia/Tokyo"),
}
OURS = (
    BankAccount(bank="commerz", account="DE89370400440532013000", currency="EUR",
                timezone="Europe/Berlin"),
    BankAccount(bank="chase", account="000123456789", currency="USD",
                timezone="America/New_York"),
    BankAccount(bank="ubs", account="CH9300762011623852957", currency="CHF",
                timezone="Europe/Zurich"),
    BankAccount(bank="bcr", account="RO49AAAA1B31007593840000", currency="RON",
                timezone="Europe/Bucharest"),
    BankAccount(bank="mufg", account="1234567", currency="JPY", timezone="Asia/Tokyo"),
)  # fmt: skip
ACCOUNTS = Accounts([(a, ZONES[a.timezone]) for a in OURS])


def read(name: str, accounts: Accounts = ACCOUNTS) -> list[Statement]:
    found = camt.read(ET.fromstring((FIXTURES / name).read_bytes()), accounts)
    assert found and all(isinstance(s, Statement) for s in found), found
    return [s for s in found if isinstance(s, Statement)]


def problems(xml: str, accounts: Accounts = ACCOUNTS) -> list[str]:
    found = camt.read(ET.fromstring(xml), accounts)
    assert all(isinstance(p, str) for p in found), found
    return [p for p in found if isinstance(p, str)]


def us(text: str) -> int:
    found = st.moment(text, ZONES["Europe/Berlin"])
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("camt052.001.01.xml", [("camt.052.001.01", "ubs", 1, 0)]),
        ("camt052.001.08.xml", [("camt.052.001.08", "commerz", 1, 1)]),
        ("camt053.001.02.minimal.xml", [("camt.053.001.02", "commerz", 1, 0)]),
        ("camt053.001.02.multi.xml", [("camt.053.001.02", "commerz", 1, 0)] * 2),
        ("camt053.001.02.balance-only.xml", [("camt.053.001.02", "bcr", 0, 0)]),
        ("camt053.001.03.xml", [("camt.053.001.03", "mufg", 1, 0)]),
        ("camt053.001.04.xml", [("camt.053.001.04", "chase", 1, 0)]),
        ("camt053.001.08.xml", [("camt.053.001.08", "commerz", 4, 1)]),
        ("camt054.001.02.xml", [("camt.054.001.02", "chase", 1, 0)]),
        ("camt054.001.08.xml", [("camt.054.001.08", "ubs", 1, 0)]),
    ],
)
def test_every_version_and_message_is_read(
    name: str, shape: list[tuple[str, str, int, int]]
) -> None:
    """(format, bank, booked lines, lines not booked) per statement in the file; every
    statement that states an opening and a closing balance adds up."""
    found = read(name)
    assert [(s.format, s.bank, len(s.booked), len(s.not_booked)) for s in found] == shape
    for statement in found:
        sums = st.arithmetic(statement)
        assert sums is None or sums.problems == (), sums


def test_001_02_dates_are_business_days_and_references_come_from_the_remittance() -> None:
    [statement] = read("camt053.001.02.minimal.xml")
    [credit] = statement.lines
    assert (credit.amount, credit.currency, credit.direction) == (25050, "EUR", "credit")
    assert credit.booking_date == "2026-11-30" and credit.value_date == "2026-12-01"
    assert credit.booked_at == us("2026-11-30T00:00:00")  # midnight in Berlin
    # No AcctSvcrRef: the id is a digest of the line, the reference its creditor reference.
    assert credit.line_id.startswith("h") and credit.reference == "RF18539007547034"
    assert credit.references == {
        "proprietary": "LegalSequenceNumber 100", "creditor_ref": "RF18539007547034",
    }  # fmt: skip
    assert (credit.counterparty, credit.counterparty_name) == (
        "DE02120300000000202051",
        "ACME GMBH",
    )
    assert statement.created_at == us("2026-12-01T06:05:00+01:00")
    assert [b.code for b in statement.balances] == ["OPBD", "CLBD"]


def test_several_statements_a_debit_and_amounts_with_trailing_zeros() -> None:
    first, second = read("camt053.001.02.multi.xml")
    assert first.account == second.account == "DE89370400440532013000"  # spaces removed
    [debit] = second.lines
    assert (debit.direction, debit.amount, debit.line_id) == ("debit", 2750, "2026120200007")
    # NOTPROVIDED is no reference; the instruction id is the next best.
    assert debit.reference == "PAY-INSTR-9" and "end_to_end_id" not in debit.references
    assert debit.counterparty == "FR1420041010050500013M02606"
    assert second.balance(*st.OPENING_CODES) is not None
    assert second.balance(*st.OPENING_CODES).code == "PRCD"  # type: ignore[union-attr]


def test_001_04_other_account_ids_and_booking_moments() -> None:
    [statement] = read("camt053.001.04.xml")
    [credit] = statement.lines
    assert statement.account == "000123456789" and statement.currency == "USD"
    assert credit.line_id == "CHASE-20261201-000451" and credit.reference == "DEP00000001"
    assert credit.booked_at == us("2026-12-01T15:00:00Z")
    assert credit.memo == "invoice 7" and credit.counterparty == "9876543210"


def test_001_08_batches_reversals_pending_and_every_balance_type() -> None:
    [statement] = read("camt053.001.08.xml")
    one, two, three, reversal, pending = statement.lines
    # A batch whose transactions add up to the entry: one line each, each its own reference.
    assert [(x.line_id, x.amount, x.reference) for x in (one, two, three)] == [
        ("CB-20261202-BATCH-1/1", 10000, "E2E-BATCH-1"),
        ("CB-20261202-BATCH-1/2", 12000, "E2E-BATCH-2"),
        ("CB-20261202-BATCH-1-C", 18000, "E2E-BATCH-3"),  # its own AcctSvcrRef
    ]
    assert one.references["uetr"] == "8a562c67-ca16-48ba-b074-65581be6f011"
    assert one.counterparty_name == "Payer One" and two.memo == "second of three"
    assert one.booked_at == us("2026-12-02T09:30:00")  # no offset: the account's zone
    # A reversal keeps the direction the money moved.
    assert (reversal.direction, reversal.reversal, reversal.amount) == ("debit", True, 15000)
    assert reversal.memo == "Return of an earlier credit: account closed"
    assert reversal.normalized()["reversal"] == "true"
    assert (pending.status, pending.booking_date, pending.value_date) == (
        EntryStatus.PENDING, "", "2026-12-03",
    )  # fmt: skip
    codes = [b.code for b in statement.balances]
    assert codes == ["PRCD", "OPBD", "OPAV", "ITBD", "CLBD", "CLAV", "FWAV", "INFO", "XPCD"]
    assert statement.balance("INFO").amount == -500  # type: ignore[union-attr]
    sums = st.arithmetic(statement)
    assert sums is not None and (sums.opening, sums.credits, sums.debits, sums.closing) == (
        127300, 40000, 15000, 152300,
    )  # fmt: skip
    assert statement.notes == ("1 entry not booked (PDNG): read, not recorded",)


def test_a_batch_that_does_not_add_up_stays_one_line() -> None:
    [notice] = read("camt054.001.08.xml")
    [entry] = notice.lines
    assert (entry.direction, entry.amount, entry.currency) == (Direction.DEBIT, 650, "CHF")
    assert entry.line_id == "UBS-ACSR-20261202-01" and entry.reference == "PAIN001-0042-PI1"
    assert entry.references["msg_id"] == "PAIN001-0042" and entry.memo == "Order"
    assert notice.notes == (
        "<Ntfctn> 1 (NTF-CH-0042-1) entry 1: 2 transactions whose amounts do not add up to the"
        " entry's: kept as one line",
    )
    assert notice.balances == ()  # a notification states none


def test_a_notification_and_the_statement_name_the_same_entry_alike() -> None:
    [notified] = read("camt054.001.02.xml")
    [stated] = read("camt053.001.04.xml")
    assert notified.lines[0].line_id == stated.lines[0].line_id
    assert notified.lines[0].amount == stated.lines[0].amount


def test_001_01_and_intraday_reports() -> None:
    [v01] = read("camt052.001.01.xml")
    [credit] = v01.lines
    assert (v01.account, credit.reference, credit.counterparty_name) == (
        "CH9300762011623852957", "V01-E2E-1", "Payer name",
    )  # fmt: skip
    assert credit.references["pmt_inf_id"] == "FINP-0055-001"
    [report] = read("camt052.001.08.xml")
    fee, pending = report.lines
    assert (fee.direction, fee.amount, fee.memo) == ("debit", 1200, "Account fee November")
    assert pending.status is EntryStatus.PENDING and st.arithmetic(report) is None


def test_a_balance_only_statement_in_five_decimals() -> None:
    [statement] = read("camt053.001.02.balance-only.xml")
    assert statement.lines == () and statement.currency == "RON"
    [opening] = statement.balances
    assert (opening.code, opening.amount, opening.date) == ("OPBD", 544209, "2026-07-23")
    bucharest = ZONES["Europe/Bucharest"]
    assert opening.at == st.moment("2026-07-23T00:00:00", bucharest)
    assert statement.created_at == st.moment("2026-07-24T06:10:29", bucharest)


def test_an_overdrawn_account_in_a_currency_without_decimals() -> None:
    [statement] = read("camt053.001.03.xml")
    assert [(b.code, b.amount) for b in statement.balances] == [("OPBD", -1000), ("CLBD", -1440)]
    assert statement.lines[0].amount == 440


MINIMAL = (FIXTURES / "camt053.001.02.minimal.xml").read_text()


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("DE89370400440532013000", "DE02120300000000202051"),
         "<Stmt> 1 (STMT-20261130-0001-EUR): account DE02120300000000202051 is not one of our"
         " bank accounts (configured: 000123456789, 1234567, CH9300762011623852957,"
         " DE89370400440532013000, RO49AAAA1B31007593840000)"),
        (('<Amt Ccy="EUR">250.50</Amt>', '<Amt Ccy="EUR">250.505</Amt>'),
         "<Stmt> 1 (STMT-20261130-0001-EUR) entry 1: amount 250.505 EUR has more decimals"
         " than EUR allows (2): it cannot be booked exactly"),
        (('<Amt Ccy="EUR">250.50</Amt>', '<Amt Ccy="EUR">-250.50</Amt>'),
         "<Stmt> 1 (STMT-20261130-0001-EUR) entry 1: amount '-250.50' is not a decimal amount"),
        (("<Sts>BOOK</Sts>", "<Sts>DONE</Sts>"),
         "<Stmt> 1 (STMT-20261130-0001-EUR) entry 1: status 'DONE' is not BOOK, PDNG, INFO or"
         " FUTR"),
        (("<Dt>2026-11-30</Dt></BookgDt>", "<Dt>30.11.2026</Dt></BookgDt>"),
         "<Stmt> 1 (STMT-20261130-0001-EUR) entry 1: '30.11.2026' is not a date (YYYY-MM-DD)"),
        (("<CdtDbtInd>CRDT</CdtDbtInd>\n        <RvslInd>", "<CdtDbtInd>IN</CdtDbtInd><RvslInd>"),
         "<Stmt> 1 (STMT-20261130-0001-EUR) entry 1: CdtDbtInd is CRDT or DBIT, not 'IN'"),
        (("<Dt><Dt>2026-11-30</Dt></Dt>\n      </Bal>\n      <Bal>", "</Bal>\n      <Bal>"),
         "<Stmt> 1 (STMT-20261130-0001-EUR) balance 1: no <Dt>"),
        (("<BookgDt><Dt>2026-11-30</Dt></BookgDt>\n        <ValDt><Dt>2026-12-01</Dt></ValDt>", ""),
         "<Stmt> 1 (STMT-20261130-0001-EUR) entry 1: a booked entry with no <BookgDt> or <ValDt>"),
        (("camt.053.001.02", "camt.053.001.14"),
         "camt.053.001.14 is not a version this reader knows (001.01 to 001.13)"),
        (("xsd:camt.053.001.02", "xsd:camt.054.001.02"),
         "the namespace says camt.054 but the message is camt.053 (<BkToCstmrStmt>)"),
        (("BkToCstmrStmt>", "CstmrCdtTrfInitn>"),
         "the XML is camt.053.001.02, not a bank statement (camt.052, camt.053 or camt.054)"),
    ],
)  # fmt: skip
def test_what_cannot_be_read_is_refused_naming_it(edit: tuple[str, str], problem: str) -> None:
    old, new = edit
    assert old in MINIMAL
    assert problems(MINIMAL.replace(old, new)) == [problem]


def test_an_entry_not_booked_yet_may_have_no_date() -> None:
    """A pending entry without booking or value date is still read and reported (as of the
    statement's creation), never dropped unseen."""
    undated = MINIMAL.replace("<Sts>BOOK</Sts>", "<Sts>PDNG</Sts>").replace(
        "<BookgDt><Dt>2026-11-30</Dt></BookgDt>\n        <ValDt><Dt>2026-12-01</Dt></ValDt>", ""
    )
    [statement] = camt.read(ET.fromstring(undated), ACCOUNTS)
    assert isinstance(statement, Statement)
    [pending] = statement.not_booked
    assert (pending.amount, pending.booking_date, pending.booked_at) == (
        25050, "", statement.created_at,
    )  # fmt: skip


def test_every_problem_is_named_at_once() -> None:
    broken = MINIMAL.replace('<Amt Ccy="EUR">1000.00</Amt>', '<Amt Ccy="EUR">1000.001</Amt>')
    broken = broken.replace("<Sts>BOOK</Sts>", "<Sts>DONE</Sts>")
    found = problems(broken)
    assert len(found) == 2 and "balance 1: amount 1000.001 EUR" in found[0]
    assert "status 'DONE'" in found[1]


def test_a_payment_initiation_or_another_root_is_not_a_statement() -> None:
    pain = (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">'
        "<CstmrCdtTrfInitn/></Document>"
    )
    assert problems(pain) == [
        "the XML is pain.001.001.03, not a bank statement (camt.052, camt.053 or camt.054)"
    ]
    assert problems("<Statement/>") == [
        "the XML's root is <Statement>, not an ISO 20022 <Document>"
    ]
    empty = '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
    assert problems(empty + "<GrpHdr/></BkToCstmrStmt></Document>") == [
        "the camt.053 message holds no <Stmt>"
    ]
