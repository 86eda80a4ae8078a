"""Warm runs: `mmflow server` records its Prefect API and Dask cluster in server.json, and every
mmflow process finds them there with no environment variables.

Unit level: a fake record pointing at this session's Prefect harness and at a real `dask
scheduler` + 1 `dask worker` started here with the command lines `mmflow server` uses (the worker
warmed by the `flows.runtime` preload). A stale record (dead processes, no answer, other code, other
API) is ignored, and so is every record under --no-server. A flow run through the recorded cluster
stores the in-process runner's trades. End to end: `mmflow server` starts, records itself, serves a
`mmflow run` and removes its record when stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from helpers import start_group

from engine.lineage import code_version
from engine.runner import run_backtest
from engine.sim import strategies
from engine.types import TRADE_COLUMNS
from flows import runtime
from flows.runtime import ServerRecord
from flows.warmup import FLOW_NAME as WARM_UP
from mmflow.cli import build_parser
from mmflow.commands import server

SECURITIES = ["SPINNEYS", "MODON"]  # two of the smallest of the ten
BIN = Path(sys.executable).parent  # the venv's console scripts: mmflow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _harness_url() -> str:
    import prefect.settings

    return prefect.settings.PREFECT_API_URL.value()


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test's own (server.json lives there); no runner settings."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MMFLOW_CACHE_DIR", str(folder))
    for name in ("MMFLOW_NO_SERVER", "MMFLOW_DASK_ADDRESS", "MMFLOW_TASK_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture(scope="module")
def cluster(prefect_harness, tmp_path_factory):
    """A scheduler and one single-threaded worker, started with `mmflow server`'s command lines
    and environment (workers report to the harness): (address, processes, client)."""
    from distributed import Client

    scratch = tmp_path_factory.mktemp("warm-dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**server.dask_env(_harness_url()), "DASK_TEMPORARY_DIRECTORY": str(scratch)}
    processes = []
    try:
        for i, command in enumerate(server.dask_commands(address, workers=1)):
            processes.append(start_group(command, env, scratch / f"dask-{i}.log"))
        client = Client(address, timeout=60)
        client.wait_for_workers(1, timeout=120)
        with client:
            yield address, processes, client
    finally:
        server._stop_groups(processes)


def record_of(cluster, **changes) -> ServerRecord:
    """A record of a live server: the harness API and the test's cluster."""
    address, processes, _ = cluster
    pids = {"mmflow": os.getpid(), "prefect": os.getpid(), "scheduler": processes[0].pid,
            "workers": processes[1].pid}  # fmt: skip
    values = dict(api_url=_harness_url(), dask_address=address, pids=pids, workers=1,
                  code_version=runtime.worker_code_version(), started_at="2026-01-05T10:00:00+00:00")  # fmt: skip
    return ServerRecord(**{**values, **changes})


# ---- the record --------------------------------------------------------------------------------


def test_the_record_is_written_read_and_removed_only_by_its_writer(cache_dir):
    record = ServerRecord(api_url="http://127.0.0.1:4200/api", dask_address="tcp://127.0.0.1:8786",
                          pids={"mmflow": os.getpid()}, workers=2, code_version="0+abc")  # fmt: skip
    path = runtime.write_server_record(record)
    assert path == cache_dir / "server.json"
    assert json.loads(path.read_text())["dask_address"] == "tcp://127.0.0.1:8786"
    assert runtime.read_server_record() == record
    runtime.remove_server_record(os.getpid() + 1)  # another server's stop leaves it alone
    assert path.exists()
    runtime.remove_server_record(os.getpid())
    assert not path.exists() and runtime.read_server_record() is None


def test_a_stale_or_broken_record_is_ignored(cache_dir):
    dead = ServerRecord(api_url="http://127.0.0.1:1/api", dask_address=None,
                        pids={"mmflow": _dead_pid()})  # fmt: skip
    runtime.write_server_record(dead)
    assert runtime.read_server_record() is None  # its `mmflow server` is gone
    assert runtime.recorded_api() is None and runtime.recorded_dask_address(None) is None
    (cache_dir / "server.json").write_text("{not json")
    assert runtime.read_server_record() is None
    (cache_dir / "server.json").write_text(json.dumps({"api_url": "x", "unknown_key": 1}))
    assert runtime.read_server_record() is None


