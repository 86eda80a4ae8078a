"""Flow runs whose process died do not stay RUNNING: the next mmflow command marks them Crashed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import liveness

BIN = Path(sys.executable).parent


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache dir of the test's own for the flow-run records; compiled kernels stay where
    they are (a subprocess would otherwise compile them again)."""
    from engine.lineage import code_version
    from engine.settings import cache_dir

    kernels = os.environ.get("NUMBA_CACHE_DIR") or str(cache_dir() / "numba" / code_version())
    monkeypatch.setenv("NUMBA_CACHE_DIR", kernels)
    monkeypatch.setenv("MMFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def state_of(flow_run_id):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


def test_a_killed_mmflow_run_is_marked_crashed_by_the_next_command(cache, shared_data, tmp_path):
    import prefect.settings

    env = {
        **os.environ,
        "PREFECT_API_URL": prefect.settings.PREFECT_API_URL.value(),
        "MMFLOW_TASK_RUNNER": "threads",
    }
    command = [BIN / "mmflow", "run", "--data", str(shared_data / "parquet")]
    command += ["--store", str(tmp_path / "store.duckdb")]
    process = subprocess.Popen(
        [str(c) for c in command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not list(liveness.registry().glob("*.json")) and time.monotonic() < deadline:
        assert process.poll() is None, "mmflow run ended before it could be killed"
        time.sleep(0.1)
    [record] = liveness.registry().glob("*.json")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    flow_run_id = record.stem
    assert state_of(flow_run_id).is_running()

    assert liveness.reconcile() == [flow_run_id]
    state = state_of(flow_run_id)
    assert state.is_crashed() and f"PID {process.pid}" in state.message
    assert not record.exists()
    assert liveness.reconcile() == []  # done once


def test_records_of_live_processes_and_finished_runs_are_left_or_dropped(cache):
    liveness.record("not-a-flow-run")  # this process: alive, left alone
    assert liveness.reconcile() == []
    assert (liveness.registry() / "not-a-flow-run.json").exists()


def test_a_finished_flow_leaves_no_record(cache, tmp_path, monkeypatch, shared_data):
    from flows.backtest import backtest

    monkeypatch.setenv("MMFLOW_TASK_RUNNER", "threads")
    backtest(
        data=str(shared_data / "parquet"),
        securities=["SPINNEYS"],
        store=str(tmp_path / "store.duckdb"),
    )
    assert list(liveness.registry().glob("*.json")) == []
