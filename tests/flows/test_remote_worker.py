"""A Dask worker that shares no folder layout with the flow: started by the test in another
working directory with another HOME, it runs a flow whose data is given as a file:// URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from engine.results.store import read_trades
from engine.runner import run_backtest
from flows.backtest import backtest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_worker_elsewhere_reads_file_url_data(tmp_path, shared_data):
    from distributed import Client

    data = tmp_path / "ticks"
    data.mkdir()
    (data / "spinneys.parquet").write_bytes(
        (shared_data / "parquet" / "spinneys.parquet").read_bytes()
    )
    elsewhere, home = tmp_path / "elsewhere", tmp_path / "home"
    elsewhere.mkdir()
    home.mkdir()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "HOME": str(home), "DASK_TEMPORARY_DIRECTORY": str(elsewhere)}
    env.pop("PYTHONPATH", None)
    commands = [
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", f"127.0.0.1:{free_port()}"],
        [BIN / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1"],
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            [str(c) for c in command],
            cwd=elsewhere,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for command in commands
    ]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            worker_cwd = client.run(os.getcwd)
        assert list(worker_cwd.values()) == [str(elsewhere)]
        summary = backtest(
            data=data.as_uri(), store=str(tmp_path / "s.duckdb"), dask_address=address
        )
        assert summary.status == "completed"
        local = run_backtest(data, "v2_price_follow_qty_cooldown")
        expected = local.results[0].trades.assign(security="SPINNEYS")
        stored = read_trades(summary.store, summary.run_id)
        pd.testing.assert_frame_equal(stored, expected[stored.columns], check_exact=True)
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
