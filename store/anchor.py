"""The audit log's anchor file: the chain's head (seq and hash), appended at intervals to a plain
file beside the database, so a rewrite of the whole chain (every hash recomputed, consistent
again) still disagrees with a head written down before it.

`audit.anchor` holds one line per anchor, `<seq> <hash hex> <RFC 3339 time>`, appended and
fsynced, never rewritten. Copy it off the machine (or to write-once storage) for the strongest
guarantee: an attacker with the data dir can rewrite both.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.audit import AuditRow, verify_chain
from engine.timefmt import rfc3339
from store import service as tables
from store.executor import Executor

ANCHOR_FILE = "audit.anchor"
_PAGE = 5_000


def anchor_path(data_dir: Path) -> Path:
    return Path(data_dir) / ANCHOR_FILE


def read_anchors(data_dir: Path) -> list[tuple[int, bytes]] | str:
    """The anchors, or what is wrong with the file (a missing file is no anchors yet)."""
    path = anchor_path(data_dir)
    if not path.exists():
        return []
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        try:
            seq, digest = int(parts[0]), bytes.fromhex(parts[1])
        except (IndexError, ValueError):
            return f"{path}:{number}: not '<seq> <hash> <time>'"
        if len(digest) != 32:
            return f"{path}:{number}: a hash is 32 bytes"
        found.append((seq, digest))
    return found


def append_anchor(data_dir: Path, seq: int, digest: bytes, at_us: int) -> None:
    fd = os.open(anchor_path(data_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{seq} {digest.hex()} {rfc3339(at_us)}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


async def anchor(ex: Executor, data_dir: Path, at_us: int) -> tuple[int, bytes] | None:
    """Write the chain's head to the anchor file if it moved since the last anchor."""
    head = await tables.audit_head(ex)
    if head is None:
        return None
    anchors = read_anchors(data_dir)
    if isinstance(anchors, list) and anchors and anchors[-1] == head:
        return head
    append_anchor(data_dir, head[0], head[1], at_us)
    return head


async def all_rows(ex: Executor) -> list[AuditRow]:
    rows: list[AuditRow] = []
    while page := await tables.audit_rows(ex, rows[-1].seq if rows else 0, _PAGE):
        rows.extend(page)
    return rows


async def verify(ex: Executor, data_dir: Path) -> tuple[int, str | None]:
    """(rows checked, the first broken link or None)."""
    anchors = read_anchors(data_dir)
    if isinstance(anchors, str):
        return 0, anchors
    rows = await all_rows(ex)
    return len(rows), verify_chain(rows, anchors)
