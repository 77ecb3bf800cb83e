"""Runbooks: one per failure state, kept as Markdown in docs/runbooks/ and served by the console
so a stuck transfer or an open case links straight to what to do about it.

The renderer knows the little Markdown the runbooks use (headings, paragraphs, lists, inline
code, bold) and escapes everything else, so a runbook can never inject markup into the page.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from markupsafe import Markup

DIRECTORY = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
# Transfer states that can get stuck, and reconciliation case types, each with its runbook.
BY_STATUS = {
    "CREATED": "created",
    "QUOTED": "quoted",
    "FUNDS_LOCKED": "funds-locked",
    "SENT_ON_CHAIN": "sent-on-chain",
    "CONFIRMED": "confirmed",
    "FIAT_SETTLED": "fiat-settled",
    "FAILED": "failed",
}
BY_CASE = {
    "missing_evidence": "case-missing-evidence",
    "external_only": "case-external-only",
    "amount_mismatch": "case-amount-mismatch",
    "fee_mismatch": "case-amount-mismatch",
    "fx_mismatch": "case-fx-mismatch",
    "duplicate_external_event": "case-duplicate-external-event",
    "unconfirmed_match": "case-unconfirmed-match",
    "balance_drift": "case-balance-drift",
}
NAMES = frozenset(BY_STATUS.values()) | frozenset(BY_CASE.values())
_NAME = re.compile(r"[a-z][a-z-]{0,63}")


def for_status(status: str) -> str | None:
    return BY_STATUS.get(status)


def for_case(kind: str) -> str | None:
    return BY_CASE.get(kind)


def load(name: str) -> tuple[str, Markup] | None:
    """The runbook's title and body as HTML, or None if there is no such runbook."""
    if not _NAME.fullmatch(name) or name not in NAMES:
        return None
    path = DIRECTORY / f"{name}.md"
    if not path.is_file():
        return None
    return to_html(path.read_text(encoding="utf-8"))


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def to_html(markdown: str) -> tuple[str, Markup]:
    """(the first heading's text, the rest as HTML)."""
    title = ""
    parts: list[str] = []
    paragraph: list[str] = []
    open_list: str | None = None

    def flush() -> None:
        nonlocal open_list
        if paragraph:
            parts.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if open_list is not None:
            parts.append(f"</{open_list}>")
            open_list = None

    for raw in markdown.splitlines():
        line = raw.rstrip()
        heading = re.match(r"(#{1,4}) (.+)", line)
        item = re.match(r"\s*(?:([-*])|\d+\.) (.+)", line)
        if heading:
            flush()
            level = len(heading.group(1))
            if level == 1 and not title:
                title = heading.group(2)
                continue
            parts.append(f"<h{level + 1}>{_inline(heading.group(2))}</h{level + 1}>")
        elif item:
            if paragraph:
                parts.append(f"<p>{_inline(' '.join(paragraph))}</p>")
                paragraph.clear()
            kind = "ul" if item.group(1) else "ol"
            if open_list != kind:
                if open_list is not None:
                    parts.append(f"</{open_list}>")
                parts.append(f"<{kind}>")
                open_list = kind
            parts.append(f"<li>{_inline(item.group(2))}</li>")
        elif not line.strip():
            flush()
        elif open_list is not None and raw.startswith("  "):
            parts[-1] = parts[-1].removesuffix("</li>") + " " + _inline(line.strip()) + "</li>"
        else:
            if open_list is not None:
                parts.append(f"</{open_list}>")
                open_list = None
            paragraph.append(line.strip())
    flush()
    return title, Markup("\n".join(parts))
