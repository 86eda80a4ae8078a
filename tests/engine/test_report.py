"""HTML reports: rendered from the Run in memory (no store needed), equal to the report of the same
run read back from the store, offline, failures shown, every ratio with its basis, sweeps from the
store, light on big runs."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import subprocess
import sys
import time

import duckdb
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
from engine.results.report.frames import minute_series
from engine.results.store import StoreError, query, read_run, write_run
from engine.run import Run
from engine.runner import run_backtest
from engine.types import SUMMARY_FIELDS, TRADE_COLUMNS, Failure, SecurityResult
from mmflow.cli import main

STRATEGY = "v2_price_follow_qty_cooldown"
RUN_ID = "20261128T081500-3f9a2c"
START = dt.datetime(2026, 11, 28, 8, 15, tzinfo=dt.UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DD_PCT = "max drawdown as % of the running peak of realized P&amp;L, SPEC §5.3"
INDICATIVE = "fewer than 20 days: indicative only"


def new_run(run_id: str, results=(), failures=(), strategy: str = STRATEGY, **changes) -> Run:
    """A finished Run with plausible lineage, built in memory."""
    fields = dict(
        run_id=run_id,
        kind="backtest",
        strategy=strategy,
        params={"config": None, "overrides": {}},
        config_hash="c0ffee",
        data_source="/data/parquet",
        data_hash="d00d" * 16,
        started_at=START,
        finished_at=START + dt.timedelta(seconds=42),
        code_version="0.1.0+abc123",
        git_commit=COMMIT,
        git_dirty=True,
        results=list(results),
        failures=list(failures),
    )
    return Run(**{**fields, **changes})


def hand_result(security: str, strategy: str, pnls, start="2026-01-05 10:00", step_s=90, **summary):
    """A SecurityResult from per-fill realized P&L: alternating buy/sell of 100, summary from
    metrics (`summary` overrides figures, e.g. an unrealized P&L)."""
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
    figures = {name: None for name, _ in SUMMARY_FIELDS}
    total = math.fsum(realized)
    figures.update(
        security=security,
        strategy=strategy,
        trades=n,
        volume=100 * n,
        final_position=int(trades["position"].iloc[-1]),
        realized_pnl=total,
        unrealized_pnl=0.0,
        total_pnl=total,
    )
    stats = metrics.fill_stats(np.asarray(realized, dtype=float))
    daily = metrics.daily_pnl(trades)
    figures.update(metrics.trade_metrics(stats, daily, trades["pnl"].to_numpy()))
    figures.update(summary)
    return SecurityResult(security, strategy, {"quote_size": 100}, trades, daily, figures, stats)


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


def kpi(page: str, label: str) -> str:
    """The text of a KPI card's value (tags removed)."""
    match = re.search(
        rf'<div class="label">{re.escape(label)}</div><div class="value[^"]*">(.*?)</div>', page
    )
    assert match, f"no KPI card {label!r}"
    return re.sub(r"<[^>]+>", "", match.group(1))


def visible(page: str) -> str:
    """The page's text as a reader sees it (tags, scripts and attributes removed)."""
    return re.sub(r"<[^>]+>", "", re.sub(r"<script>.*?</script>", "", page, flags=re.S))


@pytest.fixture(scope="module")
def small_run(shared_data) -> Run:
    """SPINNEYS + MODON backtested from the shared Parquet data: a finished Run in memory."""
    run = run_backtest(shared_data / "parquet", STRATEGY, securities=["SPINNEYS", "MODON"])
    return run.with_lineage(run_id=RUN_ID, git_commit=COMMIT, git_dirty=True)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, small_run):
    """The small run, stored."""
    store = tmp_path_factory.mktemp("report") / "results.duckdb"
    write_run(store, small_run)
    return store