def test_prefect_api_uses_the_recorded_server_when_no_url_is_set(cluster):
    import prefect.settings

    url = _harness_url()
    runtime.write_server_record(record_of(cluster))
    with prefect.settings.temporary_settings(restore_defaults={prefect.settings.PREFECT_API_URL}):
        assert not prefect.settings.PREFECT_API_URL.value()
        with runtime.prefect_api() as used:
            assert used == url == prefect.settings.PREFECT_API_URL.value()


def test_serve_uses_the_recorded_server_when_no_url_is_set(cluster):
    import prefect.settings

    from mmflow.commands import serve

    url = _harness_url()
    runtime.write_server_record(record_of(cluster))
    with prefect.settings.temporary_settings(restore_defaults={prefect.settings.PREFECT_API_URL}):
        assert serve.api_url() == url.rstrip("/")


def test_a_recorded_server_that_does_not_answer_is_ignored(cluster, monkeypatch):
    runtime.write_server_record(record_of(cluster, api_url=f"http://127.0.0.1:{_free_port()}/api"))
    assert runtime.recorded_api() is None
    runtime.write_server_record(record_of(cluster, pids={"mmflow": os.getpid(), "prefect": 0}))
    assert runtime.recorded_api() is None  # its Prefect server process is gone
    runtime.write_server_record(record_of(cluster))
    assert runtime.recorded_api() == _harness_url()
    monkeypatch.setenv("MMFLOW_NO_SERVER", "1")
    assert runtime.recorded_api() is None


def test_draining_after_a_run_starts_no_log_worker(monkeypatch):
    """The last drain (mmflow/cli.py, after `prefect_api()`) sends what is queued; a new log
    worker there would start a temporary Prefect server that outlives the process."""
    from prefect.logging.handlers import APILogWorker

    runtime._drain_workers()  # no live worker left: asking for one would now create it
    created = []
    monkeypatch.setattr(
        APILogWorker, "_new_instance", classmethod(lambda cls, *a: created.append(a))
    )
    runtime._drain_workers()
    assert created == []


# ---- the task runner ---------------------------------------------------------------------------


def test_make_task_runner_picks_the_recorded_cluster(cluster, monkeypatch):
    address = cluster[0]
    runtime.write_server_record(record_of(cluster))
    assert runtime.make_task_runner().address == address
    assert runtime.make_task_runner(workers=1).address == address  # it sizes local clusters
    given = "tcp://10.0.0.5:8786"
    assert runtime.make_task_runner(dask_address=given).address == given
    monkeypatch.setenv("MMFLOW_DASK_ADDRESS", given)
    assert runtime.make_task_runner().address == given
    monkeypatch.delenv("MMFLOW_DASK_ADDRESS")
    monkeypatch.setenv("MMFLOW_NO_SERVER", "1")
    assert runtime.make_task_runner().address is None  # a local cluster of its own


@pytest.mark.parametrize(
    "change",
    [
        {"code_version": "0.0.0+other"},  # the workers loaded other code
        {"code_version": code_version()},  # the same engine, but other tasks or flows
        {"api_url": "http://127.0.0.1:1/api"},  # its workers report to another API
        {"dask_address": f"tcp://127.0.0.1:{_free_port()}"},  # no scheduler there
        {"dask_address": None},  # a server without a cluster
    ],
    ids=["other-code", "other-tasks", "other-api", "no-answer", "no-cluster"],
)
def test_a_recorded_cluster_that_does_not_fit_is_ignored(cluster, change):
    runtime.write_server_record(record_of(cluster, **change))
    assert runtime.make_task_runner().address is None


def test_a_recorded_cluster_whose_processes_are_gone_is_ignored(cluster):
    pids = {**record_of(cluster).pids, "workers": _dead_pid()}
    runtime.write_server_record(record_of(cluster, pids=pids))
    assert runtime.make_task_runner().address is None


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_no_server_sets_the_variable_the_runtime_reads(command, monkeypatch):
    monkeypatch.setenv("MMFLOW_NO_SERVER", "")  # restored after the test
    args = build_parser().parse_args([command, "--data", "x.xlsx"])
    assert args.no_server is False and not os.environ["MMFLOW_NO_SERVER"]
    args = build_parser().parse_args([command, "--data", "x.xlsx", "--no-server"])
    assert args.no_server is True and os.environ["MMFLOW_NO_SERVER"] == "1"


