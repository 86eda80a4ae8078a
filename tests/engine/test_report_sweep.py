"""The sweep's HTML report: one line per strategy against each swept parameter and a heatmap,
read from the store (waiting for a writer that holds it); `mmflow report` for runs and sweeps."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from report_pages import STRATEGY, hand_result, new_run, plot_spec, visible

from engine.results.report import write_sweep_report
from engine.results.store import StoreError, query, read_run, write_run
from mmflow.cli import main


def sweep_store(tmp_path):
    """Two strategies × two quote sizes, each cell a run with sweep_id 'sw-1'."""
    store = tmp_path / "results.duckdb"
    for s, strategy in enumerate(("v1_baseline", STRATEGY)):
        for size in (25_000, 50_000):
            scale = size / 25_000 * (s + 1)
            results = [
                hand_result("AAA", strategy, [0.0, 3.0 * scale, 0.0, -1.0], unrealized_pnl=1.5),
                hand_result(
                    "BBB", strategy, [0.0, -2.0 * scale, 0.0, 4.0], start="2026-01-06 10:00"
                ),
            ]
            results[0].summary["total_pnl"] += 1.5
            run = new_run(
                f"cell-{strategy}-{size}",
                results,
                strategy=strategy,
                kind="sweep",
                sweep_id="sw-1",
                params={"config": None, "overrides": {"quote_size": size}},
            )
            write_run(store, run)
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
    cells = query(store, "SELECT realized_pnl, total_pnl FROM runs")
    assert (cells["total_pnl"] - cells["realized_pnl"]).round(9).eq(1.5).all()
    assert f"{cells['total_pnl'].max():,.2f}" in page
    assert f"{cells['realized_pnl'].max():,.2f}" in page
    assert "quote_size=25000" in page
    assert "daily, over 2 days; fewer than 20 days: indicative only" in visible(page)


def test_sweep_report_waits_for_a_store_held_by_a_writer(tmp_path):
    store = sweep_store(tmp_path)
    hold = (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({str(store)!r})\n"
        "print('locked', flush=True)\n"
        "time.sleep(1.5)\n"
        "con.close()\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        path = write_sweep_report(store, "sw-1", out=tmp_path / "sweep.html")
        assert time.perf_counter() - started >= 0.5  # it waited for the writer, then read
        assert plot_spec(path.read_text(), "sweep-heatmap")["data"]
    finally:
        writer.wait(timeout=30)


def test_unknown_run_and_sweep_say_how_to_list_them(tmp_path):
    store = sweep_store(tmp_path)
    with pytest.raises(StoreError, match="v_run_summary"):
        read_run(store, "nope")
    with pytest.raises(StoreError, match="DISTINCT sweep_id"):
        write_sweep_report(store, "nope")


def test_cli_writes_run_latest_and_sweep_reports(tmp_path, capsys):
    store = sweep_store(tmp_path)
    out = tmp_path / "one.html"
    assert main(["report", "cell-v1_baseline-25000", "--store", str(store), "--out", str(out)]) == 0
    assert out.exists() and "one.html" in capsys.readouterr().out
    assert "cell-v1_baseline-25000" in out.read_text()
    assert main(["report", "--latest", "--store", str(store)]) == 0
    assert len(list((tmp_path / "reports").glob("run-*.html"))) == 1
    assert main(["report", "--sweep", "sw-1", "--store", str(store)]) == 0
    assert (tmp_path / "reports" / "sweep-sw-1.html").exists()
    assert main(["report", "nope", "--store", str(store)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