def test_run_report_shows_the_runs_figures_and_lineage(small_run, tmp_path):
    path = write_run_report(small_run, tmp_path / "run.html")
    assert path == tmp_path / "run.html"
    page = path.read_text()
    run = small_run
    for text in (RUN_ID, STRATEGY, run.data_hash, run.code_version, f"{run.trades:,}"):
        assert text in page
    assert f"<dt>Git commit</dt><dd><code>{COMMIT} (dirty)</code></dd>" in page
    for r in run.results:
        row = r.summary
        assert f">{row['realized_pnl']:,.2f}</td>" in page, r.security
        assert f">{row['trades']:,}</td>" in page, r.security
        assert f"<a href='#sec-{r.security}'>{r.security}</a>" in page
        figure = plot_spec(page, f"sec-{r.security}")
        assert [t["type"] for t in figure["data"]] == ["scatter", "scatter", "bar", "scatter"]
        pnl, position, daily, drawdown = (values(t) for t in figure["data"])
        assert pnl[-1] == pytest.approx(row["realized_pnl"])  # the curve ends at the table's total
        assert position[-1] == row["final_position"]
        assert daily.sum() == pytest.approx(row["realized_pnl"])
        assert drawdown.min() == pytest.approx(row["max_drawdown"])  # the deepest point is kept
    portfolio = plot_spec(page, "portfolio")
    assert len(values(portfolio["data"][0])) == run.portfolio.days  # one point per combined date


def test_kpis_show_realized_and_total_pnl_with_one_meaning_each(tmp_path):
    open_position = hand_result("AAA", STRATEGY, [0.0, 5.0, 0.0], unrealized_pnl=12.5)
    open_position.summary["total_pnl"] = 5.0 + 12.5
    flat = hand_result("BBB", STRATEGY, [0.0, -2.0, 0.0, 4.0])
    run = new_run("r-pnl", [open_position, flat])
    page = write_run_report(run, tmp_path / "pnl.html").read_text()
    assert kpi(page, "Realized P&amp;L") == f"{7.0:,.2f}" == f"{run.portfolio.realized_pnl:,.2f}"
    assert kpi(page, "Total P&amp;L") == f"{19.5:,.2f}" == f"{run.portfolio.total_pnl:,.2f}"
    header = re.search(r"<thead>(.*?)</thead>", page.split("Summary by security")[1]).group(1)
    for label in ("Realized P&amp;L", "Unrealized P&amp;L", "Total P&amp;L"):
        assert f">{label}</th>" in header
    total_row = re.search(r"<tr class='total'>(.*?)</tr>", page).group(1)
    assert ">7.00</td>" in total_row and ">12.50</td>" in total_row and ">19.50</td>" in total_row
    assert "Total P&amp;L 17.50" in page  # AAA's note beside its figures
    assert "total P&amp;L" not in page  # one spelling, one meaning


def test_every_sharpe_and_drawdown_states_its_basis_with_a_caveat_for_few_days(tmp_path):
    few = new_run("r-few", [hand_result("AAA", STRATEGY, [0.0, 3.0, 0.0, -1.0], step_s=86_400)])
    page = write_run_report(few, tmp_path / "few.html").read_text()
    text = visible(page)
    assert few.portfolio.days == 4
    assert "daily, over 4 days; fewer than 20 days: indicative only" in text  # KPI cards
    assert plot_note(page, "sec-AAA") == f"daily, over 4 days; {INDICATIVE}"  # its 4 daily rows
    assert text.count(visible(DD_PCT)) == 1  # drawdown % explained once
    assert "indicative" in re.search(r"<tr class='total'>(.*?)</tr>", page).group(1)
    many = new_run("r-many", [hand_result("BBB", STRATEGY, np.ones(25), step_s=86_400)])
    text = visible(write_run_report(many, tmp_path / "many.html").read_text())
    assert "daily, over 25 days" in text
    assert "indicative" not in text
    for line in (headline(few, None), headline(many, None)):
        assert "Sharpe and max drawdown: daily, over" in line
    assert INDICATIVE in headline(few, None) and INDICATIVE not in headline(many, None)


def plot_note(page: str, div_id: str) -> str:
    """The basis in a figure's heading note, e.g. 'daily, over 4 days; fewer than ...'."""
    section = re.search(rf'id="{div_id}"><h2>.*?<span class="h-note">(.*?)</span></h2>', page)
    return re.search(r"Sharpe [-\d.,]+ \((.*?)\) ·", visible(section.group(1))).group(1)


def test_run_report_is_offline(small_run, tmp_path):
    page = write_run_report(small_run, tmp_path / "run.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*href=[\"']https?:", page)
    assert page.count("* plotly.js v") == 1  # embedded exactly once


