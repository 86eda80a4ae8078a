"""`mmflow query`: reads answer as a table (at most --limit rows, then how many there were), one
field per line, CSV or Parquet; write statements are refused untouched. The sandbox itself (every
way a statement could write, install or load) is in test_query_sandbox.py."""

from __future__ import annotations

import csv
import hashlib
import io

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from query_store import RUN_IDS, make_store
from rich.console import Console

import mmflow.console
from engine.results import query as q
from mmflow.cli import main
from mmflow.commands import query as query_command
from mmflow.commands.query import check_read_only


@pytest.fixture
def store(tmp_path):
    """A store with two runs and 250 trades."""
    return make_store(tmp_path / "results.duckdb", trades=250)


def read(store, sql):
    """The answer straight from DuckDB, as Arrow."""
    with duckdb.connect(str(store), read_only=True) as con:
        return con.sql(sql).to_arrow_table()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_prints_a_table(store, capsys):
    sql = "SELECT run_id, total_pnl FROM runs ORDER BY run_id"
    assert main(["query", sql, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "run_id" in out and RUN_IDS[0] in out and "-2.25" in out and "2 rows" in out


def test_csv_dash_goes_to_stdout_unformatted(store, capsys):
    sql = "SELECT run_id, total_pnl FROM runs ORDER BY run_id"
    assert main(["query", sql, "--csv", "-", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out == f"run_id,total_pnl\n{RUN_IDS[0]},1.5\n{RUN_IDS[1]},-2.25\n"
    assert pa_csv.read_csv(io.BytesIO(out.encode())).equals(read(store, sql))


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
        "EXPLAIN ANALYZE DELETE FROM runs",
        "PRAGMA threads = 4",
    ],
)
def test_a_write_is_refused_and_the_store_is_untouched(store, capsys, sql):
    before = digest(store)
    assert main(["query", sql, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmflow query: error: refused: ")
    assert "only reads" in err
    assert read(store, "SELECT sum(total_pnl) AS p FROM runs")["p"].to_pylist() == [-0.75]
    assert digest(store) == before


def test_reads_of_every_kind_pass_the_check():
    for sql in (
        "SELECT 1",
        "FROM runs",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "DESCRIBE runs",
        "SHOW TABLES",
        "SUMMARIZE runs",
        "EXPLAIN SELECT 1",
        "EXPLAIN ANALYZE SELECT count(*) FROM trades",
        "EXPLAIN ANALYZE (SELECT 1)",
        "/* plan */ EXPLAIN (FORMAT json) SELECT 1",
        "PRAGMA table_info('runs')",
        "pragma SHOW_TABLES",
        "PIVOT runs ON strategy USING sum(total_pnl)",
        "SELECT 1;",
    ):
        assert check_read_only(sql) == sql
        assert q.check_read_only(sql) == sql


def test_reads_of_every_kind_run(store, capsys):
    for sql in ("DESCRIBE runs", "SUMMARIZE trades", "EXPLAIN ANALYZE SELECT 1", "PRAGMA version"):
        assert main(["query", sql, "--store", str(store)]) == 0, capsys.readouterr().err
    assert (
        main(["query", "PIVOT runs ON strategy USING sum(total_pnl)", "--store", str(store)]) == 0
    )
    assert "-2.25" in capsys.readouterr().out


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
    sql = "SELECT DATE '2025-04-14' AS d, [1, 2] AS l, '[bold]x' AS s, NULL AS n, 3::BIGINT AS i"
    assert main(["query", sql, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "2025-04-14" in out and "00:00:00" not in out
    assert "[1, 2]" in out and "[bold]x" in out


def test_integers_with_nulls_stay_integers_and_hugeint_sums_get_separators(store, capsys):
    sql = "SELECT * FROM (VALUES (1234567), (NULL)) t(n), (SELECT sum(seq) AS total FROM trades)"
    assert main(["query", sql, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "1,234,567" in out and "1,234,567.00" not in out and "<NA>" not in out
    assert "31,125" in out  # sum(0..249), a HUGEINT


def test_the_terminal_shows_limit_rows_then_how_many_there_are(store, capsys):
    sql = "SELECT 'row-' || seq AS tag FROM trades ORDER BY seq"
    assert main(["query", sql, "--limit", "5", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.count("row-") == 5 and "row-4 " in out and "row-5 " not in out
    assert "5 of 250 rows; --all, --csv FILE, --parquet FILE" in out
    assert main(["query", sql, "--store", str(store)]) == 0  # the default limit: 100
    out = capsys.readouterr().out
    assert out.count("row-") == 100 and "100 of 250 rows" in out


def test_a_limit_that_fits_the_answer_just_counts(store, capsys):
    sql = "SELECT 'row-' || seq AS tag FROM trades WHERE seq < 5"
    assert main(["query", sql, "--limit", "5", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.count("row-") == 5 and "5 rows" in out and " of " not in out


def test_run_query_returns_the_answer_and_refuses_writes(store):
    answer = q.run_query(store, "SELECT run_id FROM runs ORDER BY run_id")
    assert answer["run_id"].to_pylist() == list(RUN_IDS)
    with pytest.raises(q.QueryError, match="refused: COPY"):
        q.run_query(store, f"EXPLAIN ANALYZE COPY runs TO '{store}'")


def test_the_count_is_exact_across_batch_boundaries(store):
    sql = "SELECT seq FROM trades ORDER BY seq"
    with q.open_read_only(store) as con, q.stream(con, sql, batch_rows=7) as reader:
        source = q.batches(reader)
        head, extra = q.take(source, reader.schema, 10)
        rest = sum(batch.num_rows for batch in source)
    assert head["seq"].to_pylist() == list(range(10))
    assert (extra, 10 + extra + rest) == (4, 250)


def test_all_prints_every_row_as_plain_aligned_blocks(store, capsys, monkeypatch):
    monkeypatch.setattr(query_command, "ALL_CHUNK_ROWS", 100)
    sql = "SELECT 'row-' || seq AS tag FROM trades ORDER BY seq"
    assert main(["query", sql, "--all", "--store", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("row-") for line in lines) == 250 and lines[-1] == "250 rows"
    assert lines.count("tag") == 3 and lines[:3] == ["tag", "------", "row-0"]
    sql = "SELECT run_id, total_pnl, trades FROM runs ORDER BY run_id"
    assert main(["query", sql, "--all", "--store", str(store)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "run_id                 | total_pnl | trades",
        "-----------------------+-----------+-------",
        f"{RUN_IDS[0]} |      1.50 |    125",
        f"{RUN_IDS[1]} |     -2.25 |    125",
        "2 rows",
    ]
    assert main(["query", "SELECT 1 AS x WHERE false", "--all", "--store", str(store)]) == 0
    assert capsys.readouterr().out == "0 rows\n"


def test_vertical_prints_one_field_per_line(store, capsys):
    sql = "SELECT run_id, total_pnl FROM runs ORDER BY run_id"
    assert main(["query", sql, "--vertical", "--store", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("-[ RECORD 1 ]")
    assert lines[1:3] == [f"run_id    | {RUN_IDS[0]}", "total_pnl | 1.50"]
    assert lines[3].startswith("-[ RECORD 2 ]") and lines[-1] == "2 rows"


def test_rows_too_wide_for_the_terminal_are_shown_one_field_per_line(store, capsys):
    columns = ", ".join(f"repeat('x', 30) AS wide_{i}" for i in range(24))
    assert main(["query", f"SELECT run_id, {columns} FROM runs", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "one field per line" in out and f"run_id  | {RUN_IDS[0]}" in out


def test_csv_and_parquet_files_hold_every_row(store, tmp_path, capsys):
    sql = "SELECT * FROM trades ORDER BY seq"
    csv, parquet = tmp_path / "trades.csv", tmp_path / "trades.parquet"
    args = ["query", sql, "--csv", str(csv), "--parquet", str(parquet), "--store", str(store)]
    assert main(args) == 0
    assert f"wrote 250 rows to {csv} and {parquet}" in capsys.readouterr().out
    expected = read(store, sql)
    assert pq.read_table(parquet).equals(expected)
    from_csv = pa_csv.read_csv(csv)
    assert from_csv.num_rows == 250 and from_csv.column_names == expected.column_names
    assert from_csv["run_id"].equals(expected["run_id"])
    assert from_csv["fill_price"].to_pylist() == expected["fill_price"].to_pylist()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.duckdb",
        "trades.csv",
        "trades.parquet",
    ]


def test_nested_values_are_written_to_csv_as_text(store, capsys):
    sql = "SELECT [1, 2] AS l, {'a': 1} AS s, NULL::INT[] AS e"
    assert main(["query", sql, "--csv", "-", "--store", str(store)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["l", "s", "e"], ["[1, 2]", "{'a': 1}", ""]]


def test_an_output_file_never_replaces_a_store(store, tmp_path, capsys):
    other = make_store(tmp_path / "other.duckdb")
    before = digest(store), digest(other)
    for target in (store, other, tmp_path / "results.duckdb.wal"):
        assert main(["query", "SELECT 1", "--parquet", str(target), "--store", str(store)]) == 2
        assert "is a DuckDB database" in capsys.readouterr().err
    assert (digest(store), digest(other)) == before


def test_a_query_that_fails_midway_leaves_no_file(store, tmp_path, capsys):
    sql = "SELECT CASE WHEN seq = 240 THEN error('boom') ELSE seq END AS s FROM trades"
    target = tmp_path / "out.csv"
    assert main(["query", sql, "--csv", str(target), "--store", str(store)]) == 2
    assert "boom" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.duckdb"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT run_id, strategy, params, status, total_pnl, finished_at FROM runs",
        "SELECT * FROM runs",
    ],
)
def test_ids_are_shown_whole_on_a_narrow_terminal(store, capsys, monkeypatch, sql):
    narrow = Console(width=80, record=True, file=io.StringIO())
    monkeypatch.setattr(mmflow.console, "console", narrow)
    assert main(["query", sql, "--store", str(store)]) == 0
    text = narrow.export_text()
    assert all(run_id in text for run_id in RUN_IDS), text
    assert "…" not in text
