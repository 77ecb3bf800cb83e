"""The statement commands: `stablerail statements check FILE` (what a file holds, nothing kept)
and `stablerail reconcile --statement FILE` (kept as evidence, balances judged)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from adapters import statement_files
from adapters.cli import EXIT_OK, EXIT_UNUSABLE, read_rows
from adapters.config import load_bank_accounts
from engine import ledger
from engine import statements as st
from engine.statements import Statement


def _read(args: argparse.Namespace, *, accept_any: bool) -> list[Statement] | int:
    configured = load_bank_accounts(args.config)
    known = statement_files.accounts(configured, accept_any=accept_any and not configured)
    bank = getattr(args, "bank", st.UNCONFIGURED)
    parsed = read_rows(
        args.file, lambda data: statement_files.read(args.file.name, data, known, csv_bank=bank)
    )
    if isinstance(parsed, int):
        return parsed
    return [s for s in parsed if isinstance(s, Statement)]


def check(args: argparse.Namespace) -> int:
    """What the file holds, read as `reconcile` would (with `--config`, only for our
    accounts; without, for any account, in UTC)."""
    found = _read(args, accept_any=True)
    if isinstance(found, int):
        return found
    if args.json:
        print(msgspec.json.encode({"ok": True, "statements": [_view(s) for s in found]}).decode())
        return EXIT_OK
    for statement in found:
        for text in _describe(statement):
            print(text)
        for line in statement.lines:
            print("    " + _line(line))
    return EXIT_OK


def reconcile(args: argparse.Namespace) -> int:
    from adapters.main import import_statement

    if not ledger.is_name(args.bank):
        print(f"stablerail: --bank {args.bank!r} is not a bank name", file=sys.stderr)
        return EXIT_UNUSABLE
    args.file = args.statement
    found = _read(args, accept_any=False)
    if isinstance(found, int):
        return found
    report = asyncio.run(import_statement(args.data_dir, found))
    if args.json:
        print(msgspec.json.encode(report).decode())
        return EXIT_OK
    for statement, kept in zip(found, report.statements, strict=True):
        for text in _describe(statement):
            print(text)
        print(
            f"  kept {kept.lines} booked lines as evidence, {kept.new} new"
            f" ({kept.lines - kept.new} already recorded); {kept.explained} are credits the"
            " ledger holds"
        )
        if kept.problems:
            print(f"  DOES NOT ADD UP: {'; '.join(kept.problems)}")
            opened = f"case {kept.case_id} opened" if kept.case_id else "its case was opened"
            print(f"  {opened} (GET /v1/ops/discrepancies)")
    print(
        "The service's reconciler pairs the lines with transfers and deposits or opens a case"
        " for what nothing explains (GET /v1/ops/discrepancies)."
    )
    return EXIT_OK


def _describe(statement: Statement) -> list[str]:
    where = statement.account or "(no account named)"
    found = [
        f"{statement.format} {statement.statement_id or '(no id)'}: account {where}"
        f" ({statement.bank}, {statement.currency or 'currency not stated'})"
    ]
    balances = ", ".join(
        f"{b.code} {st.decimal_text(b.amount, b.currency)} {b.currency} {b.date}"
        for b in statement.balances
    )
    found.append(f"  balances: {balances or 'none stated'}")
    booked, other = statement.booked, statement.not_booked
    found.append(f"  {len(booked)} booked lines, {len(other)} not booked (read, not recorded)")
    sums = st.arithmetic(statement)
    if sums is not None:
        verdict = "add up" if not sums.problems else "DO NOT ADD UP: " + "; ".join(sums.problems)
        found.append(
            f"  opening {st.decimal_text(sums.opening, sums.currency)} + credits"
            f" {st.decimal_text(sums.credits, sums.currency)} - debits"
            f" {st.decimal_text(sums.debits, sums.currency)} = closing"
            f" {st.decimal_text(sums.closing, sums.currency)}? {verdict}"
        )
    found.extend(f"  note: {note}" for note in statement.notes)
    return found


def _line(line: st.StatementLine) -> str:
    amount = st.decimal_text(line.amount, line.currency)
    flags = " reversal" if line.reversal else ""
    date = line.booking_date or line.value_date
    return (
        f"{line.status.value} {line.direction:<6} {amount:>14} {line.currency} {date}{flags}"
        f"  ref {line.reference or '-'}  {line.counterparty or '-'}  id {line.line_id}"
    )


def _view(statement: Statement) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(statement)
    for line in view["lines"]:
        line.pop("source", None)
    sums = st.arithmetic(statement)
    view["arithmetic"] = msgspec.to_builtins(sums) if sums is not None else None
    return view
