"""The rules every statement format shares: amounts are converted to minor units exactly or
refused, a date is the bank's business day in the account's zone, a line's id is the same on
every read, a statement adds up (opening + booked lines = closing) and agrees with the ledger or
makes one case; our CSV layout is read strictly, any bad line refusing the file."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from engine import currencies, money
from engine import statements as st
from engine.reconciliation import Kind, Source
from engine.statements import (
    Accounts,
    Balance,
    BankAccount,
    Direction,
    EntryStatus,
    Statement,
    StatementLine,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
CSV = b"""line_id,booked_at,amount,currency,direction,reference,counterparty,memo
L1,2026-11-30T10:00:00Z,1500.00,USD,credit,DEP00000001,ACME SA,invoice 7
L2,2026-11-30T11:30:00Z,20.5,USD,debit,FEE-NOV,,monthly fee
"""


def test_every_asset_the_ledger_knows_has_its_iso_exponent() -> None:
    for asset in money.ASSETS.values():
        if asset.kind is money.AssetKind.FIAT:
            assert currencies.exponent(asset.code) == asset.scale
    assert (currencies.exponent("JPY"), currencies.exponent("KWD")) == (0, 3)
    assert currencies.exponent("CLF") == 4 and currencies.exponent("XAU") is None


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("8.85", "EUR", 885),
        ("8.850", "EUR", 885),
        ("18.15000", "EUR", 1815),
        ("1000,00", "EUR", 100000),
        ("50,", "EUR", 5000),
        ("2700", "JPY", 2700),
        ("2700.0", "JPY", 2700),
        ("1.234", "KWD", 1234),
        ("0", "USD", 0),
        ("8.855", "EUR", "amount 8.855 EUR has more decimals than EUR allows (2)"),
        ("27.5", "JPY", "amount 27.5 JPY has more decimals than JPY allows (0)"),
        ("-5.00", "EUR", "amount '-5.00' is not a decimal amount"),
        ("1e3", "EUR", "amount '1e3' is not a decimal amount"),
        ("1.00", "ZZZ", "currency 'ZZZ' is not an ISO 4217 currency"),
    ],
)
def test_amounts_are_exact_or_refused(text: str, currency: str, expected: int | str) -> None:
    found = st.minor_units(text, currency)
    if isinstance(expected, str):
        assert isinstance(found, str) and found.startswith(expected)
    else:
        assert found == expected


def test_a_date_is_the_business_day_in_the_accounts_zone() -> None:
    # 2026-11-30 starts at 23:00 UTC the day before in Berlin (UTC+1 in winter).
    assert st.day_start("2026-11-30", BERLIN) == _utc(2026, 11, 29, 23)
    assert st.day_end("2026-11-30", BERLIN) == _utc(2026, 11, 30, 23) - 1
    assert st.day_start("2026-07-01", BERLIN) == _utc(2026, 6, 30, 22)  # summer: UTC+2
    assert st.day_start("2026-02-30", BERLIN) is None
    assert st.day_start("30.11.2026", BERLIN) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00+01:00", (2026, 12, 1, 9)),
        ("2026-12-01T09:00:00Z", (2026, 12, 1, 9)),
        ("2026-12-01T10:00:00", (2026, 12, 1, 9)),  # no offset: Berlin time
        ("2026-12-01T10:00:00.000000000", (2026, 12, 1, 9)),  # nanoseconds, as banks write
        ("2026-12-01T04:00:00-0500", (2026, 12, 1, 9)),
    ],
)
def test_moments_with_or_without_an_offset(text: str, expected: tuple[int, ...]) -> None:
    assert st.moment(text, BERLIN) == _utc(*expected)


def test_a_moment_keeps_its_fraction_to_the_microsecond() -> None:
    assert st.moment("2026-12-01T09:00:00.1234569Z", BERLIN) == _utc(2026, 12, 1, 9) + 123_456
    assert st.moment("2026-12-01 09:00", BERLIN) is None


def _utc(year: int, month: int, day: int, hour: int = 0) -> int:
    moment = dt.datetime(year, month, day, hour, tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000


def test_accounts_are_found_as_banks_write_them() -> None:
    eur = BankAccount(bank="commerz", account="DE89370400440532013000", currency="EUR")
    known = Accounts([(eur, dt.UTC)])
    for written in (
        "DE89370400440532013000",
        "de89 3704 0044 0532 0130 00",
        "COBADEFFXXX/DE89370400440532013000",  # MT940 :25: BIC/account
        "DE89370400440532013000EUR",  # MT940 :25: account and currency
    ):
        assert known.find(written) == (eur, dt.UTC), written
    assert known.find("DE02120300000000202051") is None
    assert known.unknown("X1") == (
        "account X1 is not one of our bank accounts (configured: DE89370400440532013000)"
    )
    anything = Accounts([], accept_any=True).find("NL91 ABNA 0417 1643 00")
    assert anything is not None and anything[0].account == "NL91ABNA0417164300"
    assert anything[0].bank == st.UNCONFIGURED


def line(**fields: object) -> StatementLine:
    values: dict[str, object] = {
        "bank": "commerz", "line_id": "", "booked_at": 0, "amount": 100, "currency": "EUR",
        "direction": Direction.CREDIT, "reference": "R", "account": "DE89",
        "booking_date": "2026-12-02",
    }  # fmt: skip
    values.update(fields)
    return StatementLine(**values)  # type: ignore[arg-type]


def test_line_ids_are_the_same_on_every_read() -> None:
    """The bank's reference when it gives one; else a digest of what the line says; a second
    line with an id already taken is #2 (two identical fees on one day are two lines)."""
    lines = [line(line_id="BANK-1"), line(), line(), line(amount=200), line(line_id="BANK-1")]
    first, notes = st.with_ids(lines)
    again, _ = st.with_ids(lines)
    assert [x.line_id for x in first] == [x.line_id for x in again]
    ids = [x.line_id for x in first]
    assert ids[0] == "BANK-1" and ids[4] == "BANK-1#2"
    assert ids[1].startswith("h") and ids[2] == ids[1] + "#2" and ids[3] != ids[1]
    assert notes == [
        "1 entry with a bank reference used before in the file: each is kept as its own line"
        " (#2, #3, ...)"
    ]


