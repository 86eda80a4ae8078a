"""The Prefect server lost mid-run: the results are still stored, and `mmflow run` ends within
15 s of the loss instead of retrying for minutes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.results.store import query

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the Prefect server exited"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the Prefect server did not start")


def test_a_lost_server_mid_run_still_stores_and_ends_quickly(tmp_path, shared_data):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(api, server)
        store = tmp_path / "store.duckdb"
        run_env = {**env, "PREFECT_API_URL": api, "MMFLOW_TASK_RUNNER": "threads",
                   "MMFLOW_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
        command = [str(BIN / "mmflow"), "run", "--data", str(shared_data / "parquet"),
                   "--store", str(store)]  # fmt: skip
        run = subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
        output = []
        for line in run.stdout:  # the flow has started computing: lose the server now
            output.append(line)
            if "[1/10" in line:
                break
        os.killpg(server.pid, signal.SIGKILL)
        lost = time.monotonic()
        rest, _ = run.communicate(timeout=120)
        output.append(rest)
        ended = time.monotonic() - lost
        text = "".join(output)
        assert ended < 15, f"ended {ended:.0f} s after the server was lost\n{text[-3000:]}"
        assert run.returncode == 0, text[-3000:]
        assert "the results are stored" in text or "stored in" in text
        runs = query(store, "SELECT status, securities_ok FROM runs")
        assert runs.to_dict("records") == [{"status": "completed", "securities_ok": 10}]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
