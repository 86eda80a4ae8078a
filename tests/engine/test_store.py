"""The DuckDB results store: schema, atomic idempotent writes, read-back, lock errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing

import duckdb
import numpy as np
import pandas as pd
import pytest

from engine.results import store
from engine.results.store import (
    RunRecord,
    StoreError,
    StoreLockedError,
    connect,
    latest_run_id,
    migrate,
    new_run_id,
    query,
    read_run,
    read_trades,
    write_run,
)
from engine.types import SUMMARY_FIELDS, TRADE_COLUMNS, Failure, SecurityResult

KEYED = {"run_id": "VARCHAR", "security": "VARCHAR"}
EXPECTED_SCHEMA = {
    "migrations": {"name": "VARCHAR", "applied_at": "TIMESTAMP"},
    "runs": {
        "run_id": "VARCHAR",
        "sweep_id": "VARCHAR",
        "flow_run_id": "VARCHAR",
        "kind": "VARCHAR",
        "strategy": "VARCHAR",
        "params": "JSON",
        "config_hash": "VARCHAR",
        "data_source": "VARCHAR",
        "data_hash": "VARCHAR",
        "code_version": "VARCHAR",
        "started_at": "TIMESTAMP",
        "finished_at": "TIMESTAMP",
        "status": "VARCHAR",
        "securities": "BIGINT",
        "securities_ok": "BIGINT",
        "securities_failed": "BIGINT",
        "trades": "BIGINT",
        "total_pnl": "DOUBLE",
        "sharpe_ratio": "DOUBLE",
        "max_drawdown": "DOUBLE",
        "max_drawdown_pct": "DOUBLE",
        "calmar_ratio": "DOUBLE",
        "win_rate": "DOUBLE",
        "profit_factor": "DOUBLE",
    },
    # SUMMARY_FIELDS is the contract for this table, so the expectation is derived from it.
    "security_results": {"run_id": "VARCHAR", **dict(SUMMARY_FIELDS), "params": "JSON"},
    "trades": {
        **KEYED,
        "seq": "BIGINT",
        "timestamp": "TIMESTAMP",
        "side": "VARCHAR",
        "fill_price": "DOUBLE",
        "fill_qty": "BIGINT",
        "realized_pnl": "DOUBLE",
        "position": "BIGINT",
        "pnl": "DOUBLE",
    },
    "daily_pnl": {
        **KEYED,
        "date": "DATE",
        "realized_pnl": "DOUBLE",
        "cumulative_pnl": "DOUBLE",
        "trades": "BIGINT",
    },
    "failures": {
        **KEYED,
        "attempts": "BIGINT",
        "error_type": "VARCHAR",
        "message": "VARCHAR",
    },
}
VIEWS = {"v_run_summary", "v_strategy_comparison"}
START = dt.datetime(2026, 11, 28, 8, 15)


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


def make_trades(n: int, start: str = "2026-01-05 09:30") -> pd.DataFrame:
    """n alternating buy/sell fills of one security, with awkward doubles."""
    seq = np.arange(n, dtype="int64")
    side = np.where(seq % 2 == 0, 1, -1)
    frame = pd.DataFrame(
        {
            "seq": seq,
            "timestamp": pd.Timestamp(start) + pd.to_timedelta(seq * 1_500_000, unit="us"),
            "side": np.where(side > 0, "buy", "sell"),
            "fill_price": 100.0 + seq / 3.0 + 0.1,
            "fill_qty": np.full(n, 100, dtype="int64"),
            "realized_pnl": np.where(side < 0, 1.0 / 7.0, 0.0),
            "position": np.where(side > 0, 100, 0).astype("int64"),
            "pnl": np.cumsum(np.where(side < 0, 1.0 / 7.0, 0.0)),
        }
    )
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    return frame[list(TRADE_COLUMNS)]


def make_result(security: str, n: int, python_dates: bool = False) -> SecurityResult:
    """A hand-built SecurityResult with n trades over two dates."""
    dates = [dt.date(2026, 1, 5), dt.date(2026, 1, 6)]
    daily = pd.DataFrame(
        {
            "date": dates if python_dates else pd.to_datetime(dates).astype("datetime64[ns]"),
            "realized_pnl": [0.5, 0.25],
            "cumulative_pnl": [0.5, 0.75],
            "trades": np.array([n // 2, n - n // 2], dtype="int64"),
        }
    )
    summary = {name: None for name, _ in SUMMARY_FIELDS}
    summary.update(
        security=security,
        strategy="v1",
        trades=n,
        total_pnl=0.75,
        sharpe_ratio=float("nan"),
        first_date=dates[0],
        last_date=pd.Timestamp(dates[1]),
    )
    params = {"quote_size": 100, "security": security}
    return SecurityResult(security, "v1", params, make_trades(n), daily, summary)


def make_run(run_id: str = "20261128T081500-aaaaaa", **changes) -> RunRecord:
    """A RunRecord with plausible values."""
    fields = dict(
        run_id=run_id,
        kind="backtest",
        strategy="v1",
        params={"quote_size": 100, "overrides": {"AAA": {"quote_size": 200}}},
        config_hash="c0ffee",
        data_source="data/sample.xlsx",
        data_hash="d00d",
        code_version="0.1.0+abc",
        started_at=START,
        finished_at=START + dt.timedelta(seconds=42),
        status="partial",
    )
    return RunRecord(**{**fields, **changes})


PORTFOLIO = {"trades": 7, "total_pnl": 1.5, "sharpe_ratio": 1.25, "win_rate": float("nan")}


def write_sample(path, run_id: str = "20261128T081500-aaaaaa", n: int = 5) -> list[SecurityResult]:
    """Write two securities and one failure as run `run_id`; return the results."""
    results = [make_result("AAA", n), make_result("BBB", 2, python_dates=True)]
    failures = [Failure("CCC", "WorkbookError", "sheet CCC has no header row", attempts=2)]
    write_run(path, make_run(run_id), results, failures, PORTFOLIO)
    return results


def rows_of_run(path, run_id: str) -> dict[str, int]:
    """Rows of `run_id` in every run table."""
    with connect(path, read_only=True) as con:
        return {
            table: con.execute(
                f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]
            ).fetchall()[0][0]
            for table in store.RUN_TABLES
        }


def test_migrate_memory_creates_the_documented_schema():
    con = duckdb.connect(":memory:")
    assert migrate(con) == ["m001_initial", "m002_views"]
    schema = schema_of(con)
    assert schema == EXPECTED_SCHEMA
    for table, columns in EXPECTED_SCHEMA.items():  # column order is part of the interface too
        assert list(schema[table]) == list(columns), table
    views = {
        name
        for (name,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    }
    assert views == VIEWS


def test_migrate_twice_is_a_no_op():
    con = duckdb.connect(":memory:")
    migrate(con)
    assert migrate(con) == []
    assert schema_of(con) == EXPECTED_SCHEMA
    assert con.execute("SELECT count(*) FROM migrations").fetchall() == [(2,)]


def test_migrate_adds_a_summary_field_that_is_newer_than_the_store(monkeypatch):
    con = duckdb.connect(":memory:")
    migrate(con)
    monkeypatch.setattr(store, "SUMMARY_FIELDS", (*SUMMARY_FIELDS, ("fees", "DOUBLE")))
    migrate(con)
    assert schema_of(con)["security_results"]["fees"] == "DOUBLE"


def test_write_run_then_read_back(tmp_path):
    path = tmp_path / "results.duckdb"
    results = write_sample(path)

    for result in results:
        stored = read_trades(path, "20261128T081500-aaaaaa", result.security)
        assert (stored["security"] == result.security).all()
        pd.testing.assert_frame_equal(stored[list(TRADE_COLUMNS)], result.trades, check_exact=True)
    both = read_trades(path, "20261128T081500-aaaaaa")
    assert both["security"].tolist() == ["AAA"] * 5 + ["BBB"] * 2

    run = read_run(path, "20261128T081500-aaaaaa")
    assert run["params"] == make_run().params
    assert run["started_at"] == START
    expected_counts = dict(securities=3, securities_ok=2, securities_failed=1, trades=7)
    assert {key: run[key] for key in expected_counts} == expected_counts
    assert (run["total_pnl"], run["sharpe_ratio"]) == (1.5, 1.25)
    assert run["win_rate"] is None and run["calmar_ratio"] is None  # NaN and missing are NULL

    daily = query(path, "SELECT security, date, trades FROM daily_pnl ORDER BY security, date")
    assert daily["date"].dt.date.tolist() == [dt.date(2026, 1, 5), dt.date(2026, 1, 6)] * 2
    failures = query(path, "SELECT security, attempts, error_type FROM failures")
    assert failures.values.tolist() == [["CCC", 2, "WorkbookError"]]
    summary = query(
        path, "SELECT security, trades, sharpe_ratio, last_date FROM security_results ORDER BY 1"
    )
    assert summary["trades"].tolist() == [5, 2]
    assert summary["sharpe_ratio"].isna().all()
    assert summary["last_date"].dt.date.tolist() == [dt.date(2026, 1, 6)] * 2


def test_views_summarise_runs_and_compare_strategies(tmp_path):
    path = tmp_path / "results.duckdb"
    write_sample(path, "20261128T081500-aaaaaa")
    write_sample(path, "20261128T091500-bbbbbb")

    runs = query(path, "SELECT run_id, trades, securities_failed FROM v_run_summary")
    assert runs["run_id"].tolist() == ["20261128T091500-bbbbbb", "20261128T081500-aaaaaa"]
    compare = query(path, "SELECT * FROM v_strategy_comparison")
    assert len(compare) == 1
    row = compare.iloc[0]
    assert (row["strategy"], row["runs"], row["security_results"], row["trades"]) == (
        "v1",
        2,
        4,
        14,
    )
    assert str(compare["trades"].dtype) == "int64"  # SUM(BIGINT) cast back from HUGEINT


def test_rewriting_a_run_replaces_it(tmp_path):
    path = tmp_path / "results.duckdb"
    write_sample(path, n=5)
    write_sample(path, n=3)
    assert rows_of_run(path, "20261128T081500-aaaaaa") == {
        "runs": 1,
        "security_results": 2,
        "trades": 5,
        "daily_pnl": 4,
        "failures": 1,
    }
    assert read_run(path, "20261128T081500-aaaaaa")["trades"] == 5


def test_a_crash_mid_write_leaves_no_rows_of_the_run(tmp_path, monkeypatch):
    path = tmp_path / "results.duckdb"
    write_sample(path, "20261128T081500-keep00")  # an earlier run must survive untouched
    insert_arrow = store._insert_arrow

    def crash_on_trades(con, table, run_id, data):
        if table == "trades":
            raise RuntimeError("worker died")
        insert_arrow(con, table, run_id, data)

    monkeypatch.setattr(store, "_insert_arrow", crash_on_trades)
    with pytest.raises(RuntimeError, match="worker died"):
        write_sample(path, "20261128T081500-crash0")

    assert set(rows_of_run(path, "20261128T081500-crash0").values()) == {0}
    assert rows_of_run(path, "20261128T081500-keep00")["trades"] == 7
    # a crashed re-write keeps the earlier complete version of the same run
    with pytest.raises(RuntimeError, match="worker died"):
        write_sample(path, "20261128T081500-keep00", n=9)
    assert rows_of_run(path, "20261128T081500-keep00")["trades"] == 7


def test_bulk_write_of_200k_trades(tmp_path):
    path = tmp_path / "results.duckdb"
    results = [make_result(f"S{i:02d}", 50_000) for i in range(4)]
    write_run(path, make_run(status="completed"), results, [], {})
    counts = query(
        path, "SELECT count(*)::BIGINT AS n, count(DISTINCT security)::BIGINT AS s FROM trades"
    )
    assert counts.values.tolist() == [[200_000, 4]]
    assert read_run(path, make_run().run_id)["trades"] == 200_000


def test_latest_run_id_and_new_run_id(tmp_path):
    path = tmp_path / "results.duckdb"
    write_sample(path, "20261128T081500-aaaaaa")
    later = make_run(
        "20261128T091500-bbbbbb", kind="sweep", started_at=START + dt.timedelta(hours=1)
    )
    write_run(path, later, [], [], {})
    assert latest_run_id(path) == "20261128T091500-bbbbbb"
    assert latest_run_id(path, kind="backtest") == "20261128T081500-aaaaaa"
    assert latest_run_id(path, kind="compare") is None
    first, second = new_run_id(), new_run_id()
    assert len(first) == 22 and first[8] == "T" and first[15] == "-" and first != second


def test_read_only_on_a_missing_store_says_what_to_do(tmp_path):
    missing = tmp_path / "nowhere.duckdb"
    with pytest.raises(StoreError, match="no store at .*nowhere.duckdb; run `mmflow run` first"):
        with connect(missing, read_only=True):
            pass
    assert not missing.exists()


def test_bad_inputs_fail_before_touching_the_store(tmp_path):
    path = tmp_path / "results.duckdb"
    result = make_result("AAA", 3)
    with pytest.raises(StoreError, match="AAA: trades lack columns \\['pnl'\\]"):
        no_pnl = dataclasses.replace(result, trades=result.trades.drop(columns="pnl"))
        write_run(path, make_run(), [no_pnl], [], {})
    with pytest.raises(StoreError, match="more than once"):
        write_run(path, make_run(), [result], [Failure("AAA", "E", "m")], {})
    with pytest.raises(ValueError, match="status 'done'"):
        make_run(status="done")
    assert not path.exists()


def hold_store(path: str, ready, release) -> None:
    """Child process: hold the store open read-write until told to let go."""
    con = duckdb.connect(path)
    ready.set()
    release.wait(60)
    con.close()


@pytest.fixture
def locked_store(tmp_path):
    """A store file held open read-write by another process."""
    path = tmp_path / "locked.duckdb"
    with connect(path):
        pass
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=hold_store, args=(str(path), ready, release))
    child.start()
    try:
        assert ready.wait(60), "the child process did not open the store"
        yield path, child.pid
    finally:
        release.set()
        child.join(30)
        if child.is_alive():
            child.terminate()


def test_a_locked_store_raises_store_locked_error(locked_store):
    path, pid = locked_store
    with pytest.raises(StoreLockedError) as raised:
        with connect(path):
            pass
    message = str(raised.value)
    assert str(path) in message and f"PID {pid}" in message
    assert "close the other DuckDB session" in message
    assert raised.value.pid == pid

    with pytest.raises(StoreLockedError, match="locked.duckdb"):
        write_run(path, make_run(), [make_result("AAA", 3)], [], {}, retries=1, retry_delay=0.1)
    with pytest.raises(StoreLockedError):
        read_trades(path, make_run().run_id)