def statement(*lines: StatementLine, opening: int = 1000, closing: int = 1100) -> Statement:
    return Statement(
        format="camt.053.001.08", bank="commerz", account="DE89", currency="EUR",
        statement_id="S1",
        balances=(
            Balance(code="OPBD", amount=opening, currency="EUR", date="2026-12-02", at=0),
            Balance(code="CLBD", amount=closing, currency="EUR", date="2026-12-02", at=10),
        ),
        lines=lines,
    )  # fmt: skip


def test_a_statement_adds_up_over_its_booked_lines_only() -> None:
    pending = line(amount=5000, status=EntryStatus.PENDING)
    adds_up = statement(line(amount=150), line(amount=50, direction=Direction.DEBIT), pending)
    sums = st.arithmetic(adds_up)
    assert sums is not None and (sums.credits, sums.debits, sums.problems) == (150, 50, ())
    assert st.problems(adds_up, 1100) == []
    short = statement(line(amount=150), closing=1200)
    assert st.problems(short, 1200) == [
        "OPBD 10.00 + credits 1.50 - debits 0.00 = 11.50 EUR, but CLBD says 12.00"
    ]
    assert st.arithmetic(Statement(format="csv", bank="b", account="", currency="",
                                   statement_id="")) is None  # fmt: skip


def test_a_statement_the_ledger_disagrees_with_is_one_balance_drift_case() -> None:
    agreed = statement(line(amount=100))
    assert st.closing_check(agreed) == ("bank:commerz", "EUR", 10)
    found = st.problems(agreed, 900)
    assert found == [
        "the ledger's bank:commerz holds 9.00 EUR at the end of 2026-12-02, the bank's closing"
        " balance is 11.00"
    ]
    case = st.finding(agreed, found, 900, "ex_1")
    assert (case.kind, case.source, case.evidence_ids) == (
        Kind.BALANCE_DRIFT,
        Source.BANK,
        ("ex_1",),
    )
    assert case.expected == {"ledger_account": "bank:commerz", "currency": "EUR", "amount": "900",
                             "computed_closing": "1100"}  # fmt: skip
    assert case.actual["closing"] == "1100" and case.actual["problems"] == found[0]


def test_a_balance_in_another_currency_does_not_add_up() -> None:
    odd = Statement(
        format="camt.053.001.02", bank="commerz", account="DE89", currency="EUR",
        statement_id="S2",
        balances=(
            Balance(code="OPBD", amount=1815, currency="EUR", date="2014-12-30", at=0),
            Balance(code="CLBD", amount=-2700, currency="SEK", date="2014-12-31", at=1),
        ),
        lines=(line(amount=885),),
    )  # fmt: skip
    sums = st.arithmetic(odd)
    assert sums is not None
    assert sums.problems[0] == "the CLBD balance is in SEK, the account in EUR"


def test_csv_statements_read_every_line() -> None:
    [found] = st.parse_csv("bank-us", CSV)
    assert isinstance(found, Statement) and found.format == "csv"
    first, second = found.lines
    assert (first.amount, first.direction, first.reference, first.counterparty) == (
        1_500_00, "credit", "DEP00000001", "ACME SA",
    )  # fmt: skip
    assert (second.amount, second.direction, second.line_id) == (20_50, "debit", "L2")
    assert first.normalized()["amount"] == "150000"


def test_a_bad_csv_file_is_refused_whole_with_every_problem() -> None:
    bad = CSV + b"L3,yesterday,1.00,USD,credit,X,,\nL4,2026-11-30T12:00:00Z,-5,USD,credit,Y,,\n"
    bad += b"L5,2026-11-30T12:00:00Z,5.001,USD,credit,Z,,\nL1,2026-11-30T12:00:00Z,5,XXX,in,W,,\n"
    assert st.parse_csv("bank-us", bad) == [
        "line 3: booked_at must be an RFC 3339 timestamp",
        "line 4: amount must be a positive USD amount",
        "line 5: amount must be a positive USD amount",
        "line 6: currency 'XXX' is not one we know",
    ]
    assert st.parse_csv("bank-us", b"a,b\n1,2\n") == [
        "the header lacks amount, booked_at, currency, direction, reference"
    ]
    assert st.parse_csv("bank-us", CSV + CSV.splitlines(keepends=True)[1]) == [
        "line 3: line_id L1 appears twice in the file"
    ]
    assert st.parse_csv("bank-us", b"\xff\xfe") == ["the file is not UTF-8 text"]


def test_decimal_text() -> None:
    assert st.decimal_text(125050, "EUR") == "1250.50"
    assert st.decimal_text(-1440, "JPY") == "-1440"
    assert st.decimal_text(5, "KWD") == "0.005"
