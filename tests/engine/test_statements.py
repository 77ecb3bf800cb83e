"""Bank statements are parsed strictly: CSV and camt.053 give the same lines; any bad line
refuses the whole file, naming every problem."""

from __future__ import annotations

from engine.statements import StatementLine, parse

CSV = b"""line_id,booked_at,amount,currency,direction,reference,counterparty,memo
L1,2026-11-30T10:00:00Z,1500.00,USD,credit,DEP00000001,ACME SA,invoice 7
L2,2026-11-30T11:30:00Z,20.5,USD,debit,FEE-NOV,,monthly fee
"""
CAMT = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>
<Ntry><Amt Ccy="USD">1500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
 <BookgDt><DtTm>2026-11-30T10:00:00Z</DtTm></BookgDt><AcctSvcrRef>L1</AcctSvcrRef>
 <NtryDtls><TxDtls><Refs><EndToEndId>DEP00000001</EndToEndId></Refs>
  <RltdPties><Dbtr><Nm>ACME SA</Nm></Dbtr></RltdPties><RmtInf><Ustrd>invoice 7</Ustrd></RmtInf>
 </TxDtls></NtryDtls></Ntry>
<Ntry><Amt Ccy="USD">20.5</Amt><CdtDbtInd>DBIT</CdtDbtInd>
 <BookgDt><DtTm>2026-11-30T11:30:00Z</DtTm></BookgDt><AcctSvcrRef>L2</AcctSvcrRef>
 <NtryDtls><TxDtls><Refs><EndToEndId>FEE-NOV</EndToEndId></Refs>
  <RmtInf><Ustrd>monthly fee</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>"""


def test_csv_and_camt053_give_the_same_lines() -> None:
    from_csv, from_xml = parse("bank-us", "nov.csv", CSV), parse("bank-us", "nov.xml", CAMT)
    assert from_csv == from_xml
    first, second = from_csv
    assert isinstance(first, StatementLine) and isinstance(second, StatementLine)
    assert (first.amount, first.direction, first.reference, first.counterparty) == (
        1_500_00, "credit", "DEP00000001", "ACME SA",
    )  # fmt: skip
    assert (second.amount, second.direction, second.line_id) == (20_50, "debit", "L2")
    assert first.normalized()["amount"] == "150000"


def test_a_bad_file_is_refused_whole_with_every_problem() -> None:
    bad = CSV + b"L3,yesterday,1.00,USD,credit,X,,\nL4,2026-11-30T12:00:00Z,-5,USD,credit,Y,,\n"
    bad += b"L5,2026-11-30T12:00:00Z,5.001,USD,credit,Z,,\nL1,2026-11-30T12:00:00Z,5,XXX,in,W,,\n"
    problems = parse("bank-us", "nov.csv", bad)
    assert problems == [
        "line 3: booked_at must be an RFC 3339 timestamp",
        "line 4: amount must be a positive USD amount",
        "line 5: amount must be a positive USD amount",
        "line 6: currency 'XXX' is not one we know",
    ]
    assert parse("bank-us", "x.csv", b"a,b\n1,2\n") == [
        "the header lacks amount, booked_at, currency, direction, reference"
    ]
    assert parse("bank-us", "x.csv", CSV + CSV.splitlines(keepends=True)[1]) == [
        "line 3: line_id L1 appears twice in the file"
    ]
    [xml_problem] = parse("bank-us", "x.xml", b"<Document>")
    assert isinstance(xml_problem, str) and xml_problem.startswith("not well-formed XML")
    assert parse("bank-us", "x.csv", b"\xff\xfe") == ["the file is not UTF-8 text"]
