"""Charts drawn by the server as SVG: no script, no external service, and each one carries its
numbers as text (a title and a description a screen reader reads, and a table on the page).

Pure functions from numbers to markup; every text that reaches the SVG is escaped.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence

from markupsafe import Markup

_ids = itertools.count()
# One color per transfer status (and for buckets); the legend names each.
PALETTE = {
    "CREATED": "#6b7280",
    "QUOTED": "#8b5cf6",
    "FUNDS_LOCKED": "#2563eb",
    "SENT_ON_CHAIN": "#0891b2",
    "CONFIRMED": "#059669",
    "FIAT_SETTLED": "#65a30d",
    "RECONCILED": "#15803d",
    "FAILED": "#b91c1c",
    "CANCELLED": "#a16207",
    "EXPIRED": "#9a3412",
}
_DEFAULT = "#475569"
WIDTH = 640
_ROW = 22


def _t(text: object) -> str:
    return html.escape(str(text), quote=True)


def _frame(title: str, desc: str, width: int, height: int, body: list[str]) -> Markup:
    n = next(_ids)
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" aria-labelledby="chart{n}-t chart{n}-d"'
        ' xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart{n}-t">{_t(title)}</title><desc id="chart{n}-d">{_t(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def bars(title: str, rows: Sequence[tuple[str, int]], unit: str = "") -> Markup:
    """Horizontal bars, one per (label, value), longest scaled to the width."""
    label_w, right = 150, 70
    top = max((v for _, v in rows), default=0) or 1
    span = WIDTH - label_w - right
    body = []
    for i, (label, value) in enumerate(rows):
        y = i * _ROW + 4
        w = round(span * value / top)
        color = PALETTE.get(label, _DEFAULT)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{_t(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(w, 1 if value else 0)}" height="{_ROW - 6}"'
            f' fill="{color}"/>'
            f'<text x="{label_w + w + 6}" y="{y + 14}">{value:,}{_t(unit)}</text>'
        )
    desc = "; ".join(f"{label}: {value:,}{unit}" for label, value in rows) or "no data"
    return _frame(title, desc, WIDTH, max(len(rows), 1) * _ROW + 8, body)


def stacked(
    title: str,
    columns: Sequence[tuple[str, dict[str, int]]],
    series: Sequence[str],
) -> Markup:
    """Vertical stacked bars: one column per (label, {series: value}), stacked in `series`
    order, with a legend of the series that occur."""
    height, base, left = 220, 180, 40
    top = max((sum(c.values()) for _, c in columns), default=0) or 1
    step = (WIDTH - left - 10) / max(len(columns), 1)
    body = [
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" class="axis"/>',
        f'<text x="{left - 6}" y="{base - (base - 20) + 4}" text-anchor="end">{top:,}</text>',
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>',
    ]
    for i, (label, values) in enumerate(columns):
        x = left + i * step + 2
        y = float(base)
        for name in series:
            value = values.get(name, 0)
            if not value:
                continue
            h = (base - 20) * value / top
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 4, 1):.1f}" height="{h:.1f}"'
                f' fill="{PALETTE.get(name, _DEFAULT)}"><title>{_t(label)} {_t(name)}:'
                f" {value:,}</title></rect>"
            )
        if i % max(len(columns) // 8, 1) == 0:
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{base + 16}" text-anchor="middle"'
                f' class="tick">{_t(label)}</text>'
            )
    used = [name for name in series if any(v.get(name) for _, v in columns)]
    for j, name in enumerate(used):
        lx = left + j * 120
        body.append(
            f'<rect x="{lx}" y="{base + 26}" width="10" height="10"'
            f' fill="{PALETTE.get(name, _DEFAULT)}"/>'
            f'<text x="{lx + 14}" y="{base + 35}" class="tick">{_t(name)}</text>'
        )
    totals = "; ".join(f"{label}: {sum(v.values()):,}" for label, v in columns if v)
    return _frame(title, totals or "no data", WIDTH, height + 20, body)