# ---- the warm cluster at work ------------------------------------------------------------------


def test_the_preload_warmed_the_worker_with_every_strategy(cluster):
    client = cluster[2]
    warmed = next(iter(client.run(lambda: dict(runtime.WARMED)).values()))
    assert sorted(warmed) == list(strategies.available())


def test_a_flow_on_the_recorded_cluster_stores_the_in_process_trades(
    cluster, shared_data, tmp_path
):
    from engine.results.store import read_trades
    from flows.backtest import backtest

    client = cluster[2]
    data = str(shared_data / "parquet")
    runtime.write_server_record(record_of(cluster))
    executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    state = backtest(data=data, securities=SECURITIES, store=str(tmp_path / "s.duckdb"),
                     return_state=True)  # fmt: skip
    assert state.is_completed(), state.message
    summary = state.result()
    after = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(after.values()) - sum(executed.values()) == len(SECURITIES)  # ran there
    expected = run_backtest(data, "v2_price_follow_qty_cooldown", securities=SECURITIES)
    trades = pd.concat([r.trades.assign(security=r.security) for r in expected.results])
    trades = trades[["security", *TRADE_COLUMNS]].sort_values(["security", "seq"])
    pd.testing.assert_frame_equal(
        read_trades(summary.store, summary.run_id), trades.reset_index(drop=True), check_exact=True
    )


# ---- `mmflow server` end to end ----------------------------------------------------------------


def test_mmflow_server_records_itself_serves_a_run_and_cleans_up(shared_data, tmp_path, cache_dir):
    """About 30-60 s on 2 cores: a fresh Prefect database, one warm worker, one `mmflow run`."""
    port = _free_port()
    env = {**os.environ, "MMFLOW_CACHE_DIR": str(cache_dir)}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "server.log"
    command = [BIN / "mmflow", "server", "--port", str(port), "--home", str(tmp_path / "home")]
    with open(log, "w") as out:
        process = subprocess.Popen([*command, "--workers", "1"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        record = None
        deadline = time.monotonic() + 180
        while record is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            record = runtime.read_server_record(cache_dir / "server.json")
        assert record is not None, log.read_text()[-3000:]
        assert record.api_url == f"http://127.0.0.1:{port}/api" and record.workers == 1
        assert record.pids["mmflow"] == process.pid and record.code_version
        assert runtime.answers_health(record.api_url)
        assert runtime.accepts_connections(record.dask_address)
        # Before it said ready, its warm-up flow ran through this server and cluster, and was
        # deleted with its run: nothing of it is left to see in the UI.
        assert "first-run warm-up done" in log.read_text(), log.read_text()[-3000:]
        named = {"flows": {"name": {"any_": [WARM_UP]}}}
        assert _api_post(record.api_url, "flows/filter", named) == []
        assert _api_post(record.api_url, "flow_runs/filter", named) == []
        tasks = {"task_runs": {"name": {"like_": "warm-up"}}}
        assert _api_post(record.api_url, "task_runs/filter", tasks) == []

        # A second server beside it is refused (one record per cache folder).
        second = subprocess.run([*command[:3], str(_free_port()), *command[4:]], env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert second.returncode == 2 and "already running" in second.stderr

        # `mmflow run` finds both with no variables: its flow run is on this server.
        done = subprocess.run(
            [BIN / "mmflow", "run", "--data", str(shared_data / "parquet"), "--securities",
             "SPINNEYS", "--store", str(tmp_path / "s.duckdb")],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        output = done.stdout + done.stderr
        assert f"View at http://127.0.0.1:{port}/" in output
        assert "temporary server" not in output  # not even to drain the last log lines
        # Its cluster too, unless mmflow's code changed since the server started (a working
        # tree being edited): then the run says so and starts a local cluster.
        assert f"existing Dask cluster at {record.dask_address}" in output or (
            "run other code" in output and "Restart `mmflow server`" in output
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not (cache_dir / "server.json").exists()
    assert not record.alive("prefect") and not record.alive("scheduler")
    assert not record.alive("workers"), log.read_text()[-2000:]


def _api_post(api_url: str, path: str, body: dict):
    """The JSON answer of POST <api_url>/<path>."""
    request = urllib.request.Request(f"{api_url}/{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"}, method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())
