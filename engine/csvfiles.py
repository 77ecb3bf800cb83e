"""Reading the files operators feed by hand (bank statements, provider trade reports): CSV in
UTF-8 (with or without a byte-order mark), a header row naming the columns in any order, blank
cells read as empty text; and the checks their rows share."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from engine import money
from engine.results import Result


def rows(data: bytes, needed: set[str]) -> Iterator[dict[str, str]] | list[str]:
    """The data rows (column -> text), or the problems that stop the file being read at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ["the file is not UTF-8 text"]
    reader = csv.DictReader(io.StringIO(text))
    missing = needed - set(reader.fieldnames or ())
    if missing:
        return [f"the header lacks {', '.join(sorted(missing))}"]
    return ({k: v or "" for k, v in row.items() if k} for row in reader)


def positive_amount(
    fields: dict[str, str], where: str, problems: list[str]
) -> tuple[money.Asset, int] | None:
    """The row's currency (one we know) and its amount in minor units (positive), or None with
    the problem noted."""
    currency = fields.get("currency", "").strip().upper()
    asset = money.asset(currency)
    if asset is None:
        problems.append(f"{where}: currency {currency!r} is not one we know")
        return None
    amount = money.parse_amount(fields.get("amount", "").strip(), asset)
    if isinstance(amount, Result) or amount <= 0:
        problems.append(f"{where}: amount must be a positive {currency} amount")
        return None
    return asset, amount