def test_report_from_memory_equals_the_report_of_the_stored_run(small_run, small_store, tmp_path):
    back = read_run(small_store, RUN_ID)
    fresh = write_run_report(small_run, tmp_path / "fresh.html").read_text()
    stored = write_run_report(back, tmp_path / "stored.html").read_text()
    footer = re.compile(r"<footer>.*?</footer>")
    assert footer.sub("", fresh) == footer.sub("", stored)  # byte for byte but the generation time
    assert plot_spec(fresh, "sec-MODON") == plot_spec(stored, "sec-MODON")
    assert headline(small_run, None) == headline(back, None)


def test_report_and_headline_need_no_store(tmp_path, monkeypatch):
    def no_store(*args, **kwargs):
        raise AssertionError("the run's report must not open a store")

    monkeypatch.setattr(duckdb, "connect", no_store)
    run = new_run("r-memory", [hand_result("AAA", STRATEGY, [0.0, 5.0, 0.0, -2.0])])
    path = write_run_report(run, tmp_path / "memory.html")
    text = headline(run, path)
    assert text.startswith(f"### Run `r-memory` · {STRATEGY} · completed")
    assert f"| {3.0:,.2f} | {3.0:,.2f} |" in text  # realized, total
    assert f"Report: `{path}`" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.html"]  # no store was created


def test_minute_series_equals_the_sql_over_the_trades():
    trades = pd.DataFrame(
        {
            "seq": np.arange(7),
            "timestamp": pd.to_datetime(
                [
                    "2026-01-05 10:00:05",
                    "2026-01-05 10:00:50",  # same minute: the last fill's P&L and position
                    "2026-01-05 10:02:00",
                    "2026-01-05 10:02:30",
                    "2026-01-05 10:01:59",  # steps back: still the 10:01 minute
                    "2026-01-06 09:30:00",
                    "2026-01-06 09:30:10",
                ]
            ).astype("datetime64[ns]"),
            "position": [100, 0, 100, 200, 100, 0, 100],
            "pnl": [0.0, 5.0, 5.0, 2.0, 7.0, 1.0, 3.0],
        }
    )
    got = minute_series(trades)
    con = duckdb.connect()
    con.register("t", trades)
    expected = con.sql(
        """SELECT date_trunc('minute', "timestamp") AS minute, arg_max(pnl, seq) AS pnl,
                  arg_max(position, seq) AS position, min(drawdown) AS drawdown
           FROM (SELECT *, pnl - max(pnl) OVER (ORDER BY seq) AS drawdown FROM t)
           GROUP BY ALL ORDER BY minute"""
    ).df()
    assert got["minute"].astype("datetime64[ns]").tolist() == expected["minute"].tolist()
    assert got["pnl"].tolist() == [5.0, 7.0, 2.0, 3.0]
    assert got["position"].tolist() == [0, 100, 200, 100]
    assert got["drawdown"].tolist() == [0.0, 0.0, -3.0, -6.0]
    for column in ("pnl", "position", "drawdown"):
        assert got[column].tolist() == expected[column].tolist(), column
    assert minute_series(trades.iloc[0:0]).empty


def test_a_failed_security_is_shown_with_its_error(tmp_path):
    results = [hand_result("AAA", STRATEGY, [0.0, 5.0, 0.0, -2.0])]
    failures = [Failure("BBB", "InputError", "sheet 'BBB' has no Dates column; fix the sheet")]
    run = new_run("r-partial", results, failures)
    assert run.status == "partial"
    page = write_run_report(run, tmp_path / "partial.html").read_text()
    assert "1 failed security" in page
    assert "sheet &#x27;BBB&#x27; has no Dates column; fix the sheet" in page
    assert "InputError" in page
    assert '<span class="badge partial">partial</span>' in page
    assert plot_spec(page, "sec-AAA")["data"]


def test_a_run_whose_securities_all_failed_still_renders(tmp_path):
    run = new_run("r-failed", [], [Failure("A", "InputError", "empty")])
    page = write_run_report(run, tmp_path / "failed.html").read_text()
    assert "failed" in page and "empty" in page
    assert 'draw("plot-' not in page
    assert "### Run `r-failed`" in headline(run, None) and "0 ok, 1 failed" in headline(run, None)


