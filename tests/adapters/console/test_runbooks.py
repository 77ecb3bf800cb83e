"""Runbooks: every failure state and case type the console links has a runbook in docs/runbooks/
with Series 9's five sections; the renderer turns their Markdown into HTML and escapes anything
else, so a runbook cannot put markup into a page; an unknown or malformed name is not read."""

from __future__ import annotations

import pytest

from adapters.console import runbooks
from engine.reconciliation import Kind
from engine.states import TERMINAL, Status

SECTIONS = ("Symptoms", "Common causes", "Investigation", "Resolution", "Prevention")


@pytest.mark.parametrize("name", sorted(runbooks.NAMES))
def test_each_runbook_exists_with_the_five_sections(name: str) -> None:
    found = runbooks.load(name)
    assert found is not None, f"docs/runbooks/{name}.md is missing"
    title, body = found
    assert title
    headings = [line[3:] for line in (runbooks.DIRECTORY / f"{name}.md").read_text().splitlines()
                if line.startswith("## ")]  # fmt: skip
    assert tuple(headings) == SECTIONS, name
    for section in SECTIONS:
        assert f"<h3>{section}</h3>" in body


def test_every_state_that_can_get_stuck_and_every_case_type_has_one() -> None:
    stuck = {s.value for s in Status if s not in TERMINAL} | {Status.FAILED.value}
    assert set(runbooks.BY_STATUS) == stuck
    assert set(runbooks.BY_CASE) == {k.value for k in Kind}


def test_markdown_becomes_html_and_everything_else_is_escaped() -> None:
    title, body = runbooks.to_html(
        "# Title\n\n## Part\nSome `code` and **bold** <script>x</script>\n"
        "- one\n  continued\n- two\n\n1. first\n2. second\n"
    )
    assert title == "Title"
    assert str(body) == (
        "<h3>Part</h3>\n"
        "<p>Some <code>code</code> and <strong>bold</strong> &lt;script&gt;x&lt;/script&gt;</p>\n"
        "<ul>\n<li>one continued</li>\n<li>two</li>\n</ul>\n"
        "<ol>\n<li>first</li>\n<li>second</li>\n</ol>"
    )


@pytest.mark.parametrize("name", ["../README", "README", "created.md", "Created", "x" * 70, ""])
def test_a_name_that_is_not_a_runbook_is_not_read(name: str) -> None:
    assert runbooks.load(name) is None
