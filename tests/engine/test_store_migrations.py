"""The store's schema and migrations: the documented tables and views, migrations frozen and
uniquely named, and an old store upgrading without loss to the same schema as a new one (simonw/llm
style: migrate, then compare with what is expected)."""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import pytest

from engine.results.store import MIGRATIONS, connect, migrate
from engine.types import ANALYTICS_FIELDS, MARKOUT_KIND_FIELDS, SUMMARY_FIELDS

T0 = dt.datetime(2026, 11, 28, 8, 15)


def columns(spec: str) -> dict[str, str]:
    """{column: type} from "name TYPE, name TYPE, ..." (in order)."""
    return dict(pair.split() for pair in spec.split(","))


KEYED = "run_id VARCHAR, security VARCHAR, "
EXPECTED_SCHEMA = {
    "migrations": columns("name VARCHAR, applied_at TIMESTAMP"),
    "runs": columns(
        "run_id VARCHAR, sweep_id VARCHAR, flow_run_id VARCHAR, kind VARCHAR, strategy VARCHAR, "
        "params JSON, config_hash VARCHAR, data_source VARCHAR, data_hash VARCHAR, "
        "code_version VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR, "
        "securities BIGINT, securities_ok BIGINT, securities_failed BIGINT, trades BIGINT, "
        "total_pnl DOUBLE, sharpe_ratio DOUBLE, max_drawdown DOUBLE, max_drawdown_pct DOUBLE, "
        "calmar_ratio DOUBLE, win_rate DOUBLE, profit_factor DOUBLE, realized_pnl DOUBLE, "
        "unrealized_pnl DOUBLE, git_commit VARCHAR, git_dirty BOOLEAN, fees DOUBLE, "
        "net_pnl DOUBLE, edge_bps DOUBLE, markout_bps_60 DOUBLE, uptime_two_sided DOUBLE, "
        "fill_ratio DOUBLE, avg_abs_position DOUBLE"
    ),
    "security_results": columns(
        KEYED + "strategy VARCHAR, trades BIGINT, buy_trades BIGINT, sell_trades BIGINT, "
        "volume BIGINT, notional DOUBLE, final_position BIGINT, realized_pnl DOUBLE, "
        "unrealized_pnl DOUBLE, total_pnl DOUBLE, last_price DOUBLE, rows_read BIGINT, "
        "rows_kept BIGINT, rows_in_window BIGINT, bid_rows BIGINT, ask_rows BIGINT, "
        "trade_rows BIGINT, dropped_bad_timestamp BIGINT, dropped_bad_price BIGINT, "
        "dropped_nonpositive_price BIGINT, market_dates BIGINT, strategy_dates BIGINT, "
        "first_date DATE, last_date DATE, stop_loss_triggers BIGINT, avg_pnl_per_trade DOUBLE, "
        "sharpe_ratio DOUBLE, max_drawdown DOUBLE, max_drawdown_pct DOUBLE, calmar_ratio DOUBLE, "
        "win_rate DOUBLE, profit_factor DOUBLE, params JSON, dropped_nonfinite_price BIGINT, "
        "dropped_bad_size BIGINT"
    ),
    "trades": columns(
        KEYED + "seq BIGINT, timestamp TIMESTAMP, side VARCHAR, fill_price DOUBLE, "
        "fill_qty BIGINT, realized_pnl DOUBLE, position BIGINT, pnl DOUBLE"
    ),
    "daily_pnl": columns(
        KEYED + "date DATE, realized_pnl DOUBLE, cumulative_pnl DOUBLE, trades BIGINT, "
        "mtm_pnl DOUBLE, fees DOUBLE"
    ),
    "failures": columns(KEYED + "attempts BIGINT, error_type VARCHAR, message VARCHAR"),
    # m006_analytics: fill quality, inventory and fees (ANALYTICS.md)
    "security_analytics": columns(
        KEYED + ", ".join(f"{name} {type_}" for name, type_ in ANALYTICS_FIELDS[1:])
    ),
    "security_markouts": columns(
        KEYED + ", ".join(f"{name} {type_}" for name, type_ in MARKOUT_KIND_FIELDS)
    ),
    "fill_analytics": columns(
        KEYED + "seq BIGINT, row BIGINT, kind VARCHAR, fee DOUBLE, mid_0 DOUBLE, mid_1 DOUBLE, "
        "mid_5 DOUBLE, mid_30 DOUBLE, mid_60 DOUBLE, mid_300 DOUBLE, edge DOUBLE, "
        "markout_1 DOUBLE, markout_5 DOUBLE, markout_30 DOUBLE, markout_60 DOUBLE, "
        "markout_300 DOUBLE"
    ),
    # m007_nightly: the tick history's catalog and the nightly loop
    "ingested_files": columns(
        "history_id VARCHAR, path VARCHAR, content_hash VARCHAR, size BIGINT, sheets BIGINT, "
        "rows BIGINT, rows_dropped BIGINT, first_date DATE, last_date DATE, "
        "ingested_at TIMESTAMP, status VARCHAR, error VARCHAR, days_new BIGINT, "
        "days_revised BIGINT, days_unchanged BIGINT"
    ),
    "history_days": columns(
        "history_id VARCHAR, security VARCHAR, date DATE, rows BIGINT, content_hash VARCHAR, "
        "source_file VARCHAR, source_hash VARCHAR, revision BIGINT, ingested_at TIMESTAMP, "
        "warning VARCHAR"
    ),
    "run_days": columns(KEYED + "date DATE, content_hash VARCHAR"),
    "nightly_runs": columns(
        "night_id VARCHAR, flow_run_id VARCHAR, started_at TIMESTAMP, strategy VARCHAR, "
        "source VARCHAR, run_id VARCHAR, previous_run_id VARCHAR, status VARCHAR, error VARCHAR"
    ),
    "nightly_diffs": columns(
        "run_id VARCHAR, previous_run_id VARCHAR, strategy VARCHAR, security VARCHAR, "
        "date DATE, status VARCHAR, revised_from DATE, reason VARCHAR, "
        "realized_pnl_before DOUBLE, realized_pnl_after DOUBLE, trades_before BIGINT, "
        "trades_after BIGINT, net_pnl_before DOUBLE, net_pnl_after DOUBLE"
    ),
    # m008_run_daily: each run's portfolio daily P&L
    "run_daily": columns(
        "run_id VARCHAR, date DATE, realized_pnl DOUBLE, cumulative_pnl DOUBLE, trades BIGINT, "
        "mtm_pnl DOUBLE, fees DOUBLE"
    ),
}
VIEWS = {
    "v_run_summary",
    "v_strategy_comparison",
    "v_nightly_summary",
    "v_markout_curve",
    "v_edge_vs_adverse_selection",
}
MIGRATION_NAMES = [
    "m001_initial",
    "m002_views",
    "m003_pnl_names_and_git",
    "m004_views",
    "m005_input_rule_counts",
    "m006_analytics",
    "m007_nightly",
    "m008_run_daily",
]


