"""The sanctions list's files on disk (engine.sanctions reads their text).

`[sanctions] files` names OFAC's CSV files, or a directory holding them (every file in it with
one of OFAC's published names is taken: SDN.CSV, ALT.CSV, ADD.CSV, SDN_COMMENTS.CSV and the
consolidated list's CONS_*.CSV). OFAC's legacy files are ASCII; a file that is not UTF-8 is read
as Windows-1252, as older downloads are. The list's date is `[sanctions] published` (the
publication date, YYYY-MM-DD) when configured, else the newest file's modification time; a list
older than `max_age_days` raises an operator alert (actors.sanctions).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from engine import sanctions
from engine.sanctions import ListFile, ListInForce, SanctionsList
from engine.timefmt import micros

DAY_US = 86_400 * 1_000_000
FILE_BYTES_MAX = 64 * 1024 * 1024
MAX_AGE_DAYS_DEFAULT = 7


class ListUnusable(ValueError):
    """The configured files cannot be brought into force (a one-line reason)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SanctionsSource:
    """Where the list comes from: the files (or directories), and how its age is judged."""

    paths: tuple[Path, ...] = ()
    # The publication date (YYYY-MM-DD), if the operator states it.
    published: str | None = None
    max_age_days: int = MAX_AGE_DAYS_DEFAULT

    @property
    def max_age_us(self) -> int:
        return self.max_age_days * DAY_US


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedList:
    listed: SanctionsList
    sources: tuple[str, ...]
    file_date: int

    def in_force(self, source: SanctionsSource, now: int) -> ListInForce:
        return ListInForce(
            holdings=self.listed.holdings,
            sources=self.sources,
            file_date=self.file_date,
            loaded_at=now,
            max_age_us=source.max_age_us,
        )


def published_us(text: str) -> int | None:
    """A YYYY-MM-DD date as the microsecond its day starts (UTC), or None."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return micros(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))


def expand(paths: tuple[Path, ...]) -> list[Path]:
    """The files: each path given, a directory as its files with OFAC's names (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.name.lower() in _OFAC_NAMES)
            )
        else:
            found.append(path)
    return found


_OFAC_NAMES = frozenset(sanctions.OFAC_FILES)


def _text(path: Path) -> str:
    try:
        if path.stat().st_size > FILE_BYTES_MAX:
            raise ListUnusable(f"{path}: over {FILE_BYTES_MAX // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except OSError as e:
        raise ListUnusable(f"cannot read the sanctions list {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def load_list(source: SanctionsSource) -> LoadedList:
    """Read and check the configured files whole."""
    if source.max_age_days < 1:
        raise ListUnusable(f"max_age_days is at least 1, not {source.max_age_days}")
    published = None
    if source.published is not None:
        published = published_us(source.published)
        if published is None:
            raise ListUnusable(f"published is a date (YYYY-MM-DD), not {source.published!r}")
    paths = expand(source.paths)
    if not paths:
        raise ListUnusable(
            "no sanctions list files at " + ", ".join(str(p) for p in source.paths)
            + " (SDN.CSV, ALT.CSV, SDN_COMMENTS.CSV, CONS_PRIM.CSV, ...)"
        )  # fmt: skip
    files = [ListFile(name=p.name, text=_text(p)) for p in paths]
    parsed = sanctions.parse_files(files)
    if isinstance(parsed, list):
        raise ListUnusable("sanctions list: " + "; ".join(parsed[:5]))
    if published is None:
        published = max(os.stat(p).st_mtime_ns for p in paths) // 1_000
    return LoadedList(
        listed=parsed, sources=tuple(str(p.resolve()) for p in paths), file_date=published
    )