def test_long_runs_are_downsampled(tmp_path):
    rng = np.random.default_rng(7)
    pnls = np.where(np.arange(60_000) % 2 == 1, rng.normal(0.5, 10, 60_000), 0.0)
    run = new_run("r-big", [hand_result("BIG", STRATEGY, pnls, step_s=20)])  # ~20,000 minutes
    page = write_run_report(run, tmp_path / "big.html").read_text()
    figure = plot_spec(page, "sec-BIG")
    for trace in figure["data"]:
        assert len(values(trace)) <= MAX_POINTS
    drawdown = figure["data"][3]
    assert drawdown["name"] == "drawdown"
    assert values(drawdown).min() == pytest.approx(run.results[0].summary["max_drawdown"])
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
    flat = np.zeros(3_000)
    flat[[7, 8]], flat[100] = 1.0, np.nan  # first of 9 buckets: indices 0-333
    assert list(decimate(flat, 30)[:3]) == [0, 7, 333]  # first of equal maxima, NaN skipped


def test_figures_are_plotly_js_specs_laid_out_as_make_subplots(small_run, tmp_path):
    page = write_run_report(small_run, tmp_path / "run.html").read_text()
    figure = plot_spec(page, "sec-MODON")
    layout = figure["layout"]
    assert [(t["xaxis"], t["yaxis"]) for t in figure["data"]] == [
        ("x", "y"), ("x2", "y2"), ("x3", "y3"), ("x4", "y4")
    ]  # fmt: skip
    left, right = [0.0, 0.46499999999999997], [0.5349999999999999, 0.9999999999999999]
    for n, x, y in ((1, left, [0.58, 1.0]), (2, right, [0.58, 1.0]), (4, right, [0.0, 0.42])):
        axis, other = layout[f"xaxis{n if n > 1 else ''}"], layout[f"yaxis{n if n > 1 else ''}"]
        assert (axis["domain"], other["domain"]) == (x, y)
        assert axis["type"] == "date" and axis["rangebreaks"][0]["pattern"] == "hour"
        assert axis.get("matches") == (None if n == 1 else "x")
    assert layout["xaxis3"]["type"] == "date" and "rangebreaks" not in layout["xaxis3"]
    titles = [(a["text"], a["x"], a["y"], a["xanchor"]) for a in layout["annotations"]]
    assert titles[1] == ("Position (last per minute)", right[0], 1.0, "left")
    assert layout["template"]["layout"]["colorway"][0] == "#4e79a7"
    portfolio = plot_spec(page, "portfolio")["layout"]
    assert [portfolio[f"xaxis{n}"]["matches"] for n in ("", 2, 4)] == ["x3"] * 3
    assert [portfolio[f"xaxis{n}"].get("showticklabels") for n in ("", 2, 3, 4)] == [
        False, False, None, None
    ]  # fmt: skip


def test_figure_json_is_strict_and_safe_inside_a_script():
    from engine.results.report.plotspec import to_json

    figure = {
        "data": [{"type": "bar", "x": ["a</script><!--b", "c"], "y": [np.float64("nan"), 2.0]}],
        "layout": {"height": np.int64(300), "z": np.array([[1.0, np.inf], [3.0, 4.0]])},
    }
    figure["layout"]["n"] = np.array([1, 70_000], dtype="int64")
    text = to_json(figure)
    assert "</" not in text and "<!--" not in text
    spec = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert spec["data"][0]["x"][0] == "a</script><!--b" and spec["data"][0]["y"] == [None, 2.0]
    assert spec["layout"]["height"] == 300
    z = spec["layout"]["z"]
    assert (z["dtype"], z["shape"]) == ("f8", "2, 2") and values(spec["layout"], "z")[1] == np.inf
    assert spec["layout"]["n"]["dtype"] == "i4" and list(values(spec["layout"], "n")) == [1, 70_000]


def test_the_report_package_needs_no_plotly_graph_objects():
    code = "import sys, engine.results.report; print('plotly.graph_objs' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"  # fmt: skip


def test_headline_is_markdown_with_the_report_path(small_run, small_store):
    report = default_report_path(small_store, f"run-{RUN_ID}")
    text = headline(small_run, report)
    p = small_run.portfolio
    assert text.startswith(f"### Run `{RUN_ID}` · {STRATEGY} · completed")
    assert f"| {p.realized_pnl:,.2f} | {p.total_pnl:,.2f} | {p.sharpe_ratio:,.2f} |" in text
    assert f"daily, over {p.days} days" in text
    assert str(report) in text and str(report).startswith(str(small_store.parent / "reports"))
    best = max(small_run.results, key=lambda r: r.summary["total_pnl"])
    assert f"Best: **{best.security}** {best.summary['total_pnl']:,.2f}" in text


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
