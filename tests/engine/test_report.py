"""A run's HTML report: rendered from the Run in memory (no store needed), equal to the report of
the same run read back from the store, offline, failures shown, every ratio with its basis, light
on big runs, figures as plotly.js specs (the sweep's report: test_report_sweep.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pytest
from report_pages import (
    COMMIT,
    DD_PCT,
    INDICATIVE,
    RUN_ID,
    STRATEGY,
    hand_result,
    kpi,
    new_run,
    plot_spec,
    values,
    visible,
)

from engine.results.report import (
    MAX_POINTS,
    decimate,
    default_report_path,
    headline,
    write_run_report,
)
from engine.results.report.frames import minute_series
from engine.results.store import read_run, write_run
from engine.run import Run
from engine.runner import run_backtest
from engine.types import Failure


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
