"""`mmflow query` cannot write: every known way for one statement to create or change a file,
install or load an extension, reach the network or change a setting is refused, twice over.

The first line is the statement check (`check_read_only`); the second is DuckDB itself, on the
connection `open_read_only` hardens. Each escape is tried through the command and again straight
on the hardened connection, skipping the check. HOME points at a temporary folder, so an
extension install or a persistent secret would land there, and the test sees it."""

from __future__ import annotations

import hashlib

import duckdb
import pandas as pd
import pytest
from query_store import make_store

from engine.results import query as q
from mmflow.cli import main

# Each escape names its targets with {out} (a folder next to the store) and {store}.
WRITES = [
    "COPY runs TO '{out}/runs.parquet'",
    "COPY (SELECT * FROM trades) TO '{out}/trades.csv'",
    "COPY runs TO '{store}'",
    "EXPLAIN ANALYZE COPY runs TO '{out}/explained.parquet'",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{store}' (FORMAT csv)",
    "/* a comment */ explain analyze copy runs to '{out}/commented.csv'",
    "EXPLAIN (FORMAT json) COPY runs TO '{out}/formatted.csv'",
    "EXPLAIN (ANALYZE) COPY runs TO '{out}/options.csv'",
    "EXPLAIN /* between */ ANALYZE COPY runs TO '{out}/between.csv'",
    "EXPLAIN ANALYZE -- a line comment\nCOPY runs TO '{out}/line.csv'",
    "EXPORT DATABASE '{out}/export'",
    "EXPLAIN ANALYZE EXPORT DATABASE '{out}/explained_export'",
    "ATTACH '{out}/new.duckdb' AS new",
    "ATTACH '{out}/new_rw.duckdb' AS new (READ_WRITE)",
    "ATTACH ':memory:' AS scratch",
    "PRAGMA import_database('{out}')",
    "PRAGMA copy_database('results', 'scratch')",
    "CHECKPOINT",
    "PRAGMA force_checkpoint",
    "CALL checkpoint()",
    "VACUUM",
]
EXTENSIONS = [
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "INSTALL h3 FROM community",
    "EXPLAIN ANALYZE INSTALL httpfs",
    "LOAD httpfs",
    "EXPLAIN ANALYZE LOAD httpfs",
]
REMOTE = [
    "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "FROM read_csv('http://example.com/x.csv')",
    "SELECT * FROM 's3://bucket/x.parquet'",
    "WITH t AS (SELECT * FROM read_json('https://example.com/x.json')) SELECT * FROM t",
    "EXPLAIN ANALYZE SELECT * FROM read_parquet('https://example.com/x.parquet')",
]
SETTINGS = [
    "SET threads = 1",
    "RESET threads",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET allowed_directories = ['/']",
    "SET autoinstall_known_extensions = true",
    "SET profiling_output = '{out}/profile.json'",
    "PRAGMA enable_profiling",
    "PRAGMA profiling_output = '{out}/profile.json'",
    "PRAGMA threads = 1",
    "EXPLAIN ANALYZE PRAGMA threads = 1",
    "EXPLAIN ANALYZE SET threads = 1",
    "SELECT * FROM enable_logging(storage = 'file', storage_path = '{out}/logs')",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
]
ESCAPES = WRITES + EXTENSIONS + REMOTE + SETTINGS
# DuckDB runs these harmlessly on a read-only store (nothing is written); the check refuses them.
HARMLESS_ON_READ_ONLY = {"CHECKPOINT", "CALL checkpoint()", "VACUUM"}
# Reads of files other than the store: DuckDB refuses them unless the folder is given (--read).
OTHER_FILES = [
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_parquet('{out}/data.parquet')",
    "SELECT * FROM glob('{out}/*')",
    "SELECT * FROM read_csv('{out}/../outside.csv')",
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A store, an `out` folder holding one Parquet file, a CSV file beside them, HOME in
    tmp_path; and a snapshot of it all."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    store = make_store(tmp_path / "results.duckdb", trades=50)
    out = tmp_path / "out"
    out.mkdir()
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 42 AS answer) TO '{out}/data.parquet'")
    (tmp_path / "outside.csv").write_text("a\n1\n")
    return store, out, snapshot(tmp_path)


