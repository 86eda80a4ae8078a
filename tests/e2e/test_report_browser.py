"""The HTML reports render in headless Chromium: offline, no script errors, every figure drawn."""

from __future__ import annotations

import pytest

from engine.data.source import open_data
from engine.results.report import default_report_path, write_run_report, write_sweep_report
from engine.results.store import write_run
from engine.runner import run_backtest
from engine.types import Failure

STRATEGIES = ("v1_baseline", "v2_price_follow_qty_cooldown")
RUN_ID = "20261128T081500-3f9a2c"


@pytest.fixture(scope="module")
def data(shared_data):
    """SPINNEYS and MODON from the shared Parquet data."""
    return open_data(shared_data / "parquet", securities=["SPINNEYS", "MODON"])


@pytest.fixture(scope="module")
def partial_run(data):
    """A partial run in memory: SPINNEYS, MODON and one failed security."""
    run = run_backtest(data, STRATEGIES[1]).with_lineage(run_id=RUN_ID)
    failure = Failure("EXAMPLE", "InputError", "file example.parquet: no usable rows (0 read)")
    return run.finish(run.results, [failure])


@pytest.fixture(scope="module")
def store(tmp_path_factory, data, partial_run):
    """The partial run and a 2 × 2 sweep on the same data, stored."""
    path = tmp_path_factory.mktemp("e2e-report") / "results.duckdb"
    write_run(path, partial_run)
    for strategy in STRATEGIES:
        for size in (25_000, 50_000):
            cell = run_backtest(data, strategy, overrides={"quote_size": size})
            write_run(
                path,
                cell.with_lineage(
                    run_id=f"cell-{strategy}-{size}", kind="sweep", sweep_id="sweep-e2e"
                ),
            )
    return path


@pytest.fixture(scope="module")
def browser(chromium_launch):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**chromium_launch)
        yield chromium
        chromium.close()


def render(browser, report, screenshot, count=".js-plotly-plot .main-svg"):
    """Open the report with the network cut off and screenshot it once every figure is drawn;
    return (errors, requests off disk, figures, elements matching `count`)."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors, remote = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file:")
            else (remote.append(route.request.url), route.abort())
        ),
    )
    page.goto(report.as_uri(), wait_until="load")
    figures = page.locator("div.plot").count()
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
        arg=figures,
        timeout=30_000,
    )
    counted = page.locator(count).count()
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return errors, remote, figures, counted


def test_run_report_renders_every_figure_without_errors(browser, partial_run, store, artifacts_dir):
    report = write_run_report(partial_run, default_report_path(store, f"run-{RUN_ID}"))
    assert partial_run.status == "partial"
    screenshot = artifacts_dir / "report-run.png"
    errors, remote, figures, svgs = render(browser, report, screenshot)
    assert errors == []
    assert remote == []
    assert figures == 4  # the portfolio, its fill quality panel and one per security
    assert svgs >= figures
    assert screenshot.stat().st_size > 50_000


def test_sweep_report_renders_the_lines_and_the_heatmap(browser, store, artifacts_dir):
    report = write_sweep_report(store, "sweep-e2e")
    screenshot = artifacts_dir / "report-sweep.png"
    errors, remote, figures, heatmaps = render(browser, report, screenshot, count=".hm image")
    assert errors == [] and remote == []
    assert figures == 2
    assert heatmaps == 1  # plotly draws a heatmap as one image in its .hm layer
    lines = render(browser, report, screenshot, count=".scatterlayer .trace")[3]
    assert lines == 2 * 3  # one line per strategy in each of P&L, Sharpe and drawdown
