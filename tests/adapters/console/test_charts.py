"""The server's SVG charts: bars scale to the largest value, stacked columns stack in series
order, every text that reaches the SVG is escaped, and each chart carries its numbers as a title
and description a screen reader reads."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from adapters.console import charts

NS = {"svg": "http://www.w3.org/2000/svg"}


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_bars_scale_to_the_largest_value_and_state_their_numbers() -> None:
    svg = parsed(charts.bars("By state", [("CREATED", 10), ("FAILED", 5), ("EXPIRED", 0)]))
    widths = [float(r.get("width", "")) for r in svg.findall("svg:rect", NS)]
    assert widths[0] == 2 * widths[1] and widths[2] == 0
    assert svg.get("role") == "img"
    title, desc = svg.find("svg:title", NS), svg.find("svg:desc", NS)
    assert title is not None and title.text == "By state"
    assert desc is not None and desc.text == "CREATED: 10; FAILED: 5; EXPIRED: 0"
    labelled = (svg.get("aria-labelledby") or "").split()
    assert labelled == [title.get("id"), desc.get("id")]


def test_stacked_columns_stack_in_series_order_with_a_legend_of_what_occurs() -> None:
    svg = parsed(
        charts.stacked(
            "Per hour",
            [("10:00", {"CREATED": 2, "FAILED": 1}), ("11:00", {"FAILED": 3})],
            ["CREATED", "FAILED", "EXPIRED"],
        )
    )
    bars = [r for r in svg.findall("svg:rect", NS) if r.find("svg:title", NS) is not None]
    heights = {r.find("svg:title", NS).text: float(r.get("height", "")) for r in bars}  # type: ignore[union-attr]
    assert heights["11:00 FAILED: 3"] == pytest.approx(3 * heights["10:00 FAILED: 1"], abs=0.2)
    created = next(r for r in bars if "CREATED" in (r.find("svg:title", NS).text or ""))  # type: ignore[union-attr]
    failed = next(r for r in bars if "10:00 FAILED" in (r.find("svg:title", NS).text or ""))  # type: ignore[union-attr]
    # CREATED sits at the bottom of the column, FAILED on top of it.
    top_of_created = float(failed.get("y", "")) + float(failed.get("height", ""))
    assert top_of_created == pytest.approx(float(created.get("y", "")), abs=0.2)
    legend = [t.text for t in svg.findall("svg:text", NS) if t.get("class") == "tick"]
    assert "CREATED" in legend and "FAILED" in legend and "EXPIRED" not in legend


def test_text_is_escaped() -> None:
    markup = str(charts.bars('<script>alert("x")</script>', [("<b>&", 1)]))
    assert "<script>" not in markup and "<b>" not in markup
    assert "&lt;script&gt;" in markup and "&lt;b&gt;&amp;" in markup
    parsed(markup)  # still well-formed XML


def test_an_empty_chart_is_still_a_chart() -> None:
    svg = parsed(charts.bars("Nothing", []))
    desc = svg.find("svg:desc", NS)
    assert desc is not None and desc.text == "no data"
    assert re.fullmatch(r"\d+", svg.get("height", ""))
