"""The analytics in the store (migration m006_analytics): a run's fill quality is written and read
back unchanged, compact results keep their figures without fills, an older store upgrades with
fees 0, and the views answer from what was stored."""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest
from helpers import bare_run

from engine.data.source import open_data
from engine.params import load_config
from engine.results.store import connect, migrate, query, read_run, write_run
from engine.results.summary import summarise
from engine.runner import run_backtest
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import ANALYTICS_FIELDS

V21 = "v2_1_stop_loss"


@pytest.fixture(scope="module")
def run(shared_data):
    config = load_config(shared_data / "configs" / f"{V21}_config.json")
    return run_backtest(
        shared_data / "parquet",
        V21,
        config=config,
        overrides={"maker_fee_bps": 0.5},
        securities=["SPINNEYS", "MODON"],
    )


def same_figures(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
        for k in a
    )


def test_a_stored_run_reads_back_with_its_analytics(run, tmp_path):
    store = tmp_path / "s.duckdb"
    write_run(store, run)
    back = read_run(store, run.run_id)
    for mine, theirs in zip(
        sorted(run.results, key=lambda r: r.security), back.results, strict=True
    ):
        assert same_figures(mine.analytics, theirs.analytics)
        pd.testing.assert_frame_equal(mine.markouts, theirs.markouts)
        pd.testing.assert_frame_equal(mine.fill_analytics, theirs.fill_analytics)
        pd.testing.assert_frame_equal(mine.daily.reset_index(drop=True), theirs.daily)
    assert back.portfolio == run.portfolio
    stored = query(store, "SELECT fees, net_pnl, edge_bps, uptime_two_sided FROM runs").iloc[0]
    p = run.portfolio
    assert (stored["fees"], stored["net_pnl"]) == (p.fees, p.net_pnl)
    assert (stored["edge_bps"], stored["uptime_two_sided"]) == (p.edge_bps, p.uptime_two_sided)
    columns = query(store, "SELECT * FROM security_analytics LIMIT 0").columns.tolist()
    assert columns == ["run_id", *(name for name, _ in ANALYTICS_FIELDS)]


def test_the_views_pool_securities_exactly(run, tmp_path):
    store = tmp_path / "s.duckdb"
    write_run(store, run)
    curve = query(store, "SELECT * FROM v_markout_curve WHERE kind = 'all' ORDER BY horizon_sec")
    assert curve["horizon_sec"].tolist() == [0, 1, 5, 30, 60, 300]
    assert curve["fills"].tolist() == [run.trades] * 6
    assert curve["markout_bps"].iloc[0] == pytest.approx(run.portfolio.edge_bps, rel=1e-12)
    assert curve["markout_bps"].iloc[4] == pytest.approx(run.portfolio.markout_bps_60, rel=1e-12)
    kinds = query(store, "SELECT DISTINCT kind FROM v_markout_curve ORDER BY kind")["kind"]
    assert kinds.tolist() == ["all", "eod_flatten", "quote", "stop_loss"]
    edge = query(store, "SELECT * FROM v_edge_vs_adverse_selection ORDER BY security")
    assert edge["security"].tolist() == ["MODON", "SPINNEYS"]
    modon = next(r for r in run.results if r.security == "MODON").analytics
    row = edge.iloc[0]
    assert row["adverse_selection_bps_60"] == modon["edge_bps"] - modon["markout_bps_60"]
    assert row["net_pnl"] == modon["net_pnl"]


def test_compact_results_store_their_figures_but_no_fills(shared_data, tmp_path):
    source_run = bare_run("compact", V21, kind="sweep")
    events, counts = open_data(shared_data / "parquet", securities=["SPINNEYS"]).load("SPINNEYS")
    params = strategies.get(V21).Params()
    sim = simulate(V21, events, params)
    result = summarise("SPINNEYS", V21, events, params, sim, counts, keep_trades=False)
    assert result.fill_analytics is None and result.analytics["fills"] == len(sim.fills)
    store = tmp_path / "s.duckdb"
    write_run(store, source_run.finish([result], []))
    assert query(store, "SELECT count(*) AS n FROM fill_analytics")["n"].item() == 0
    back = read_run(store, "compact").results[0]
    assert same_figures(back.analytics, result.analytics) and back.fill_analytics is None


def test_a_store_from_before_analytics_upgrades_with_no_fees(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con, upto="m005_input_rule_counts")
        con.execute(
            "INSERT INTO runs (run_id, kind, status, realized_pnl, total_pnl) "
            "VALUES ('old', 'backtest', 'completed', 12.5, 12.5)"
        )
        con.execute("INSERT INTO daily_pnl VALUES ('old', 'AAA', DATE '2026-01-05', 12.5, 12.5, 3)")
    with connect(path) as con:  # a read-write open migrates
        assert con.execute("SELECT fees, net_pnl, edge_bps FROM runs").fetchall() == [
            (0.0, 12.5, None)
        ]
        assert con.execute("SELECT mtm_pnl, fees FROM daily_pnl").fetchall() == [(None, 0.0)]