def schema_of(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """{table: {column: type}} for the base tables, in column order."""
    rows = con.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
        "WHERE t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    schema: dict[str, dict[str, str]] = {}
    for table, column, type_ in rows:
        schema.setdefault(table, {})[column] = type_
    return schema


def test_migrate_memory_creates_the_documented_schema():
    con = duckdb.connect(":memory:")
    assert migrate(con) == MIGRATION_NAMES
    found = schema_of(con)
    assert found == EXPECTED_SCHEMA
    for table, expected in EXPECTED_SCHEMA.items():  # column order is part of the interface too
        assert list(found[table]) == list(expected), table
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert {name for (name,) in views} == VIEWS


def test_migrate_twice_is_a_no_op():
    con = duckdb.connect(":memory:")
    migrate(con)
    assert migrate(con) == []
    assert schema_of(con) == EXPECTED_SCHEMA
    assert con.execute("SELECT count(*) FROM migrations").fetchall() == [(len(MIGRATIONS),)]


# An m001-era store's rows. runs.total_pnl then held the portfolio's *realized* P&L.
OLD_RUNS = [
    # run_id, kind, strategy, params, status, securities_ok, securities_failed, trades, total_pnl
    ("r1", "backtest", "v1", '{"config": null, "overrides": {}}', "partial", 2, 1, 3, 10.0),
    ("r2", "sweep", "v2", '{"config": null, "overrides": {"a": 1}}', "failed", 0, 1, 0, None),
    ("r3", "backtest", "v1", "{}", "completed", 0, 0, 0, 3.0),
]
OLD_SECURITIES = [
    # run_id, security, trades, realized_pnl, unrealized_pnl, total_pnl, last_date
    ("r1", "AAA", 2, 4.0, 1.5, 5.5, dt.date(2026, 1, 6)),
    ("r1", "BBB", 1, 6.0, 2.5, 8.5, None),
]
OLD_TRADES = [
    ("r1", "AAA", 0, T0, "buy", 100.5, 100, 0.0, 100, 0.0),
    ("r1", "AAA", 1, T0 + dt.timedelta(seconds=1), "sell", 100.54, 100, 4.0, 0, 4.0),
    ("r1", "BBB", 0, T0, "sell", 9.9, 300, 6.0, -300, 6.0),
]
OLD_DAILY = [("r1", "AAA", dt.date(2026, 1, 5), 4.0, 4.0, 2), ("r1", "BBB", T0.date(), 6.0, 6.0, 1)]
OLD_FAILURES = [("r1", "CCC", 2, "WorkbookError", "no header"), ("r2", "DDD", 1, "E", "boom")]


def fill_m001_store(con: duckdb.DuckDBPyConnection) -> None:
    """Rows in every m001 table, as the writer of that time stored them."""
    for row in OLD_RUNS:
        con.execute(
            "INSERT INTO runs (run_id, kind, strategy, params, status, securities_ok, "
            "securities_failed, trades, total_pnl, securities, started_at, finished_at, "
            "data_hash, config_hash, code_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 'd00d', 'c0ffee', '0.1.0+abc')",
            [*row, T0, T0 + dt.timedelta(seconds=42)],
        )
    for row in OLD_SECURITIES:
        con.execute(
            "INSERT INTO security_results (run_id, security, trades, realized_pnl, "
            "unrealized_pnl, total_pnl, last_date, strategy, params) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'v1', '{\"quote_size\": 100}')",
            list(row),
        )
    con.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", OLD_TRADES)
    con.executemany("INSERT INTO daily_pnl VALUES (?, ?, ?, ?, ?, ?)", OLD_DAILY)
    con.executemany("INSERT INTO failures VALUES (?, ?, ?, ?, ?)", OLD_FAILURES)


def snapshot(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> list[tuple]:
    """`columns` of every row of `table`, in a fixed order."""
    names = ", ".join(f'"{c}"' for c in columns)
    return con.execute(f"SELECT {names} FROM {table} ORDER BY ALL").fetchall()


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The column names of `table`, in order."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [name for (name,) in rows]


def shape(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Everything a store's shape is made of: columns of tables and views, constraints, views."""
    return {
        "columns": con.execute(
            "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
            "column_default FROM information_schema.columns ORDER BY ALL"
        ).fetchall(),
        "constraints": con.execute(
            "SELECT table_name, constraint_type, constraint_column_names "
            "FROM duckdb_constraints() ORDER BY ALL"
        ).fetchall(),
        "views": con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL"
        ).fetchall(),
        "migrations": con.execute("SELECT name FROM migrations ORDER BY name").fetchall(),
    }


def test_migration_names_are_unique_and_numbered_in_order():
    names = [fn.__name__ for fn in MIGRATIONS]
    assert len(names) == len(set(names))
    numbers = [int(name[1:4]) for name in names]
    assert all(name[0] == "m" and name[4] == "_" for name in names)
    assert numbers == list(range(1, len(names) + 1))


# What each shipped migration leaves behind (tables, constraints, view text), fingerprinted. A
# changed fingerprint means a shipped migration was edited: restore it and add a new migration.
# (A DuckDB upgrade that reformats view text may also change them; then re-pin after checking.)
SHIPPED = {
    "m001_initial": "897d97c846a5cc52",
    "m002_views": "5ad213a575574bb6",
    "m003_pnl_names_and_git": "196d05b6fd441b37",
    "m004_views": "fb20b47bf86cb326",
    "m006_analytics": "8d234d3db158c5bc",
    "m007_nightly": "693df1b2a02f2ba1",  # cumulative: includes m006_analytics before it
    "m008_run_daily": "6e48005eab1182ad",
}


def test_shipped_migrations_are_frozen():
    con = duckdb.connect(":memory:")
    fingerprints = {}
    for fn in MIGRATIONS:
        migrate(con, upto=fn.__name__)
        found = shape(con)
        del found["migrations"]
        fingerprints[fn.__name__] = hashlib.sha256(repr(found).encode()).hexdigest()[:16]
    assert {name: fingerprints[name] for name in SHIPPED} == SHIPPED


def test_migrate_stops_after_the_named_migration_and_refuses_unknown_names():
    con = duckdb.connect(":memory:")
    assert migrate(con, upto="m001_initial") == ["m001_initial"]
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall() == [
        (0,)
    ]
    with pytest.raises(ValueError, match="no migration 'm999_x'"):
        migrate(con, upto="m999_x")


def test_a_m001_store_with_rows_upgrades_without_loss(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con, upto="m001_initial")
        fill_m001_store(con)
        tables = ("runs", "security_results", "trades", "daily_pnl", "failures")
        old_columns = {table: columns_of(con, table) for table in tables}
        before = {table: snapshot(con, table, old_columns[table]) for table in tables}
        old_pnl = dict(con.execute("SELECT run_id, total_pnl FROM runs").fetchall())

    with connect(path) as con:  # a read-write open migrates
        assert [
            n for (n,) in con.execute("SELECT name FROM migrations ORDER BY name").fetchall()
        ] == [fn.__name__ for fn in MIGRATIONS]
        for table in tables:
            if table == "runs":
                continue
            assert snapshot(con, table, old_columns[table]) == before[table], table
        kept = [c for c in old_columns["runs"] if c != "total_pnl"]
        assert snapshot(con, "runs", kept) == snapshot_without(before["runs"], old_columns, kept)
        pnl = con.execute(
            "SELECT run_id, realized_pnl, unrealized_pnl, total_pnl, git_commit, git_dirty "
            "FROM runs ORDER BY run_id"
        ).fetchall()
        portfolio_daily = con.execute(
            'SELECT run_id, "date", realized_pnl, cumulative_pnl, trades, mtm_pnl, fees '
            'FROM run_daily ORDER BY run_id, "date"'
        ).fetchall()
    # m008 derives each old run's portfolio daily P&L from its daily_pnl rows (fees 0 since m006)
    by_date: dict = {}
    for _, _, day, realized, _, trades in OLD_DAILY:
        total, count = by_date.get(day, (0.0, 0))
        by_date[day] = (total + realized, count + trades)
    cumulative, expected = 0.0, []
    for day, (realized, trades) in sorted(by_date.items()):
        cumulative += realized
        expected.append(("r1", day, realized, cumulative, trades, None, 0.0))
    assert portfolio_daily == expected
    assert pnl == [
        ("r1", old_pnl["r1"], 4.0, 14.0, None, None),  # unrealized = 1.5 + 2.5
        ("r2", None, 0.0, None, None, None),  # no securities: unrealized 0, NULL realized
        ("r3", 3.0, 0.0, 3.0, None, None),
    ]


def snapshot_without(rows: list[tuple], old_columns: dict, kept: list[str]) -> list[tuple]:
    """The runs snapshot restricted to the `kept` columns (same order as `snapshot`)."""
    index = [old_columns["runs"].index(c) for c in kept]
    return sorted(tuple(row[i] for i in index) for row in rows)


@pytest.mark.parametrize("old", ["m001_initial", "m002_views"])
def test_an_upgraded_store_has_the_same_schema_as_a_new_one(old):
    new = duckdb.connect(":memory:")
    migrate(new)
    upgraded = duckdb.connect(":memory:")
    migrate(upgraded, upto=old)
    fill_m001_store(upgraded)
    migrate(upgraded)
    assert shape(upgraded) == shape(new)


def test_security_results_columns_are_the_summary_fields():
    con = duckdb.connect(":memory:")
    migrate(con)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'security_results' ORDER BY ordinal_position"
    ).fetchall()
    # params came with m001; figures added later stand after it, in SUMMARY_FIELDS order.
    assert ("params", "JSON") in rows
    assert [r for r in rows if r[0] != "params"] == [("run_id", "VARCHAR"), *SUMMARY_FIELDS]


def add_run(con, run_id: str, finished_s: int, *, data_hash="d00d", code="0.1.0+abc", pnl=1.0):
    """A v1 run with one security result (P&L `pnl`, 2 trades) in a migrated store."""
    con.execute(
        "INSERT INTO runs (run_id, kind, strategy, params, config_hash, data_hash, code_version, "
        "started_at, finished_at, status, trades, realized_pnl, unrealized_pnl, total_pnl, "
        "sharpe_ratio) VALUES (?, 'backtest', 'v1', '{\"overrides\": {}}', 'c0ffee', ?, ?, ?, ?, "
        "'completed', 2, ?, 0.0, ?, 1.0)",
        [run_id, data_hash, code, T0, T0 + dt.timedelta(seconds=finished_s), pnl, pnl],
    )
    con.execute(
        "INSERT INTO security_results (run_id, security, trades, total_pnl) "
        "VALUES (?, 'AAA', 2, ?)",
        [run_id, pnl],
    )


def test_strategy_comparison_counts_identical_reruns_once_and_splits_data():
    con = duckdb.connect(":memory:")
    migrate(con)
    add_run(con, "a-first", 10, pnl=1.0)
    add_run(con, "a-rerun", 20, pnl=2.0)  # the same run again: only this one counts
    add_run(con, "a-newcode", 5, code="0.2.0+def", pnl=4.0)  # other code: a run of its own
    add_run(con, "b-other-data", 30, data_hash="beef", pnl=8.0)
    rows = con.execute(
        "SELECT data_hash, runs, security_results, trades, realized_pnl, total_pnl, avg_run_pnl "
        "FROM v_strategy_comparison"
    ).fetchall()
    assert rows == [("beef", 1, 1, 2, 8.0, 8.0, 8.0), ("d00d", 2, 2, 4, 6.0, 6.0, 3.0)]


def test_run_summary_shows_lineage_and_the_three_pnl_figures():
    con = duckdb.connect(":memory:")
    migrate(con)
    add_run(con, "a-first", 10)
    add_run(con, "b-second", 20, data_hash="beef")
    view = con.execute("SELECT * FROM v_run_summary")
    names = [d[0] for d in view.description]
    rows = view.fetchall()
    for name in ("data_hash", "code_version", "git_commit", "git_dirty"):
        assert name in names
    assert names.index("realized_pnl") < names.index("unrealized_pnl") < names.index("total_pnl")
    assert [row[names.index("run_id")] for row in rows] == ["b-second", "a-first"]


def test_a_reader_upgrades_an_old_store_once_before_reading(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con, upto="m002_views")
        fill_m001_store(con)
    with connect(path, read_only=True) as con:  # an old store met by a reader first
        rows = con.execute(
            "SELECT run_id, realized_pnl, total_pnl FROM v_run_summary WHERE run_id = 'r1'"
        ).fetchall()
        assert rows == [("r1", 10.0, 14.0)]
        assert con.execute("SELECT count(*) FROM migrations").fetchall() == [(len(MIGRATIONS),)]
