"""The DuckDB results store: schema, atomic idempotent writes, read-back, lock errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import multiprocessing

import duckdb
import numpy as np
import pandas as pd
import pytest

from engine.results import metrics
from engine.results.store import (
    RUN_TABLES,
    SWEEP_CELL_COLUMNS,
    StoreError,
    StoreLockedError,
    connect,
    latest_run_id,
    migrate,
    new_run_id,
    query,
    read_run,
    read_sweep_cells,
    read_trades,
    write_run,
    writer,
)
from engine.run import Run
from engine.runner import run_backtest
from engine.types import (
    DAILY_COLUMNS,
    SUMMARY_COLUMNS,
    SUMMARY_FIELDS,
    TRADE_COLUMNS,
    Failure,
    SecurityResult,
)

START = dt.datetime(2026, 11, 28, 8, 15)
RUN_ID = "20261128T081500-aaaaaa"


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
    """A hand-built SecurityResult with n trades over two dates (unrealized P&L 0.25)."""
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
    summary.update(security=security, strategy="v1", trades=n, sharpe_ratio=float("nan"))
    summary.update(realized_pnl=0.75, unrealized_pnl=0.25, total_pnl=1.0)
    summary.update(first_date=dates[0], last_date=pd.Timestamp(dates[1]))
    params = {"quote_size": 100, "security": security}
    trades = make_trades(n)
    stats = metrics.fill_stats(trades["realized_pnl"].to_numpy())
    return SecurityResult(security, "v1", params, trades, daily, summary, stats)


def make_run(run_id: str = RUN_ID, **changes) -> Run:
    """A started Run with plausible lineage (not finished)."""
    fields = dict(
        run_id=run_id,
        kind="backtest",
        strategy="v1",
        params={"config": None, "overrides": {"quote_size": 200}},
        config_hash="c0ffee",
        data_source="data/sample.xlsx",
        data_hash="d00d",
        code_version="0.1.0+abc",
        git_commit="0123abcd",
        git_dirty=False,
        started_at=START,
    )
    return Run(**{**fields, **changes})


def finished(run: Run, results, failures, seconds: float = 42) -> Run:
    """`run` finished with results and failures, `seconds` after START."""
    run.finish(results, failures)
    run.finished_at = START + dt.timedelta(seconds=seconds)
    return run


def write_sample(path, run_id: str = RUN_ID, n: int = 5) -> Run:
    """Write two securities and one failure as run `run_id`; return the run."""
    results = [make_result("AAA", n), make_result("BBB", 2)]
    failures = [Failure("CCC", "WorkbookError", "sheet CCC has no header row", attempts=2)]
    run = finished(make_run(run_id), results, failures)
    write_run(path, run)
    return run


def rows_of_run(path, run_id: str) -> dict[str, int]:
    """Rows of `run_id` in every run table."""
    with connect(path, read_only=True) as con:
        count = "SELECT count(*) FROM {} WHERE run_id = ?"
        return {t: con.execute(count.format(t), [run_id]).fetchall()[0][0] for t in RUN_TABLES}


def test_a_summary_field_newer_than_the_schema_needs_a_migration(tmp_path, monkeypatch):
    con = duckdb.connect(":memory:")
    migrate(con)
    monkeypatch.setattr(writer, "SUMMARY_FIELDS", (*SUMMARY_FIELDS, ("not_a_figure", "DOUBLE")))
    migrate(con)
    columns = con.execute("SELECT column_name FROM information_schema.columns").fetchall()
    assert ("not_a_figure",) not in columns  # nothing derives a column from code

    result = make_result("AAA", 3)
    result.summary["not_a_figure"] = 0.5
    with pytest.raises(StoreError, match=r"new: \['not_a_figure DOUBLE'\].*add a migration"):
        write_run(tmp_path / "results.duckdb", finished(make_run(), [result], []))
    assert set(rows_of_run(tmp_path / "results.duckdb", RUN_ID).values()) == {0}


def test_write_run_then_read_back(tmp_path):
    path = tmp_path / "results.duckdb"
    written = write_sample(path)

    for result in written.results:
        stored = read_trades(path, RUN_ID, result.security)
        assert (stored["security"] == result.security).all()
        pd.testing.assert_frame_equal(stored[list(TRADE_COLUMNS)], result.trades, check_exact=True)
    both = read_trades(path, RUN_ID)
    assert both["security"].tolist() == ["AAA"] * 5 + ["BBB"] * 2

    run = read_run(path, RUN_ID)
    assert run.params == make_run().params
    assert run.started_at == START.replace(tzinfo=dt.UTC)
    assert (run.git_commit, run.git_dirty, run.status) == ("0123abcd", False, "partial")
    assert run.failures == written.failures
    stored = query(path, "SELECT * FROM runs").iloc[0]
    expected_counts = dict(securities=3, securities_ok=2, securities_failed=1, trades=7)
    assert {key: stored[key] for key in expected_counts} == expected_counts
    portfolio = written.portfolio
    assert stored["realized_pnl"] == portfolio.realized_pnl == math.fsum([1 / 7] * 3)  # 3 sells
    assert stored["unrealized_pnl"] == 0.5
    assert stored["total_pnl"] == portfolio.realized_pnl + 0.5
    assert stored["sharpe_ratio"] == portfolio.sharpe_ratio

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
    with pytest.raises(StoreError, match="no run 'nope' in .*SELECT \\* FROM v_run_summary"):
        read_run(path, "nope")


def test_nan_portfolio_figures_are_stored_as_null_and_python_dates_accepted(tmp_path):
    path = tmp_path / "results.duckdb"
    run = finished(make_run(), [make_result("AAA", 4, python_dates=True)], [])
    run.__dict__["portfolio"] = dataclasses.replace(run.portfolio, win_rate=float("nan"))
    write_run(path, run)
    stored = query(path, "SELECT win_rate IS NULL AS null_win_rate, trades FROM runs")
    assert stored.values.tolist() == [[True, 4]]
    daily = read_run(path, RUN_ID).results[0].daily
    assert daily["date"].dt.date.tolist() == [dt.date(2026, 1, 5), dt.date(2026, 1, 6)]


def test_views_summarise_runs_and_compare_strategies(tmp_path):
    path = tmp_path / "results.duckdb"
    write_sample(path, "20261128T081500-aaaaaa")
    write_sample(path, "20261128T091500-bbbbbb", n=7)
    write_run(path, finished(make_run("20261128T101500-cccccc", data_hash="beef"), [], []))

    runs = query(path, "SELECT run_id, trades, securities_failed, git_commit FROM v_run_summary")
    assert [r[-6:] for r in runs["run_id"]] == ["cccccc", "bbbbbb", "aaaaaa"]  # newest first
    compare = query(path, "SELECT * FROM v_strategy_comparison")
    assert len(compare) == 2  # one row per data_hash
    row = compare.set_index("data_hash").loc["d00d"]
    # both runs share strategy, config_hash, data_hash and code_version: the later counts alone
    assert [row[c] for c in ("strategy", "runs", "security_results", "trades")] == ["v1", 1, 2, 9]
    assert str(compare["trades"].dtype) == "int64"  # SUM(BIGINT) cast back from HUGEINT


def test_rewriting_a_run_replaces_it(tmp_path):
    path = tmp_path / "results.duckdb"
    write_sample(path, n=5)
    write_sample(path, n=3)
    expected = {"runs": 1, "security_results": 2, "trades": 5, "daily_pnl": 4, "failures": 1}
    expected.update(security_analytics=0, security_markouts=0, fill_analytics=0)  # none made
    expected.update(run_daily=2)  # the portfolio's dates (the two securities share theirs)
    assert rows_of_run(path, RUN_ID) == expected
    assert read_run(path, RUN_ID).trades == 5


def test_a_crash_mid_write_leaves_no_rows_of_the_run(tmp_path, monkeypatch):
    path = tmp_path / "results.duckdb"
    write_sample(path, "20261128T081500-keep00")  # an earlier run must survive untouched
    insert_arrow = writer._insert_arrow

    def crash_on_trades(con, table, data):
        if table == "trades":
            raise RuntimeError("worker died")
        insert_arrow(con, table, data)

    monkeypatch.setattr(writer, "_insert_arrow", crash_on_trades)
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
    write_run(path, finished(make_run(), results, []))
    counts = query(
        path, "SELECT count(*)::BIGINT AS n, count(DISTINCT security)::BIGINT AS s FROM trades"
    )
    assert counts.values.tolist() == [[200_000, 4]]
    assert read_run(path, RUN_ID).trades == 200_000


def test_latest_run_id_and_new_run_id(tmp_path):
    path = tmp_path / "results.duckdb"
    write_sample(path, RUN_ID)
    later = make_run(
        "20261128T091500-bbbbbb", kind="sweep", started_at=START + dt.timedelta(hours=1)
    )
    write_run(path, finished(later, [], []))
    assert latest_run_id(path) == "20261128T091500-bbbbbb"
    assert latest_run_id(path, kind="backtest") == RUN_ID
    assert latest_run_id(path, kind="compare") is None
    first, second = new_run_id(), new_run_id()
    assert len(first) == 22 and first[8] == "T" and first[15] == "-" and first != second


def test_read_sweep_cells_gives_each_cells_params_and_figures(tmp_path):
    path = tmp_path / "results.duckdb"
    assert list(read_sweep_cells(path, "s1").columns) == list(SWEEP_CELL_COLUMNS)  # no store
    failures = {"c1": [Failure("CCC", "InputError", "bad")], "c2": [Failure("CCC", "E", "m")]}
    for seconds, cell in ((50, "c1"), (40, "c2")):
        run = make_run(cell, kind="sweep", sweep_id="s1", config_hash=cell)
        write_run(path, finished(run, [make_result("AAA", 3)], failures[cell], seconds))
    cells = read_sweep_cells(path, "s1")
    assert cells["run_id"].tolist() == ["c2", "c1"]  # oldest first
    assert cells["retryable_failures"].tolist() == [1, 0]  # bad input is not worth retrying
    assert json.loads(cells["params"][0]) == make_run().params
    assert (
        cells[["securities_ok", "securities_failed", "trades"]].values.tolist() == [[1, 1, 3]] * 2
    )
    assert cells["total_pnl"].tolist() == [math.fsum([1 / 7]) + 0.25] * 2


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
        write_run(path, finished(make_run(), [no_pnl], []))
    with pytest.raises(StoreError, match="more than once"):
        write_run(path, finished(make_run(), [result], [Failure("AAA", "E", "m")]))
    with pytest.raises(StoreError, match="is not finished; call run.finish"):
        write_run(path, make_run())
    with pytest.raises(ValueError, match="kind 'compare'"):
        make_run(kind="compare")
    assert not path.exists()


def test_read_run_keeps_empty_frames_typed_and_nulls_as_nan(tmp_path):
    path = tmp_path / "results.duckdb"
    quiet = make_result("QQQ", 0)
    quiet.daily = quiet.daily.iloc[0:0]
    write_run(path, finished(make_run(), [make_result("AAA", 3), quiet], []))
    run = read_run(path, RUN_ID)
    aaa, qqq = run.results
    assert (aaa.security, qqq.security, len(qqq.trades), len(qqq.daily)) == ("AAA", "QQQ", 0, 0)
    assert list(qqq.trades.columns) == list(TRADE_COLUMNS)
    assert qqq.trades.dtypes.equals(aaa.trades.dtypes)
    assert list(qqq.daily.columns) == list(DAILY_COLUMNS)
    assert str(qqq.daily["date"].dtype) == "datetime64[ns]"
    assert tuple(aaa.summary) == SUMMARY_COLUMNS
    assert math.isnan(aaa.summary["sharpe_ratio"]) and math.isnan(aaa.summary["notional"])
    assert aaa.summary["volume"] is None  # a NULL count stays None
    assert aaa.summary["last_date"] == dt.date(2026, 1, 6)


def test_read_run_gives_back_the_whole_run(tmp_path, shared_data):
    path = tmp_path / "results.duckdb"
    written = run_backtest(shared_data / "parquet", "v1_baseline", securities=["SPINNEYS", "MODON"])
    assert written.results and written.trades > 0
    write_run(path, written)
    run = read_run(path, written.run_id)

    assert run.lineage() == written.lineage()
    assert run.status == written.status and run.failures == written.failures
    assert len(run.results) == len(written.results)
    originals = {r.security: r for r in written.results}
    for result in run.results:
        original = originals[result.security]
        assert (result.strategy, result.params) == (original.strategy, original.params)
        assert result.summary == original.summary
        pd.testing.assert_frame_equal(result.trades, original.trades, check_exact=True)
        pd.testing.assert_frame_equal(result.daily, original.daily, check_exact=True)
    assert run.portfolio == written.portfolio


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

    run = finished(make_run(), [make_result("AAA", 3)], [])
    with pytest.raises(StoreLockedError, match="locked.duckdb"):
        write_run(path, run, retries=1, retry_delay=0.1)
    with pytest.raises(StoreLockedError):
        read_trades(path, RUN_ID)


def test_a_batch_of_runs_is_written_in_one_transaction_and_compact_cells_keep_no_trades(
    tmp_path, shared_data
):
    from engine.data.source import open_data
    from engine.results.store import write_runs
    from engine.run import Run
    from engine.sweep import Cell, run_cells

    source = open_data(shared_data / "parquet", securities=["SPINNEYS"])
    cells = [Cell("v1_baseline", (("refill_interval_sec", v),)) for v in (30, 60)]
    full = run_cells(source, "SPINNEYS", cells)
    compact = run_cells(source, "SPINNEYS", cells, keep_trades=False)
    runs = [
        Run.start(
            kind="sweep",
            strategy="v1_baseline",
            source=source,
            config_path=None,
            config={},
            overrides=c.params,
        ).finish([r], [])  # fmt: skip
        for c, r in zip(cells, compact, strict=True)
    ]
    path = tmp_path / "store.duckdb"
    write_runs(path, runs)
    for run, kept in zip(runs, full, strict=True):
        stored = read_run(path, run.run_id)
        [result] = stored.results
        assert result.trades is None and result.summary["trades"] == len(kept.trades) > 0
        assert result.summary == kept.summary
        # Portfolio figures of a compact run equal those computed from every fill.
        assert run.portfolio == stored.portfolio == Run.start(
            kind="backtest", strategy="v1_baseline", source=source, config_path=None,
            config={}, overrides={}).finish([kept], []).portfolio  # fmt: skip
    assert query(path, "SELECT count(*) AS n FROM trades")["n"].item() == 0


def test_a_failed_insert_reports_its_own_error_and_stores_nothing(tmp_path):
    """Two runs of one batch with the same id violate the key: that error, not the aborted
    transaction's, is raised, and the batch is rolled back."""
    from engine.results.store import write_runs

    path = tmp_path / "store.duckdb"
    write_sample(path, RUN_ID)
    twins = [finished(make_run("20261128T091500-cccccc"), [make_result("AAA", 3)], [])] * 2
    with pytest.raises(duckdb.ConstraintException, match="20261128T091500-cccccc"):
        write_runs(path, twins)
    assert query(path, "SELECT run_id FROM runs")["run_id"].tolist() == [RUN_ID]
