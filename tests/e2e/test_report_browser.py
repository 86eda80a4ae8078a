"""The HTML reports render in headless Chromium: offline, no script errors, every figure drawn."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.results.report import write_run_report, write_sweep_report
from engine.results.store import RunRecord, write_run
from engine.runner import run_backtest
from engine.types import Failure

STRATEGIES = ("v1_baseline", "v2_price_follow_qty_cooldown")
START = dt.datetime(2026, 11, 28, 8, 15)


def record(run_id: str, strategy: str, data, **changes) -> RunRecord:
    fields = dict(
        run_id=run_id,
        kind="backtest",
        strategy=strategy,
        params={"config": None, "overrides": {}},
        config_hash="c0ffee",
        data_source=str(data.path),
        data_hash=data.content_hash,
        code_version="0.1.0+e2e",
        started_at=START,
        finished_at=START + dt.timedelta(seconds=12),
        status="completed",
    )
    return RunRecord(**{**fields, **changes})


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_data):
    """A partial run (SPINNEYS, MODON and one failed security) and a 2 × 2 sweep on the same data."""
    path = tmp_path_factory.mktemp("e2e-report") / "results.duckdb"
    run = run_backtest(shared_data / "parquet", STRATEGIES[1], securities=["SPINNEYS", "MODON"])
    failure = Failure("EXAMPLE", "InputError", "file example.parquet: no usable rows (0 read)")
    write_run(
        path,
        record("20261128T081500-3f9a2c", STRATEGIES[1], run.source, status="partial"),
        run.results,
        [failure],
        run.portfolio,
    )
    for strategy in STRATEGIES:
        for size in (25_000, 50_000):
            overrides = {"quote_size": size}
            cell = run_backtest(run.source, strategy, overrides=overrides)
            write_run(
                path,
                record(
                    f"cell-{strategy}-{size}",
                    strategy,
                    cell.source,
                    kind="sweep",
                    sweep_id="sweep-e2e",
                    params={"config": None, "overrides": overrides},
                ),
                cell.results,
                cell.failures,
                cell.portfolio,
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


def test_run_report_renders_every_figure_without_errors(browser, store, artifacts_dir):
    report = write_run_report(store, "20261128T081500-3f9a2c")
    screenshot = artifacts_dir / "report-run.png"
    errors, remote, figures, svgs = render(browser, report, screenshot)
    assert errors == []
    assert remote == []
    assert figures == 3  # the portfolio and one per security
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