def snapshot(root) -> dict[str, str]:
    """Every file and folder under root, with a digest of each file."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def fill(sql: str, store, out) -> str:
    return sql.format(store=store, out=out)


def assert_refused(sandbox, capsys, sql: str, message: str, read: bool = False) -> None:
    """`mmflow query` of `sql` (with `--read out` if `read`) exits 2 with `message` on stderr
    and leaves every file of the sandbox as it was."""
    store, out, before = sandbox
    options = ["--read", str(out)] if read else []
    assert main(["query", fill(sql, store, out), *options, "--store", str(store)]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(store.parent) == before


@pytest.mark.parametrize("sql", ESCAPES)
def test_the_command_refuses_every_escape_and_leaves_every_file_as_it_was(sandbox, capsys, sql):
    assert_refused(sandbox, capsys, sql, "error:")


@pytest.mark.parametrize("sql", ESCAPES)
def test_the_command_refuses_every_escape_even_where_reading_is_allowed(sandbox, capsys, sql):
    """With `--read out`, DuckDB would let a statement write under `out`: the check refuses."""
    assert_refused(sandbox, capsys, sql, "error:", read=True)


@pytest.mark.parametrize("sql", [s for s in ESCAPES if s not in HARMLESS_ON_READ_ONLY])
def test_duckdb_itself_refuses_every_escape_without_the_check(sandbox, sql):
    store, out, before = sandbox
    with q.open_read_only(store) as con, pytest.raises(duckdb.Error):
        con.sql(fill(sql, store, out))
    assert snapshot(store.parent) == before


@pytest.mark.parametrize("sql", sorted(HARMLESS_ON_READ_ONLY))
def test_what_duckdb_runs_on_a_read_only_store_changes_nothing(sandbox, sql):
    store, _, before = sandbox
    with q.open_read_only(store) as con:
        con.sql(sql)
    assert snapshot(store.parent) == before


def test_the_hardened_connection_reports_its_settings_locked(sandbox):
    store, _, _ = sandbox
    names = [
        "enable_external_access",
        "autoinstall_known_extensions",
        "autoload_known_extensions",
        "allow_community_extensions",
        "allow_persistent_secrets",
        "lock_configuration",
        "access_mode",
        "temp_directory",
        "allowed_directories",
    ]
    sql = "SELECT name, value FROM duckdb_settings() WHERE list_contains(?, name)"
    with q.open_read_only(store) as con:
        settings = dict(con.execute(sql, [names]).fetchall())
    assert settings == {
        "enable_external_access": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
        "allow_persistent_secrets": "false",
        "lock_configuration": "true",
        "access_mode": "read_only",
        "temp_directory": "",
        "allowed_directories": "[]",
    }


def test_several_statements_hide_no_escape(sandbox, capsys):
    sql = "SELECT 1; COPY runs TO '{out}/x.csv'"
    assert_refused(sandbox, capsys, sql, "one statement at a time")


@pytest.mark.parametrize("sql", OTHER_FILES)
def test_no_file_but_the_store_is_readable_by_default(sandbox, capsys, sql):
    assert_refused(sandbox, capsys, sql, "reads only the store")


def test_a_folder_given_with_read_can_be_read(sandbox, capsys):
    store, out, before = sandbox
    sql = f"SELECT answer FROM read_parquet('{out}/*.parquet')"
    assert main(["query", sql, "--read", str(out), "--store", str(store)]) == 0
    assert "42" in capsys.readouterr().out
    escaped = f"SELECT * FROM read_csv('{out}/../outside.csv')"
    assert main(["query", escaped, "--read", str(out), "--store", str(store)]) == 2
    assert main(["query", "SELECT 1", "--read", str(out / "nope"), "--store", str(store)]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert snapshot(store.parent) == before


def test_python_variables_are_not_scanned(sandbox):
    """DuckDB's Python client reads a DataFrame named in the SQL from the caller's variables."""
    store, _, _ = sandbox
    secret_frame = pd.DataFrame({"secret": [1]})
    with q.open_read_only(store) as con, pytest.raises(duckdb.CatalogException):
        con.sql("SELECT * FROM secret_frame")
    assert len(secret_frame) == 1


def test_the_store_opens_normally_after_a_query(sandbox):
    """The hardened settings belong to the query's own database instance, closed with it."""
    store, _, _ = sandbox
    with q.open_read_only(store) as con:
        con.sql("SELECT 1").fetchall()
    with duckdb.connect(str(store)) as con:
        assert con.sql("SELECT current_setting('enable_external_access')").fetchall() == [(True,)]
        con.execute("CREATE TABLE scratch AS SELECT 1 AS x")
