"""The compare flow: its result, CSV files, and the table and Markdown artifacts it publishes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from helpers import make_result

from engine.results.store import write_run
from engine.run import Run
from engine.types import SecurityResult
from flows.compare import compare

V2 = "v2_price_follow_qty_cooldown"


def result(security: str, realized: list[float]) -> SecurityResult:
    """One fill per realized P&L value, one per day from 2026-01-05."""
    days = pd.date_range("2026-01-05 10:00", periods=len(realized), freq="D")
    return make_result(security, V2, list(zip(days, realized, strict=True)))


def write(path, run_id: str, refill: float, results: list[SecurityResult]) -> None:
    start = dt.datetime(2026, 11, 28, 9)
    run = Run(
        run_id=run_id,
        kind="sweep",
        strategy=V2,
        params={"config": None, "overrides": {"refill_interval_sec": refill}},
        config_hash=f"h{refill}",
        data_source="hand",
        data_hash="d",
        code_version="c",
        started_at=start,
        sweep_id="sweep-flowtest",
    ).finish(results, [])
    write_run(path, run)


def read_artifact(key: str):
    """The newest artifact with `key` (from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return max(found, key=lambda a: a.created)


def test_compare_flow_returns_tables_writes_csv_and_publishes_artifacts(tmp_path):
    store = tmp_path / "results.duckdb"
    write(store, "run-30", 30.0, [result("AAA", [3.0, -1.0]), result("BBB", [2.5])])
    write(store, "run-5", 5.0, [result("AAA", [1.0]), result("BBB", [0.5, 0.25])])

    out = compare(sweep_id="sweep-flowtest", store=str(store), csv=str(tmp_path / "cmp.csv"))

    assert out["title"] == "sweep sweep-flowtest"
    assert [r["run_id"] for r in out["summary"]] == ["run-5", "run-30"]
    assert [(r["trades"], r["total_pnl"]) for r in out["summary"]] == [(3, 1.75), (3, 4.5)]
    assert out["by_security"] == [
        {
            "security": "AAA",
            f"{V2} refill_interval_sec=5": 1.0,
            f"{V2} refill_interval_sec=30": 2.0,
        },
        {
            "security": "BBB",
            f"{V2} refill_interval_sec=5": 0.75,
            f"{V2} refill_interval_sec=30": 2.5,
        },
    ]
    assert [p.rsplit("/", 1)[1] for p in out["csv"]] == ["cmp.csv", "cmp_by_security.csv"]
    assert pd.read_csv(out["csv"][0])["run_id"].tolist() == ["run-5", "run-30"]

    table = read_artifact("compare-summary")
    assert table.type == "table"
    assert "run-30" in str(table.data) and "4.5" in str(table.data)
    report = read_artifact("compare-report")
    assert report.type == "markdown"
    assert report.data.startswith("# Comparison: sweep sweep-flowtest")
    assert "| AAA | 1.00 | 2.00 |" in report.data
