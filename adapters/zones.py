"""Time zones by name, from the time zone database (the `tzdata` package where the system has
none): a bank's business day is a day in its zone."""

from __future__ import annotations

import datetime as dt
import zoneinfo


class UnknownTimezone(ValueError):
    pass


def timezone(name: str) -> dt.tzinfo:
    if name in ("UTC", "Z"):
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(f"time zone {name!r} is not in the time zone database") from None
