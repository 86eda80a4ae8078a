"""`mmflow query`: reads answer as a table or CSV; write statements are refused untouched."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest

from engine.results.store import RunRecord, query, write_run
from mmflow.cli import main
from mmflow.commands.query import check_read_only


@pytest.fixture
def store(tmp_path):
    """A store with two (empty) runs."""
    path = tmp_path / "results.duckdb"
    start = dt.datetime(2026, 11, 28, 9)
    for run_id, pnl in (("run-1", 1.5), ("run-2", -2.25)):
        run = RunRecord(
            run_id=run_id,
            kind="backtest",
            strategy="v2_price_follow_qty_cooldown",
            params={"config": None, "overrides": {}},
            config_hash="h",
            data_source="hand",
            data_hash="d",
            code_version="c",
            started_at=start,
            finished_at=start,
            status="completed",
        )
        write_run(path, run, [], [], {"total_pnl": pnl})
    return path


def test_a_read_prints_a_table(store, capsys):
    sql = "SELECT run_id, total_pnl FROM runs ORDER BY run_id"
    assert main(["query", sql, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "run_id" in out and "run-1" in out and "-2.25" in out and "2 row(s)" in out


def test_csv_goes_to_stdout_unformatted(store, capsys):
    sql = "SELECT run_id, total_pnl FROM runs ORDER BY run_id"
    assert main(["query", sql, "--csv", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out == "run_id,total_pnl\nrun-1,1.5\nrun-2,-2.25\n"
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(out)), query(store, sql))


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM runs",
        "UPDATE runs SET total_pnl = 0",
        "INSERT INTO runs (run_id, kind, status) VALUES ('x', 'y', 'completed')",
        "DROP TABLE trades",
        "CREATE TABLE t AS SELECT * FROM runs",
        "ALTER TABLE runs ADD COLUMN x INT",
        "COPY runs TO 'runs.csv'",
        "ATTACH 'other.duckdb' AS other",
        "SET threads = 1",
        "CHECKPOINT",
    ],
)
def test_a_write_is_refused_and_the_store_is_untouched(store, capsys, sql):
    assert main(["query", sql, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmflow query: error: refused: ")
    assert "only reads" in err
    assert query(store, "SELECT count(*) AS n FROM runs")["n"].item() == 2
    assert query(store, "SELECT sum(total_pnl) AS p FROM runs")["p"].item() == -0.75


def test_reads_of_every_kind_pass_the_check():
    for sql in (
        "SELECT 1",
        "FROM runs",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "DESCRIBE runs",
        "SHOW TABLES",
        "SUMMARIZE runs",
        "EXPLAIN SELECT 1",
        "PRAGMA table_info('runs')",
        "PIVOT runs ON strategy USING sum(total_pnl)",
        "SELECT 1;",
    ):
        assert check_read_only(sql) == sql


def test_several_statements_bad_sql_and_a_missing_store_are_explained(store, tmp_path, capsys):
    assert main(["query", "SELECT 1; DELETE FROM runs", "--store", str(store)]) == 2
    assert "one statement at a time (2 given)" in capsys.readouterr().err
    assert main(["query", "SELEKT 1", "--store", str(store)]) == 2
    assert "does not parse" in capsys.readouterr().err
    assert main(["query", "SELECT * FROM nope", "--store", str(store)]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["query", "SELECT 1", "--store", str(tmp_path / "missing.duckdb")]) == 2
    assert "no store at" in capsys.readouterr().err


def test_dates_lists_and_brackets_are_shown_as_written(store, capsys):
    sql = "SELECT DATE '2025-04-14' AS d, [1, 2] AS l, '[bold]x' AS s, NULL AS n"
    assert main(["query", sql, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "2025-04-14" in out and "00:00:00" not in out
    assert "[1, 2]" in out and "[bold]x" in out
