"""The nightly deployment started from the Prefect UI in a real browser: `mmflow server` (a real
Prefect server on a free port, fresh database), `mmflow serve`, headless Chromium on the
deployment's page, Run > Quick run, and the run's results in the store.

Screenshots go to test-artifacts/: ui-deployment.png, ui-custom-run-form.png, ui-run-completed.png.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deployments.definitions import NIGHTLY
from engine.results.store import query

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # the venv's console scripts: mmflow
STRATEGY = "v2_price_follow_qty_cooldown"


# ---- processes ---------------------------------------------------------------------------------


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def background(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run `command` in its own process group; at exit SIGINT, then SIGTERM, then SIGKILL the
    whole group (the server's and serve's children too), whatever happened in between."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGINT (a Ctrl-C: serve pauses its deployments), then SIGTERM, then SIGKILL the process
    group, each given a while, until no process of the group is left."""
    for sig, seconds in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            process.poll()  # reap the leader
            try:
                os.killpg(process.pid, 0)  # anyone of the group left?
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url: str, path: str, body: dict | None = None):
    """GET (or POST `body` to) the Prefect API; the decoded JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until(what: str, check, timeout: float, processes: dict[str, tuple]) -> object:
    """Poll `check()` until it returns something truthy; fail early if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, (process, log) in processes.items():
            if process.poll() is not None:
                pytest.fail(
                    f"{name} exited with {process.returncode} while waiting for {what}:\n{_tail(log)}"
                )
        try:
            result = check()
        except (OSError, ValueError):
            result = None
        if result:
            return result
        time.sleep(1)
    logs = "\n".join(f"--- {name}\n{_tail(log)}" for name, (_, log) in processes.items())
    pytest.fail(f"no {what} after {timeout:.0f} s:\n{logs}")


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_data, chromium_path, playwright_api):
    """A fresh Prefect server (`mmflow server`) and `mmflow serve` of the deployments, running
    the nightly backtest on one small security into a temporary store; yields their details."""
    base = tmp_path_factory.mktemp("ui-trigger")
    data = base / "data"
    data.mkdir()
    shutil.copy(shared_data / "parquet" / "spinneys.parquet", data)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMFLOW_")}
    env.pop("PREFECT_API_URL", None)
    env["MMFLOW_CACHE_DIR"] = str(base / "cache")  # this server's record, not a running one's
    server_log, serve_log = base / "server.log", base / "serve.log"
    server_command = [
        str(BIN / "mmflow"),
        "server",
        "--port",
        str(port),
        "--home",
        str(base / "prefect-home"),
    ]
    with background(server_command, env, server_log) as server:
        processes = {"mmflow server": (server, server_log)}
        wait_until("healthy server", lambda: api(url, "/health") is True, 180, processes)
        serve_env = env | {
            "PREFECT_API_URL": url,
            "MMFLOW_TASK_RUNNER": "threads",  # the run takes seconds, not a Dask cluster start
            "MMFLOW_NIGHTLY_DATA": str(data),
            "MMFLOW_NIGHTLY_STRATEGIES": STRATEGY,
            "MMFLOW_STORE": str(base / "store.duckdb"),
        }
        with background([str(BIN / "mmflow"), "serve"], serve_env, serve_log) as serve:
            processes["mmflow serve"] = (serve, serve_log)
            deployment = wait_until(
                f"deployment {NIGHTLY}",
                lambda: api(url, f"/deployments/name/{NIGHTLY}"),
                90,
                processes,
            )
            yield {
                "url": url,
                "ui": url.removesuffix("/api"),
                "deployment": deployment,
                "data": data,
                "store": base / "store.duckdb",
                "processes": processes,
            }


# ---- the test ----------------------------------------------------------------------------------


def test_a_quick_run_from_the_ui_completes_and_its_results_reach_the_store(
    served, page, artifacts_dir
):
    url, ui, deployment = served["url"], served["ui"], served["deployment"]
    assert deployment["schedules"][0]["schedule"] == {
        "cron": "0 2 * * *",
        "timezone": "Asia/Dubai",
        "day_or": True,
    }

    # The deployment list, then the nightly deployment's page, as a person would click.
    page.goto(f"{ui}/v2/deployments")
    page.get_by_role("link", name="nightly-backtest").click()
    page.get_by_text("Concurrency Limit").wait_for()
    page.get_by_text("At 02:00 AM").wait_for()  # the schedule card
    page.wait_for_timeout(1000)  # let the next-run card and icons settle before the screenshot
    page.screenshot(path=artifacts_dir / "ui-deployment.png")
    assert page.url.startswith(f"{ui}/v2/deployments/deployment/{deployment['id']}")

    # Run > Custom run shows the parameter form built from the flow's typed parameters.
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Custom run").click()
    page.get_by_text("strategies (Optional)").wait_for()
    page.get_by_text("max_sheets (Optional)").wait_for()
    page.screenshot(path=artifacts_dir / "ui-custom-run-form.png", full_page=True)
    page.go_back()

    # Run > Quick run: a flow run with the deployment's defaults (the settings).
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Quick run").click()
    view_run = page.get_by_role("link", name="View run")
    href = view_run.get_attribute("href")
    assert href and href.startswith("/v2/runs/flow-run/"), href
    run_id = href.rsplit("/", 1)[-1]
    view_run.click()

    def finished():
        state = api(url, f"/flow_runs/{run_id}")["state"]
        return state if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    state = wait_until("finished flow run", finished, 120, served["processes"])
    logs = _tail(served["processes"]["mmflow serve"][1])
    assert state["type"] == "COMPLETED", f"{state['type']}: {state['message']}\n{logs}"
    run = api(url, f"/flow_runs/{run_id}")
    assert run["deployment_id"] == deployment["id"]
    assert run["parameters"]["strategies"] == [STRATEGY]

    # Logs reach the API a moment after the state (the runner ships them in batches): wait for
    # the last line before reloading, so the page shows it without polling.
    def final_log_stored():
        logs = api(url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
        return any("Finished in state" in entry["message"] for entry in logs) or None

    wait_until("the run's final log line", final_log_stored, 60, served["processes"])
    page.reload()
    page.get_by_text("Completed").first.wait_for()
    page.get_by_text("Finished in state Completed()").first.wait_for()  # the run's logs
    page.screenshot(path=artifacts_dir / "ui-run-completed.png")

    # The nightly run backtests each strategy as a subflow; each subflow's run is in the store.
    children = api(
        url, "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}}
    )
    assert len(children) == 1, children
    stored = query(served["store"], "SELECT strategy, status, data_source, flow_run_id FROM runs")
    assert stored.to_dict(orient="records") == [
        {
            "strategy": STRATEGY,
            "status": "completed",
            "data_source": str(served["data"]),
            "flow_run_id": children[0]["id"],
        }
    ]
