"""HTML reports: figures checked against the store, offline, failures shown, sweeps, light on big runs."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from engine.results import metrics
from engine.results.report import (
    MAX_POINTS,
    decimate,
    default_report_path,
    headline,
    write_run_report,
    write_sweep_report,
)
from engine.results.store import RunRecord, StoreError, query, read_run, write_run
from engine.runner import run_backtest
from engine.types import SUMMARY_FIELDS, TRADE_COLUMNS, Failure, SecurityResult
from mmflow.cli import main

STRATEGY = "v2_price_follow_qty_cooldown"
START = dt.datetime(2026, 11, 28, 8, 15)


def record(run_id: str, strategy: str = STRATEGY, **changes) -> RunRecord:
    """A RunRecord with plausible lineage."""
    fields = dict(
        run_id=run_id,
        kind="backtest",
        strategy=strategy,
        params={"config": None, "overrides": {}},
        config_hash="c0ffee",
        data_source="/data/parquet",
        data_hash="d00d" * 16,
        code_version="0.1.0+abc123",
        started_at=START,
        finished_at=START + dt.timedelta(seconds=42),
        status="completed",
    )
    return RunRecord(**{**fields, **changes})


def hand_result(security: str, strategy: str, pnls, start="2026-01-05 10:00", step_s=90):
    """A SecurityResult from per-fill realized P&L: alternating buy/sell of 100, summary from metrics."""
    n = len(pnls)
    seq = np.arange(n, dtype="int64")
    realized = np.asarray(pnls, dtype="float64")
    trades = pd.DataFrame(
        {
            "seq": seq,
            "timestamp": (pd.Timestamp(start) + pd.to_timedelta(seq * step_s, unit="s")).astype(
                "datetime64[ns]"
            ),
            "side": np.where(seq % 2 == 0, "buy", "sell"),
            "fill_price": 10.0 + (seq % 7) / 100,
            "fill_qty": np.full(n, 100, dtype="int64"),
            "realized_pnl": realized,
            "position": np.where(seq % 2 == 0, 100, 0).astype("int64"),
            "pnl": np.cumsum(realized),
        }
    )[list(TRADE_COLUMNS)]
    summary = {name: None for name, _ in SUMMARY_FIELDS}
    total = math.fsum(realized)
    summary.update(
        security=security,
        strategy=strategy,
        trades=n,
        volume=100 * n,
        final_position=int(trades["position"].iloc[-1]),
        realized_pnl=total,
        unrealized_pnl=0.0,
        total_pnl=total,
        **metrics.trade_metrics(trades),
    )
    return SecurityResult(
        security, strategy, {"quote_size": 100}, trades, metrics.daily_pnl(trades), summary
    )


def plot_spec(page: str, div_id: str) -> dict:
    """The plotly figure JSON drawn into `plot-<div_id>`."""
    match = re.search(rf'draw\("plot-{re.escape(div_id)}", (\{{.*?\}})\);</script>', page)
    assert match, f"no figure plot-{div_id} in the report"
    return json.loads(match.group(1))


def values(trace: dict, axis: str = "y") -> np.ndarray:
    """A trace's values, from a plain list or plotly's typed-array spec (dtype + base64 bdata)."""
    data = trace[axis]
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), data["dtype"])
    return np.asarray(data)


def points(trace: dict, axis: str = "y") -> int:
    return len(values(trace, axis))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, shared_data):
    """SPINNEYS + MODON backtested from the shared Parquet data, stored as one run."""
    store = tmp_path_factory.mktemp("report") / "results.duckdb"
    run = run_backtest(shared_data / "parquet", STRATEGY, securities=["SPINNEYS", "MODON"])
    write_run(
        store,
        record("20261128T081500-3f9a2c", data_hash=run.source.content_hash),
        run.results,
        run.failures,
        run.portfolio,
    )
    return store


def test_run_report_shows_the_stored_figures_and_lineage(small_store):
    run_id = "20261128T081500-3f9a2c"
    path = write_run_report(small_store, run_id)
    assert path == small_store.parent / "reports" / f"run-{run_id}.html"
    page = path.read_text()
    run = read_run(small_store, run_id)
    for text in (run_id, STRATEGY, run["data_hash"], run["code_version"], f"{run['trades']:,}"):
        assert text in page
    summary = query(small_store, f"SELECT * FROM security_results WHERE run_id = '{run_id}'")
    for row in summary.itertuples():
        assert f">{row.realized_pnl:,.2f}</td>" in page, row.security
        assert f">{row.trades:,}</td>" in page, row.security
        assert f"<a href='#sec-{row.security}'>{row.security}</a>" in page
        figure = plot_spec(page, f"sec-{row.security}")
        assert [t["type"] for t in figure["data"]] == ["scatter", "scatter", "bar", "scatter"]
        pnl, position, daily, drawdown = (values(t) for t in figure["data"])
        assert pnl[-1] == pytest.approx(row.realized_pnl)  # the curve ends at the table's total
        assert position[-1] == row.final_position
        assert daily.sum() == pytest.approx(row.realized_pnl)
        assert drawdown.min() == pytest.approx(row.max_drawdown)  # the deepest point is kept
    daily_days = query(small_store, "SELECT count(DISTINCT date) AS n FROM daily_pnl")["n"][0]
    portfolio = plot_spec(page, "portfolio")
    assert points(portfolio["data"][0]) == daily_days  # one point per date of the combined curve


def test_run_report_is_offline(small_store):
    page = write_run_report(small_store, "20261128T081500-3f9a2c").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']https?:", page)
    assert page.count("* plotly.js v") == 1  # embedded exactly once


def test_a_failed_security_is_shown_with_its_error(tmp_path):
    store = tmp_path / "results.duckdb"
    results = [hand_result("AAA", STRATEGY, [0.0, 5.0, 0.0, -2.0])]
    failures = [Failure("BBB", "InputError", "sheet 'BBB' has no Dates column; fix the sheet")]
    write_run(
        store,
        record("r-partial", status="partial"),
        results,
        failures,
        metrics.portfolio_metrics(results),
    )
    page = write_run_report(store, "r-partial", out=tmp_path / "partial.html").read_text()
    assert "1 failed security" in page
    assert "sheet &#x27;BBB&#x27; has no Dates column; fix the sheet" in page
    assert "InputError" in page
    assert plot_spec(page, "sec-AAA")["data"]


def test_a_run_whose_securities_all_failed_still_renders(tmp_path):
    store = tmp_path / "results.duckdb"
    write_run(
        store, record("r-failed", status="failed"), [], [Failure("A", "InputError", "empty")], {}
    )
    page = write_run_report(store, "r-failed").read_text()
    assert "failed" in page and "empty" in page
    assert 'draw("plot-' not in page


def test_long_runs_are_downsampled(tmp_path):
    store = tmp_path / "results.duckdb"
    rng = np.random.default_rng(7)
    pnls = np.where(np.arange(60_000) % 2 == 1, rng.normal(0.5, 10, 60_000), 0.0)
    results = [hand_result("BIG", STRATEGY, pnls, step_s=20)]  # ~20,000 minutes over 60 days
    write_run(store, record("r-big"), results, [], metrics.portfolio_metrics(results))
    page = write_run_report(store, "r-big").read_text()
    figure = plot_spec(page, "sec-BIG")
    for trace in figure["data"]:
        assert points(trace) <= MAX_POINTS
    drawdown = figure["data"][3]
    assert drawdown["name"] == "drawdown"
    assert len(page) < 5_000_000 + 1_000_000  # plotly.js (~4.8 MB) plus well under 1 MB of data


def test_decimate_keeps_the_ends_and_the_extremes():
    y = np.sin(np.linspace(0, 20, 50_000))
    y[12_345] = 7.0
    y[23_456] = -7.0
    keep = decimate(y, 300)
    assert len(keep) <= 300
    assert keep[0] == 0 and keep[-1] == len(y) - 1
    assert {12_345, 23_456} <= set(keep)
    assert np.all(np.diff(keep) > 0)
    assert list(decimate(np.arange(5.0), 300)) == [0, 1, 2, 3, 4]


def test_headline_is_markdown_with_the_report_path(small_store):
    run_id = "20261128T081500-3f9a2c"
    run = read_run(small_store, run_id)
    text = headline(small_store, run_id)
    assert text.startswith(f"### Run `{run_id}` · {STRATEGY} · completed")
    assert f"| {run['total_pnl']:,.2f} |" in text
    assert str(default_report_path(small_store, f"run-{run_id}")) in text


def sweep_store(tmp_path):
    """Two strategies × two quote sizes, each cell a run with sweep_id 'sw-1'."""
    store = tmp_path / "results.duckdb"
    for s, strategy in enumerate(("v1_baseline", STRATEGY)):
        for size in (25_000, 50_000):
            scale = size / 25_000 * (s + 1)
            results = [
                hand_result("AAA", strategy, [0.0, 3.0 * scale, 0.0, -1.0]),
                hand_result(
                    "BBB", strategy, [0.0, -2.0 * scale, 0.0, 4.0], start="2026-01-06 10:00"
                ),
            ]
            run = record(
                f"cell-{strategy}-{size}",
                strategy,
                kind="sweep",
                sweep_id="sw-1",
                params={"config": None, "overrides": {"quote_size": size}},
            )
            write_run(store, run, results, [], metrics.portfolio_metrics(results))
    return store


def test_sweep_report_has_one_line_per_strategy_and_a_heatmap(tmp_path):
    store = sweep_store(tmp_path)
    path = write_sweep_report(store, "sw-1")
    assert path == tmp_path / "reports" / "sweep-sw-1.html"
    page = path.read_text()
    lines = plot_spec(page, "sweep-metrics")["data"]
    assert {t["name"] for t in lines} == {"v1_baseline", STRATEGY}
    assert len(lines) == 2 * 3  # per strategy: P&L, Sharpe, drawdown against quote_size
    assert sorted(t["name"] for t in lines if t.get("showlegend")) == sorted(
        ["v1_baseline", STRATEGY]
    )
    assert all(t["x"] == [25_000, 50_000] for t in lines)
    heatmap = plot_spec(page, "sweep-heatmap")["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["x"] == ["AAA", "BBB"]
    assert heatmap["y"][0] == "v1_baseline · quote_size=25000" and len(heatmap["y"]) == 4
    cells = query(store, "SELECT total_pnl FROM runs")
    assert f"{cells['total_pnl'].max():,.2f}" in page
    assert "quote_size=25000" in page


def test_unknown_run_and_sweep_say_how_to_list_them(tmp_path):
    store = sweep_store(tmp_path)
    with pytest.raises(StoreError, match="v_run_summary"):
        write_run_report(store, "nope")
    with pytest.raises(StoreError, match="DISTINCT sweep_id"):
        write_sweep_report(store, "nope")


def test_cli_writes_run_latest_and_sweep_reports(tmp_path, capsys):
    store = sweep_store(tmp_path)
    out = tmp_path / "one.html"
    assert main(["report", "cell-v1_baseline-25000", "--store", str(store), "--out", str(out)]) == 0
    assert out.exists() and "one.html" in capsys.readouterr().out
    assert main(["report", "--latest", "--store", str(store)]) == 0
    assert len(list((tmp_path / "reports").glob("run-*.html"))) == 1
    assert main(["report", "--sweep", "sw-1", "--store", str(store)]) == 0
    assert (tmp_path / "reports" / "sweep-sw-1.html").exists()
    assert main(["report", "nope", "--store", str(store)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
