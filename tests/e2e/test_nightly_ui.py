"""The nightly loop started from the Prefect UI in a real browser: `mmflow server` (fresh database,
free port), `mmflow serve` with a drop folder of two daily exports prepared here, headless
Chromium on the nightly deployment, Run > Quick run, and the `nightly-diff` artifact on the flow
run's page: listed under Artifacts, opened, rendered.

Screenshots go to test-artifacts/: ui-nightly-artifacts.png (the flow run's Artifacts tab),
ui-nightly-diff.png (the rendered diff).
"""

from __future__ import annotations

import os
import shutil

import pytest
from test_ui_trigger import BIN, _free_port, api, background, wait_until

from deployments.definitions import NIGHTLY
from engine.data.export import split_workbook_by_day
from engine.data.sample import write_sample_workbook
from engine.results.store import query

pytestmark = pytest.mark.slow

STRATEGY = "v2_price_follow_qty_cooldown"


def drop_folder(base):
    """`base/drop` holding two daily exports (2025-04-14, -15) of a 2-sheet sample."""
    sample = write_sample_workbook(base / "ticks.xlsx", sheets=2, days=2, rows_per_sheet=800)
    (base / "drop").mkdir()
    for day in split_workbook_by_day(sample, base / "daily"):
        shutil.copy(day, base / "drop")
    return base / "drop"


@pytest.fixture(scope="module")
def served(tmp_path_factory, chromium_path, playwright_api):
    """A fresh `mmflow server` and `mmflow serve` whose nightly deployment ingests a drop folder
    holding the first two days of a small sample into a new tick history."""
    base = tmp_path_factory.mktemp("ui-nightly")
    drop = drop_folder(base)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMFLOW_")}
    env.pop("PREFECT_API_URL", None)
    env["MMFLOW_CACHE_DIR"] = str(base / "cache")  # this server's record, no one else's
    logs = {"mmflow server": base / "server.log", "mmflow serve": base / "serve.log"}
    home = str(base / "prefect-home")
    server_command = [str(BIN / "mmflow"), "server", "--port", str(port), "--home", home]
    server_command += ["--workers", "1"]
    with background(server_command, env, logs["mmflow server"]) as server:
        processes = {"mmflow server": (server, logs["mmflow server"])}
        wait_until("healthy server", lambda: api(url, "/health") is True, 180, processes)
        serve_env = env | {
            "PREFECT_API_URL": url,
            "MMFLOW_TASK_RUNNER": "threads",
            "MMFLOW_NIGHTLY_DROP": str(drop),
            "MMFLOW_NIGHTLY_HISTORY": str(base / "history"),
            "MMFLOW_NIGHTLY_STRATEGIES": STRATEGY,
            "MMFLOW_STORE": str(base / "store.duckdb"),
        }
        command = [str(BIN / "mmflow"), "serve"]
        with background(command, serve_env, logs["mmflow serve"]) as serve:
            processes["mmflow serve"] = (serve, logs["mmflow serve"])
            deployment = wait_until(
                NIGHTLY, lambda: api(url, f"/deployments/name/{NIGHTLY}"), 90, processes
            )
            served = dict(url=url, ui=url.removesuffix("/api"), deployment=deployment)
            yield served | dict(drop=drop, store=base / "store.duckdb", processes=processes)


@pytest.fixture(scope="module")
def viewport() -> dict:
    """A taller tab than the default: the rendered diff is long."""
    return {"width": 1400, "height": 1100}


def quick_run(page, deployments: str) -> str:
    """Deployments > nightly-backtest > Run > Quick run, as a person clicks; the flow run's id."""
    page.goto(deployments)
    page.get_by_role("link", name="nightly-backtest").click()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Quick run").click()
    return page.get_by_role("link", name="View run").get_attribute("href").rsplit("/", 1)[-1]


def test_a_nightly_quick_run_from_the_ui_shows_the_diff_artifact(served, page, artifacts_dir):
    url, ui, deployment = served["url"], served["ui"], served["deployment"]
    assert deployment["parameters"]["drop"] == str(served["drop"])

    run_id = quick_run(page, f"{ui}/v2/deployments")

    def finished():
        state = api(url, f"/flow_runs/{run_id}")["state"]
        return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    state = wait_until("finished nightly run", finished, 180, served["processes"])
    assert state["type"] == "COMPLETED", state["message"]

    # The flow run's page, Artifacts tab: the diff is listed there ...
    page.goto(f"{ui}/v2/runs/flow-run/{run_id}")
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("nightly-diff").wait_for()
    page.get_by_text("nightly-summary").wait_for()
    page.screenshot(path=artifacts_dir / "ui-nightly-artifacts.png")

    # ... and opens rendered: the night, the ingest, the counts and the latest day's P&L.
    page.get_by_text("nightly-diff").click()
    page.get_by_role("heading", name="Nightly run").wait_for()
    page.get_by_text("2 file(s) ingested").first.wait_for()
    page.get_by_role("heading", name=f"{STRATEGY}: run").wait_for()
    page.get_by_role("heading", name="P&L of the latest day, 2025-04-15, per security").wait_for()
    page.get_by_role("columnheader", name="data_revised").wait_for()  # the counts table
    page.screenshot(path=artifacts_dir / "ui-nightly-diff.png", full_page=True)

    [artifact] = api(
        url,
        "/artifacts/filter",
        {"artifacts": {"key": {"any_": ["nightly-diff"]}, "flow_run_id": {"any_": [run_id]}}},
    )
    assert "| 4 | 0 | 0 | 0 | 0 | 0 | 0 |" in artifact["data"]  # 2 securities x 2 days: new
    stored = query(served["store"], "SELECT status, count(*) AS n FROM nightly_diffs GROUP BY 1")
    assert stored.to_dict(orient="records") == [{"status": "new", "n": 4}]
