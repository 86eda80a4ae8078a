"""Comparisons over a store built by hand from SecurityResults whose figures are worked out below."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from helpers import make_result

from engine.results.compare import (
    compare_runs,
    markdown,
    markdown_table,
    parameters_label,
    records,
    select_runs,
    write_csv,
)
from engine.results.store import StoreError, write_run
from engine.run import Run
from engine.types import Failure

V2 = "v2_price_follow_qty_cooldown"
START = dt.datetime(2026, 11, 28, 8, 0)
DAY1, DAY2 = "2026-01-05 10:00", "2026-01-06 10:00"


def store_run(
    path,
    run_id,
    *,
    results,
    failures=(),
    sweep="sweep-hand",
    overrides=None,
    kind="sweep",
    finished=0,
):
    """write_run of a Run with these results (portfolio figures as the flows compute them)."""
    run = Run(
        run_id=run_id,
        kind=kind,
        strategy=results[0].strategy if results else V2,
        params={"config": None, "overrides": overrides or {}},
        config_hash="h",
        data_source="hand",
        data_hash="d",
        code_version="c",
        started_at=START,
        sweep_id=sweep if kind == "sweep" else None,
    ).finish(results, list(failures))
    run.finished_at = START + dt.timedelta(minutes=finished)
    write_run(path, run)


@pytest.fixture
def store(tmp_path):
    """Run A (refill 10): AAA +0 +10 | -8, BBB +0 | +5.  Run B (refill 5): AAA +0 +4 | +2, BBB bad."""
    path = tmp_path / "results.duckdb"
    run_a = [
        make_result("AAA", V2, [(DAY1, 0.0), (DAY1, 10.0), (DAY2, -8.0)]),
        make_result("BBB", V2, [(DAY1, 0.0), (DAY2, 5.0)]),
    ]
    run_b = [make_result("AAA", V2, [(DAY1, 0.0), (DAY1, 4.0), (DAY2, 2.0)])]
    bad = [Failure("BBB", "InputError", "file BBB.parquet could not be read")]
    store_run(path, "run-a", results=run_a, overrides={"refill_interval_sec": 10.0}, finished=1)
    store_run(path, "run-b", results=run_b, failures=bad, overrides={"refill_interval_sec": 5.0})
    return path


def test_a_sweep_is_compared_with_hand_computed_portfolio_figures(store):
    comparison = compare_runs(store, sweep_id="sweep-hand")
    assert comparison.title == "sweep sweep-hand"
    summary = comparison.summary.set_index("run_id")
    assert summary.index.tolist() == ["run-b", "run-a"]  # refill 5 before 10, numerically
    a, b = summary.loc["run-a"], summary.loc["run-b"]
    assert (a["parameters"], a["label"]) == (
        "refill_interval_sec=10",
        f"{V2} refill_interval_sec=10",
    )

    # Run A: 5 fills, 2 wins (10, 5), 1 loss (-8); daily combined P&L 10 then -3.
    assert (a["trades"], a["total_pnl"], a["win_rate"]) == (5, 7.0, 40.0)
    assert a["profit_factor"] == 15.0 / 8.0
    daily = [10.0, -3.0]
    std = math.sqrt(sum((x - 3.5) ** 2 for x in daily) / 1)
    assert a["sharpe_ratio"] == pytest.approx(3.5 / std * math.sqrt(252), rel=1e-12)
    assert (a["max_drawdown"], a["max_drawdown_pct"]) == (-3.0, -30.0)  # 10 -> 7: -3 of 10
    assert (a["status"], a["securities_ok"], a["securities_failed"]) == ("completed", 2, 0)

    # Run B: 3 fills, 2 wins, no loss (profit factor = gross wins); daily 4 then 2; BBB failed.
    assert (b["trades"], b["total_pnl"], b["profit_factor"]) == (3, 6.0, 6.0)
    assert b["win_rate"] == pytest.approx(200 / 3, rel=1e-12)
    assert b["sharpe_ratio"] == pytest.approx(3.0 / math.sqrt(2) * math.sqrt(252), rel=1e-12)
    assert (b["max_drawdown"], b["max_drawdown_pct"]) == (0.0, 0.0)
    assert (b["status"], b["securities_ok"], b["securities_failed"]) == ("partial", 1, 1)


def test_the_per_security_pivot_sums_to_each_runs_total(store):
    comparison = compare_runs(store, sweep_id="sweep-hand")
    pivot = comparison.by_security
    a, b = f"{V2} refill_interval_sec=10", f"{V2} refill_interval_sec=5"
    assert pivot.columns.tolist() == [b, a]
    assert pivot.index.tolist() == ["AAA", "BBB"]
    assert pivot.loc["AAA"].tolist() == [6.0, 2.0]
    assert math.isnan(pivot.loc["BBB", b]) and pivot.loc["BBB", a] == 5.0  # failed: blank
    totals = comparison.summary.set_index("label")["total_pnl"]
    assert pivot.sum().to_dict() == totals.to_dict()


def test_run_ids_keep_their_order_and_duplicate_labels_get_the_run_id(store):
    store_run(
        store,
        "run-c",
        results=[make_result("AAA", V2, [(DAY1, 1.0)])],
        kind="backtest",
        overrides={"refill_interval_sec": 5.0},
    )
    comparison = compare_runs(store, run_ids=["run-c", "run-a", "run-b"])
    assert comparison.summary["run_id"].tolist() == ["run-c", "run-a", "run-b"]
    assert comparison.summary["label"].tolist() == [
        f"{V2} refill_interval_sec=5 (run-c)",
        f"{V2} refill_interval_sec=10",
        f"{V2} refill_interval_sec=5 (run-b)",
    ]
    assert comparison.by_security.loc["AAA"].tolist() == [1.0, 2.0, 6.0]


def test_latest_is_the_newest_sweep_else_the_newest_run_per_parameter_set(store, tmp_path):
    store_run(
        store,
        "run-z",
        results=[make_result("AAA", V2, [(DAY1, 1.0)])],
        sweep="sweep-new",
        finished=5,
    )
    assert select_runs(store) == ("sweep sweep-new", ["run-z"])
    assert select_runs(store, latest=True) == ("sweep sweep-new", ["run-z"])

    plain = tmp_path / "backtests.duckdb"
    for run_id, refill, minute in [("old5", 5.0, 0), ("new5", 5.0, 3), ("only10", 10.0, 1)]:
        store_run(
            plain,
            run_id,
            results=[make_result("AAA", V2, [(DAY1, 1.0)])],
            kind="backtest",
            overrides={"refill_interval_sec": refill},
            finished=minute,
        )
    title, ids = select_runs(plain)
    assert (title, ids) == ("latest run of each strategy and parameter set", ["new5", "only10"])


def test_selection_errors_say_what_to_do(store, tmp_path):
    with pytest.raises(StoreError, match="no run nope in .*v_run_summary"):
        compare_runs(store, run_ids=["run-a", "nope"])
    with pytest.raises(StoreError, match="no sweep 'sweep-x'.*DISTINCT sweep_id"):
        compare_runs(store, sweep_id="sweep-x")
    with pytest.raises(StoreError, match="not several"):
        compare_runs(store, run_ids=["run-a"], sweep_id="sweep-hand")
    with pytest.raises(StoreError, match="no store at"):
        compare_runs(tmp_path / "missing.duckdb")


def test_markdown_csv_and_records(store, tmp_path):
    comparison = compare_runs(store, sweep_id="sweep-hand")
    text = markdown(comparison)
    assert text.startswith("# Comparison: sweep sweep-hand")
    assert f"Best total P&L: **{V2} refill_interval_sec=10** (7.00, run `run-a`)" in text
    assert "| security | " in text and "| BBB |  | 5.00 |" in text
    assert (
        "| run-b | v2_price_follow_qty_cooldown | refill_interval_sec=5 | partial | 1 | 1 | 3 | 6.00 |"
        in text
    )

    paths = write_csv(comparison, tmp_path / "out" / "cmp.csv")
    assert [p.name for p in paths] == ["cmp.csv", "cmp_by_security.csv"]
    summary = pd.read_csv(paths[0])
    assert summary["total_pnl"].tolist() == [6.0, 7.0] and "label" not in summary
    pivot = pd.read_csv(paths[1], index_col="security")
    pd.testing.assert_frame_equal(pivot, comparison.by_security, check_names=False)

    rows = records(comparison.by_security, index="security")
    assert rows[1] == {
        "security": "BBB",
        f"{V2} refill_interval_sec=5": None,
        f"{V2} refill_interval_sec=10": 5.0,
    }


def test_markdown_table_and_labels_by_hand():
    frame = pd.DataFrame({"name": ["a|b", None], "n": [1234, 5], "x": [0.5, float("nan")]})
    assert markdown_table(frame) == (
        "| name | n | x |\n|---|---:|---:|\n| a\\|b | 1,234 | 0.50 |\n|  | 5 |  |"
    )
    assert parameters_label(None) == "defaults"
    assert parameters_label('{"config": "/x/cfg.json", "overrides": {"a": 5.0, "b": 2.5}}') == (
        "config=cfg.json a=5 b=2.5"
    )


def test_mmflow_compare_prints_both_tables_and_writes_csv(store, tmp_path, capsys):
    from mmflow.cli import main

    out_csv = tmp_path / "cmp.csv"
    assert (
        main(["compare", "--sweep", "sweep-hand", "--store", str(store), "--csv", str(out_csv)])
        == 0
    )
    out = capsys.readouterr().out
    assert "sweep sweep-hand" in out and "total P&L per security" in out
    assert f"[1] {V2} refill_interval_sec=5" in out and f"[2] {V2} refill_interval_sec=10" in out
    assert out_csv.exists() and (tmp_path / "cmp_by_security.csv").exists()
    assert main(["compare", "run-a", "--latest", "--store", str(store)]) == 2
    assert "not several" in capsys.readouterr().err
