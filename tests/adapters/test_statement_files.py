"""Statement files as banks deliver them: the format is told by the content; XML from outside is
parsed without DTDs or entities (a billion-laughs file or an external entity is refused, not
expanded); MT940 is read with the mt-940 package, SWIFT-wrapped messages, several statements,
both structured :86: forms and reversal marks included; an account that is not ours refuses the
file, naming it.

The MT940 fixtures were written for these tests to SWIFT's MT940 field layout (:20: :25: :28C:
:60F:/:60M: :61: :86: :62F:/:62M: :64:), one in the SEPA-style :86: (/EREF/.../REMI/...), one
wrapped in SWIFT blocks with the German structured :86: (166?00...?20EREF+...) in ISO-8859-1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import statement_files as sf
from adapters import zones
from engine import statements as st
from engine.statements import BankAccount, Direction, Statement

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"
COMMERZ = BankAccount(
    bank="commerz", account="DE89370400440532013000", currency="EUR", timezone="Europe/Berlin"
)
KNOWN = sf.accounts([COMMERZ])


def read(data: bytes, known: st.Accounts = KNOWN) -> list[Statement] | list[str]:
    return sf.read("statement", data, known, csv_bank="bank-sim")


def statements(name: str) -> list[Statement]:
    found = read((FIXTURES / name).read_bytes())
    assert found and all(isinstance(s, Statement) for s in found), found
    return [s for s in found if isinstance(s, Statement)]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b'\xef\xbb\xbf  <?xml version="1.0"?><Document/>', "xml"),
        (b"{1:F01COBADEFFAXXX0000000000}{2:O940}{4:\r\n:20:X", "mt940"),
        (b"\r\n:20:STARTUMS\r\n:25:DE89\r\n", "mt940"),
        (b"line_id,booked_at,amount\n", "csv"),
    ],
)
def test_the_format_is_told_by_the_content(data: bytes, kind: str) -> None:
    assert sf.kind_of(data) == kind


def test_xml_with_entities_or_a_dtd_is_refused_unexpanded() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<Document>&lol2;</Document>"
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Document>&x;</Document>"
    )
    for data in (laughs, external):
        [problem] = read(data)
        assert isinstance(problem, str) and problem.startswith("refused XML: DTDForbidden")
    [broken] = read(b"<Document><BkToCstmrStmt>")
    assert isinstance(broken, str) and broken.startswith("not well-formed XML")


def test_a_camt_file_goes_through_the_safe_parser_to_the_camt_reader() -> None:
    [statement] = statements("camt053.001.02.minimal.xml")
    assert (statement.format, statement.bank, len(statement.lines)) == (
        "camt.053.001.02", "commerz", 1,
    )  # fmt: skip


def test_mt940_sepa_style_two_statements() -> None:
    first, second = statements("mt940.sepa.sta")
    assert (first.format, first.statement_id, first.document_id) == (
        "mt940", "00331/001", "STARTUMS",
    )  # fmt: skip
    assert [(b.code, b.amount) for b in first.balances] == [
        ("OPBD", 100000), ("CLBD", 123850), ("CLAV", 123850),
    ]  # fmt: skip
    credit, fee = first.lines
    assert (credit.direction, credit.amount, credit.reference) == ("credit", 25050, "DEP-77")
    assert credit.counterparty == "DE02120300000000202051"
    assert credit.counterparty_name == "ACME GMBH" and credit.memo == "invoice 7 top-up"
    assert credit.line_id == "CB2611300001/2026-11-30/credit/25050"
    assert credit.booked_at == st.day_start("2026-11-30", zones.timezone("Europe/Berlin"))
    assert (fee.direction, fee.amount, fee.memo) == ("debit", 1200, "Account fee November")
    assert fee.references == {"bank_ref": "CB2611300002", "transaction_code": "NMSC"}
    assert second.lines[0].amount == 5000  # written "50,"
    for statement in (first, second):
        sums = st.arithmetic(statement)
        assert sums is not None and sums.problems == ()


def test_mt940_swift_blocks_german_details_and_a_reversal() -> None:
    part_one, part_two = statements("mt940.swift.sta")
    assert part_one.account == "DE89370400440532013000"  # :25: was BIC/account
    credit, reversal = part_one.lines
    assert (credit.reference, credit.counterparty) == ("E2E-DE-1", "DE02120300000000202051")
    assert credit.counterparty_name == "Müller Handels GmbH"  # ISO-8859-1 read as such
    assert credit.memo == "Rechnung 4711 Müller"
    # RC: the reversal of a credit takes money out.
    assert (reversal.direction, reversal.reversal) == (Direction.DEBIT, True)
    assert reversal.reference == "DEP-RETURNED-4"
    # A statement over two messages: each part adds up between its intermediate balances.
    assert [b.code for b in part_one.balances] == ["OPBD", "CLIT"]
    assert [b.code for b in part_two.balances] == ["OPIT", "CLBD"]
    for part in (part_one, part_two):
        sums = st.arithmetic(part)
        assert sums is not None and sums.problems == ()
    assert st.closing_check(part_one) is None  # only the final closing meets the ledger
    assert st.closing_check(part_two) is not None


def test_mt940_refusals_name_the_statement_and_the_problem() -> None:
    text = (FIXTURES / "mt940.sepa.sta").read_bytes()
    [unknown] = read(text.replace(b"DE89370400440532013000", b"NL91ABNA0417164300", 1))
    assert unknown == (
        "statement 1 (STARTUMS): account NL91ABNA0417164300 is not one of our bank accounts"
        " (configured: DE89370400440532013000)"
    )
    [decimals] = read(text.replace(b"C250,50NTRF", b"C250,505NTRF"))
    assert decimals == (
        "statement 1 (STARTUMS) :61: line 1: amount 250.505 EUR has more decimals than EUR"
        " allows (2): it cannot be booked exactly"
    )
    [mark] = read(text.replace(b"1130C250,50", b"1130X250,50"))
    assert mark == ("statement 1: :61: cannot be read: '2611301130X250,50NTRFDEP-77//CB2611300001'")
    assert read(b":21:nothing\r\n:25:x\r\n") == ["MT940: no statement (no :20: tag)"]


def test_a_csv_statement_is_our_layout_for_the_named_bank() -> None:
    data = (
        b"line_id,booked_at,amount,currency,direction,reference\n"
        b"L1,2026-11-30T10:00:00Z,1.00,USD,credit,R1\n"
    )
    [statement] = statements_of(data)
    assert (statement.format, statement.bank, statement.lines[0].line_id) == (
        "csv", "bank-sim", "L1",
    )  # fmt: skip


def statements_of(data: bytes) -> list[Statement]:
    found = read(data)
    return [s for s in found if isinstance(s, Statement)]


def test_an_unknown_time_zone_is_named() -> None:
    with pytest.raises(zones.UnknownTimezone, match="'Mars/Olympus' is not in the time zone"):
        sf.accounts([BankAccount(bank="x", account="X1", currency="EUR", timezone="Mars/Olympus")])
