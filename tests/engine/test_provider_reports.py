"""A provider's trade report is read strictly: every bad row is named and nothing is taken from a
file with one; optional columns stay absent rather than becoming zero (an absent fee is not
compared); a row normalizes exactly as the provider's webhook of the same payout does, so a
report that agrees with the webhook is recognised as the same fact."""

from __future__ import annotations

from engine import matching
from engine.provider_reports import ReportLine, parse_csv
from engine.rails import PayoutState, PayoutStatus

HEADER = "trade_id,state,currency,amount,fee,rate,bank_reference,return_tx_hash,reported_at\n"
RETURN_TX = "0x" + "ab" * 32


def test_rows_parse_with_optional_columns_absent() -> None:
    parsed = parse_csv(
        "bitso",
        (
            HEADER + "BTS1,PAID,mxn,9000.5,1.25,17.95,SPEI9,,2026-11-30T10:00:00Z\n"
            f"BTS2,returned,MXN,500,,,,{RETURN_TX},2026-11-30T10:05:00Z\n"
        ).encode(),
    )
    first, second = parsed
    assert isinstance(first, ReportLine) and isinstance(second, ReportLine)
    assert (first.state, first.currency, first.amount, first.fee, first.rate) == (
        PayoutState.PAID, "MXN", 900050, 125, "17.95",
    )  # fmt: skip
    assert (second.state, second.fee, second.rate, second.bank_reference) == (
        PayoutState.RETURNED, None, None, None,
    )  # fmt: skip
    assert second.return_tx_hash == RETURN_TX


def test_a_row_normalizes_as_the_webhook_of_the_same_payout_does() -> None:
    [row] = parse_csv(
        "bitso", (HEADER + "BTS1,paid,MXN,9000.00,0,18.00,SPEI9,,2026-11-30T10:00:00Z\n").encode()
    )
    assert isinstance(row, ReportLine)
    webhook = PayoutStatus(
        provider="bitso", provider_trade_id="BTS1", state=PayoutState.PAID, currency="MXN",
        amount=900000, bank_reference="SPEI9", fee=0, rate="18.00",
    )  # fmt: skip
    assert matching.payout_facts(row.status()) == matching.payout_facts(webhook)


def test_every_bad_row_is_named_and_nothing_is_taken() -> None:
    problems = parse_csv(
        "bitso",
        (
            HEADER + "BTS1,paid,MXN,9000.00,,,,,2026-11-30T10:00:00Z\n"
            "BTS2,lost,MXN,1.00,,,,,2026-11-30T10:00:00Z\n"
            "BTS3,paid,XYZ,1.00,,,,,2026-11-30T10:00:00Z\n"
            "BTS4,paid,MXN,-1,,,,,2026-11-30T10:00:00Z\n"
            "BTS5,paid,MXN,1.00,x,,,,2026-11-30T10:00:00Z\n"
            "BTS6,paid,MXN,1.00,,0,,,2026-11-30T10:00:00Z\n"
            "BTS7,paid,MXN,1.00,,,,,today\n"
            "BTS8,returned,MXN,1.00,,,,0x12,2026-11-30T10:00:00Z\n"
            ",paid,MXN,1.00,,,,,2026-11-30T10:00:00Z\n"
            "BTS1,paid,MXN,9000.00,,,,,2026-11-30T10:00:00Z\n"
        ).encode(),
    )
    assert problems == [
        "row 2: state is paid or returned",
        "row 3: currency 'XYZ' is not one we know",
        "row 4: amount must be a positive MXN amount",
        "row 5: fee must be a MXN amount",
        "row 6: rate must be a positive decimal",
        "row 7: reported_at must be an RFC 3339 timestamp",
        "row 8: return_tx_hash must be a 0x-prefixed 32-byte hex hash",
        "row 9: trade_id is required",
        "row 10: trade BTS1 is paid twice in the file",
    ]


def test_a_file_that_is_not_a_report_is_refused() -> None:
    assert parse_csv("bitso", b"a,b\n1,2\n") == [
        "the header lacks amount, currency, reported_at, state, trade_id"
    ]
    assert parse_csv("bitso", HEADER.encode()) == ["the report has no rows"]
    assert parse_csv("bitso", b"\xff\xfe") == ["the file is not UTF-8 text"]
