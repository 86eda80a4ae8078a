"""Sweeps at scale: compact cells equal running each cell alone, trades kept for the best cells
only (and recomputed on demand with `mmflow rerun`), and resume at batch granularity."""

from __future__ import annotations

import pandas as pd
import pytest

import flows.sweep
from engine.results.store import query, read_run, read_trades
from engine.runner import run_backtest
from engine.sweep import auto_batch_cells, trades_for
from flows.sweep import sweep
from mmflow.cli import main

V21 = "v2_1_stop_loss"
GRID12 = {
    "refill_interval_sec": [10, 30, 60],
    "stop_loss_threshold_pct": [1, 2],
    "quote_size": [20_000, 50_000],
}


pytestmark = pytest.mark.usefixtures("threads")  # the data fixture: tests/flows/conftest.py


def overrides_of(store, run_id) -> dict:
    return read_run(store, run_id).params["overrides"]


def test_twelve_compact_cells_equal_each_cell_run_alone(data, tmp_path):
    store = str(tmp_path / "s.duckdb")
    summary = sweep(data=str(data), strategies=[V21], grid=GRID12, store=store, trades="none")
    assert summary.cells == summary.computed == 12
    assert query(store, "SELECT count(*) AS n FROM trades")["n"].item() == 0
    # compact cells keep the A6 row that pools ('all'), not the per-kind rows nor per-fill rows
    assert query(store, "SELECT DISTINCT kind FROM security_markouts")["kind"].tolist() == ["all"]
    assert query(store, "SELECT count(*) AS n FROM daily_pnl")["n"].item() == 0
    for row in summary.table:
        stored = read_run(store, row["run_id"])
        alone = run_backtest(data, V21, overrides=stored.params["overrides"])
        assert stored.portfolio == alone.portfolio, row["parameters"]
        assert [r.summary for r in stored.results] == [
            r.summary for r in sorted(alone.results, key=lambda r: r.security)
        ]
        # A6-A11 per security, through the sweep's market, as when the cell runs alone.
        for mine, theirs in zip(stored.results, sorted(alone.results, key=lambda r: r.security),
                                strict=True):  # fmt: skip
            assert pd.Series(mine.analytics).equals(pd.Series(theirs.analytics)), mine.security
        # A compact cell stores its daily P&L once per date (run_daily), not per security.
        assert all(len(r.daily) == 0 for r in stored.results)
        daily = query(store, "SELECT * EXCLUDE (run_id) FROM run_daily WHERE run_id = "
                      f"'{row['run_id']}' ORDER BY date")  # fmt: skip
        daily["date"] = daily["date"].astype("datetime64[ns]")
        pd.testing.assert_frame_equal(daily, alone.daily, check_exact=True)
        assert row["total_pnl"] == alone.portfolio.total_pnl


def test_best_cells_keep_their_trades_and_rerun_gives_any_other(data, tmp_path, capsys):
    store = str(tmp_path / "s.duckdb")
    grid = {
        "refill_interval_sec": [5, 10, 20, 30, 45, 60, 90, 120, 180],
        "stop_loss_threshold_pct": [1, 3],
    }
    summary = sweep(data=str(data), strategies=[V21], grid=grid, store=store)  # auto: 18 > 16
    assert trades_for("auto", summary.cells) == "best"
    ranked = sorted(summary.table, key=lambda r: r["total_pnl"], reverse=True)
    best = {r["run_id"] for r in ranked[:3]}
    with_trades = set(query(store, "SELECT DISTINCT run_id FROM trades")["run_id"])
    assert with_trades == best == {r["run_id"] for r in summary.table if r["trades_stored"]}
    for run_id in best:
        alone = run_backtest(data, V21, overrides=overrides_of(store, run_id))
        expected = pd.concat([r.trades.assign(security=r.security) for r in alone.results])
        stored = read_trades(store, run_id)
        assert len(stored) == len(expected) == alone.trades

    worst = ranked[-1]["run_id"]
    assert main(["rerun", worst, "--store", store]) == 0
    assert f"stored run {worst} again" in capsys.readouterr().out
    assert len(read_trades(store, worst)) == read_run(store, worst).trades > 0


def test_a_killed_sweep_resumes_and_computes_only_the_missing_batches(data, tmp_path, monkeypatch):
    store = str(tmp_path / "s.duckdb")
    kwargs = dict(data=str(data), strategies=[V21], grid=GRID12, store=store, batch_cells=4,
                  trades="none")  # fmt: skip
    real = flows.sweep._store_batch
    stored_batches = []

    def dies_after_the_first_batch(state, cells, outcomes, replace):
        if stored_batches:
            raise KeyboardInterrupt("killed")  # as if the process died here
        stored_batches.append(len(cells))
        real(state, cells, outcomes, replace)

    monkeypatch.setattr(flows.sweep, "_store_batch", dies_after_the_first_batch)
    with pytest.raises(BaseException, match="killed"):
        sweep(**kwargs)
    assert query(store, "SELECT count(*) AS n FROM runs")["n"].item() == 4

    monkeypatch.setattr(flows.sweep, "_store_batch", real)
    again = sweep(**kwargs)
    assert (again.computed, again.reused) == (8, 4)
    assert {t["batch"] for t in again.tasks} == {"batch1of2", "batch2of2"}
    assert query(store, "SELECT count(*) AS n FROM runs")["n"].item() == 12


def test_batch_size_follows_the_grid_and_the_workers():
    assert auto_batch_cells(1000, 10, 2) == 250  # 4 batches x 10 securities = 40 tasks
    assert auto_batch_cells(40, 10, 2) == 40  # one batch: 10 tasks keep 2 workers busy
    assert auto_batch_cells(40, 1, 2) == 10  # one security: 4 tasks for 2 workers
    assert auto_batch_cells(1, 1, 8) == 1
