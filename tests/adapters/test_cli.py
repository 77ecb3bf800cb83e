"""The command line, run as a user runs it (a subprocess): exit codes, messages, --json."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from store.schema import db_path, latest_version


def stablerail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_then_verify(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    made = stablerail("migrate", "--data-dir", data_dir)
    assert made.returncode == 0, made.stderr
    assert f"schema version 0 -> {latest_version()}" in made.stdout
    again = stablerail("migrate", "--data-dir", data_dir)
    assert "up to date" in again.stdout
    checked = stablerail("verify", "--data-dir", data_dir, "--json")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] is True and report["journal_rows"] == 0


def test_demo_then_verify_then_tamper(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    demo = stablerail("demo", "--data-dir", str(data_dir))
    assert demo.returncode == 0, demo.stderr
    assert "RECONCILED" in demo.stdout and "insufficient_funds" in demo.stdout
    ok = stablerail("verify", "--data-dir", str(data_dir))
    assert ok.returncode == 0 and "verified: every check holds" in ok.stdout

    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("DROP TRIGGER journal_no_update")
    conn.execute("UPDATE journal SET request_id = 'forged' WHERE seq = 5")
    conn.commit()
    conn.close()
    bad = stablerail("verify", "--data-dir", str(data_dir), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    chain = next(c for c in report["checks"] if c["name"] == "hash_chain")
    assert chain["ok"] is False and "journal seq 5" in chain["detail"]


def test_unusable_data_dirs_get_one_line_not_a_traceback(tmp_path: Path) -> None:
    missing = stablerail("verify", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("stablerail: ") and "Traceback" not in missing.stderr
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    db_path(corrupt).write_bytes(b"garbage" * 1000)
    for command in ("verify", "migrate"):
        result = stablerail(command, "--data-dir", str(corrupt))
        assert result.returncode == 2, result
        assert "is not a SQLite database" in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    result = stablerail("frobnicate")
    assert result.returncode == 2 and "usage:" in result.stderr


def test_bench_store_json_has_the_figures() -> None:
    result = stablerail(
        "bench", "store", "--json", "--transfers", "10", "--concurrency", "4", "--repeats", "1"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"store_rows_per_s", "raw_rows_per_s", "ratio"} <= report.keys()


def test_bench_lifecycle_json_has_the_figures_the_issue_names() -> None:
    result = stablerail(
        "bench", "lifecycle", "--json", "--transfers", "12", "--eventsourcing-transfers", "3",
        "--concurrency", "4", "--rounds", "1", "--passivated", "30",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in (
        "engine_lifecycles_per_s",
        "eventsourcing_lifecycles_per_s",
        "raw_lifecycles_per_s",
        "vs_eventsourcing",
        "vs_raw",
    ):
        assert report[key] > 0, key
    assert report["memory"]["passivated"] == 30 and report["memory"]["live_actors"] == 0
    human = stablerail(
        "bench", "lifecycle", "--transfers", "12", "--eventsourcing-transfers", "3",
        "--concurrency", "4", "--rounds", "1", "--passivated", "0",
    )  # fmt: skip
    assert human.returncode == 0, human.stderr
    assert "eventsourcing" in human.stdout and "memory" not in human.stdout


def test_simulate_reports_every_invariant_and_the_kept_data_dir_verifies(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "sim")
    done = stablerail(
        "simulate", "--seed", "4", "--transfers", "20", "--faults", "default", "--json",
        "--data-dir", data_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in ("seed", "transfers", "final_status", "invariants", "faults_fired", "digest", "ok",
                "reconciled", "discrepancies"):  # fmt: skip
        assert key in report
    assert report["ok"] is True and set(report["invariants"].values()) == {"ok"}
    assert sum(report["final_status"].values()) == 20
    human = stablerail("simulate", "--seed", "4", "--transfers", "20", "--faults", "default")
    assert human.returncode == 0 and report["digest"] in human.stdout
    # Not a terminal: progress as plain lines on stderr, the last one the whole run.
    assert human.stderr.splitlines()[-1] == "simulate: 20/20 transfers ended"
    assert stablerail("verify", "--data-dir", data_dir).returncode == 0
    assert stablerail("simulate", "--seed", "1", "--transfers", "0").returncode == 2


def test_simulate_with_a_planted_bug_fails_with_the_command_that_reproduces_it() -> None:
    done = stablerail(
        "simulate", "--seed", "0", "--transfers", "5", "--faults", "none",
        "--plant", "reply_before_commit",
    )  # fmt: skip
    assert done.returncode == 1
    assert "FAIL acknowledged_durable" in done.stdout
    assert "reproduce: stablerail simulate --seed 0" in done.stderr
    assert "--plant reply_before_commit" in done.stderr
    assert stablerail("simulate", "--seed", "0", "--plant", "no_such_bug").returncode == 2


def test_soak_runs_each_seed_and_reports_plain_progress_off_a_terminal() -> None:
    done = stablerail("soak", "--first", "3", "--count", "2", "--transfers", "10", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert "soak seeds 3..4: 20 transfers, faults swarm: 0 seeds failed" in done.stdout
    assert "soak: 2/2 seeds, 0 failed" in done.stderr  # plain lines: stderr is not a tty here
    as_json = json.loads(stablerail("soak", "--count", "1", "--transfers", "5", "--json").stdout)
    assert as_json["ok"] is True and as_json["failures"] == []


def test_audit_verify_finds_an_edited_row_and_a_rewritten_chain(tmp_path: Path) -> None:
    """Admin actions from the command line are audited; `audit verify` recomputes the chain and
    the anchors: an edit (triggers dropped to make it) and a consistent rewrite are both found."""
    data_dir = str(tmp_path / "data")
    assert stablerail("migrate", "--data-dir", data_dir).returncode == 0
    for user in ("ann", "bob", "cy"):
        made = stablerail(
            "keys", "create", "--data-dir", data_dir, "--client", "acme", "--role", "admin",
            "--user", user,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    anchored = stablerail("audit", "anchor", "--data-dir", data_dir)
    assert anchored.returncode == 0 and "anchored row 3" in anchored.stdout, anchored.stdout
    clean = stablerail("audit", "verify", "--data-dir", data_dir, "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout) == {
        "ok": True,
        "rows": 3,
        "problem": None,
    }
    conn = sqlite3.connect(db_path(Path(data_dir)))
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_log SET actor_id = 'x'")
        conn.execute("DROP TRIGGER audit_log_no_update")
        record = conn.execute("SELECT record FROM audit_log WHERE seq = 2").fetchone()[0]
        conn.execute(
            "UPDATE audit_log SET record = ? WHERE seq = 2", (record.replace("bob", "eve"),)
        )
        conn.commit()
    finally:
        conn.close()
    edited = stablerail("audit", "verify", "--data-dir", data_dir)
    assert edited.returncode == 1 and "row 2: its hash does not match" in edited.stdout
    whole = stablerail("verify", "--data-dir", data_dir)
    assert whole.returncode == 1 and "FAIL audit" in whole.stdout, whole.stdout


def test_reconcile_feeds_a_statement_once_and_refuses_a_bad_one_whole(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    assert stablerail("migrate", "--data-dir", data_dir).returncode == 0
    good = tmp_path / "nov.csv"
    good.write_text(
        "line_id,booked_at,amount,currency,direction,reference,counterparty,memo\n"
        "L1,2026-11-30T10:00:00Z,1500.00,USD,credit,WIRE1,ACME SA,invoice 7\n"
        "L2,2026-11-30T11:30:00Z,20.50,USD,debit,FEE-NOV,,monthly fee\n"
    )
    first = stablerail("reconcile", "--data-dir", data_dir, "--statement", str(good), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["lines"], report["new"], report["explained"], report["cases"]) == (2, 2, 0, [])
    again = stablerail("reconcile", "--data-dir", data_dir, "--statement", str(good))
    assert again.returncode == 0
    assert "kept 2 booked lines as evidence, 0 new (2 already recorded)" in again.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text() + "L3,yesterday,1.00,USD,credit,X,,\n")
    refused = stablerail("reconcile", "--data-dir", data_dir, "--statement", str(bad))
    assert refused.returncode == 1 and "line 3: booked_at" in refused.stderr
    assert "nothing was imported" in refused.stderr
    with sqlite3.connect(db_path(Path(data_dir))) as db:
        rows = db.execute(
            "SELECT external_ref, event_type, transaction_id FROM external_events ORDER BY 1"
        ).fetchall()
        audited = db.execute(
            "SELECT count(*) FROM audit_log WHERE action_type = 'import_statement'"
        ).fetchone()
    assert rows == [("L1", "statement_line", None), ("L2", "statement_line", None)]
    assert audited == (2,)
    checked = stablerail("verify", "--data-dir", data_dir)
    assert checked.returncode == 0, checked.stdout


def test_reconcile_keeps_a_provider_report_once_and_a_disagreeing_row_beside(
    tmp_path: Path,
) -> None:
    data_dir = str(tmp_path / "data")
    assert stablerail("migrate", "--data-dir", data_dir).returncode == 0
    header = "trade_id,state,currency,amount,fee,rate,bank_reference,reported_at\n"
    report = tmp_path / "bitso-2026-11-30.csv"
    report.write_text(
        header + "BTS1,paid,MXN,9000.00,0.00,18.00,SPEI1,2026-11-30T10:00:00Z\n"
        "BTS2,returned,MXN,500.00,,,,2026-11-30T10:05:00Z\n"
    )
    first = stablerail(
        "reconcile", "--data-dir", data_dir, "--provider-report", str(report), "--json"
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) | {"evidence_ids": []} == {
        "rows": 2, "new": 2, "differing": 0, "evidence_ids": [],
    }  # fmt: skip
    again = stablerail("reconcile", "--data-dir", data_dir, "--provider-report", str(report))
    assert again.returncode == 0 and "2 rows, 0 new" in again.stdout, again.stdout
    # The next day's report says the provider kept a fee on BTS1 after all: kept beside.
    revised = tmp_path / "bitso-2026-12-01.csv"
    revised.write_text(header + "BTS1,paid,MXN,8910.00,90.00,18.00,SPEI1,2026-12-01T10:00:00Z\n")
    third = stablerail("reconcile", "--data-dir", data_dir, "--provider-report", str(revised))
    assert third.returncode == 0 and "1 disagree" in third.stdout, third.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "BTS3,maybe,MXN,1.00,,,,2026-11-30T10:00:00Z\n")
    refused = stablerail("reconcile", "--data-dir", data_dir, "--provider-report", str(bad))
    assert refused.returncode == 1 and "row 1: state is paid or returned" in refused.stderr
    with sqlite3.connect(db_path(Path(data_dir))) as db:
        rows = db.execute(
            "SELECT external_ref, event_type, json_extract(normalized_data, '$.fee')"
            " FROM external_events ORDER BY journal_seq"
        ).fetchall()
        audited = db.execute(
            "SELECT count(*) FROM audit_log WHERE action_type = 'import_provider_report'"
        ).fetchone()
    assert [r[1:] for r in rows] == [
        ("payout_paid", "0"), ("payout_returned", None), ("payout_paid", "9000"),
    ]  # fmt: skip
    assert rows[0][0] == "BTS1" and rows[2][0].startswith("BTS1/report/")
    assert audited == (3,)
    assert stablerail("verify", "--data-dir", data_dir).returncode == 0


def test_sanctions_check_says_what_ofac_files_hold_or_why_not(tmp_path: Path) -> None:
    from engine import sanctions

    for file in sanctions.SAMPLE_FILES:
        (tmp_path / file.name).write_text(file.text)
    checked = stablerail("sanctions", "check", str(tmp_path), "--published", "2026-12-01")
    assert checked.returncode == 0, checked.stderr
    assert "dated 2026-12-01T00:00:00Z" in checked.stdout
    assert "3 wallet addresses screened (ETH 2, USDC 1)" in checked.stdout
    as_json = json.loads(stablerail("sanctions", "check", str(tmp_path), "--json").stdout)
    assert (as_json["ok"], as_json["entries"], as_json["aliases"]) == (True, 5, 4)
    (tmp_path / "SDN.CSV").write_text('90001,"ONLY A NAME",individual,CYBER2,-0-\r\n')
    refused = stablerail("sanctions", "check", str(tmp_path / "SDN.CSV"))
    assert refused.returncode == 1
    assert "SDN.CSV line 1: 5 columns where OFAC's primary file has 12" in refused.stdout


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "statements"
BANK_ACCOUNTS = """
[[bank_accounts]]
bank = "commerz"
account = "DE89 3704 0044 0532 0130 00"
currency = "EUR"
timezone = "Europe/Berlin"
"""


def test_statements_check_says_what_a_file_holds(tmp_path: Path) -> None:
    """Without a config every account is read (nothing is kept); with one, only ours."""
    camt = str(FIXTURES / "camt053.001.08.xml")
    checked = stablerail("statements", "check", camt)
    assert checked.returncode == 0, checked.stderr
    assert "camt.053.001.08 V08-20261202-EUR: account DE89370400440532013000" in checked.stdout
    assert "opening 1273.00 + credits 400.00 - debits 150.00 = closing 1523.00? add up" in (
        checked.stdout
    )
    assert "BOOK debit          150.00 EUR 2026-12-02 reversal" in checked.stdout
    as_json = json.loads(stablerail("statements", "check", camt, "--json").stdout)
    [statement] = as_json["statements"]
    assert [line["status"] for line in statement["lines"]] == ["BOOK"] * 4 + ["PDNG"]
    assert statement["arithmetic"]["problems"] == []
    config = tmp_path / "serve.toml"
    config.write_text(BANK_ACCOUNTS)
    notice = str(FIXTURES / "camt054.001.08.xml")
    refused = stablerail("statements", "check", notice, "--config", str(config))
    assert refused.returncode == 1
    assert "account CH9300762011623852957 is not one of our bank accounts" in refused.stderr


def test_reconcile_keeps_a_camt_statement_and_opens_a_case_when_it_does_not_add_up(
    tmp_path: Path,
) -> None:
    data_dir = str(tmp_path / "data")
    assert stablerail("migrate", "--data-dir", data_dir).returncode == 0
    config = tmp_path / "serve.toml"
    config.write_text(BANK_ACCOUNTS)
    camt = str(FIXTURES / "camt053.001.08.xml")
    args = ("reconcile", "--data-dir", data_dir, "--config", str(config), "--statement", camt)
    unknown = stablerail("reconcile", "--data-dir", data_dir, "--statement", camt)
    assert unknown.returncode == 1 and "configured: none" in unknown.stderr
    first = stablerail(*args, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["lines"], report["new"]) == (4, 4)
    [statement] = report["statements"]
    # The ledger has never heard of this account: its closing balance is a case.
    assert statement["problems"] == [
        "the ledger's bank:commerz holds 0.00 EUR at the end of 2026-12-02, the bank's closing"
        " balance is 1523.00"
    ]
    assert report["cases"] == [statement["case_id"]] and statement["not_booked"] == 1
    again = stablerail(*args)
    assert again.returncode == 0, again.stderr
    assert "kept 4 booked lines as evidence, 0 new (4 already recorded)" in again.stdout
    assert "DOES NOT ADD UP: the ledger's bank:commerz holds 0.00 EUR" in again.stdout
    with sqlite3.connect(db_path(Path(data_dir))) as db:
        kinds = db.execute(
            "SELECT event_type, count(*) FROM external_events GROUP BY 1 ORDER BY 1"
        ).fetchall()
        cases = db.execute(
            "SELECT discrepancy_type, severity, source FROM discrepancies"
        ).fetchall()
    assert kinds == [("statement_balance", 1), ("statement_line", 4)]
    assert cases == [("balance_drift", "HIGH", "bank")]
    assert stablerail("verify", "--data-dir", data_dir).returncode == 0
