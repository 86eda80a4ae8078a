"""The `backtest` flow end to end on real tick data: the same trades and figures as the
in-process sequential runner on Dask (the flow's own local cluster, an existing scheduler),
retries and failed securities, worker processes killed mid-run, a locked store, and the
`mmflow run` CLI.

Dask is started only where it is the point: one existing cluster (`dask scheduler` + 2
`dask worker` processes) is shared by the module's Dask tests, and one test lets the flow start
its own LocalCluster; retries and the store use the thread runner (MMFLOW_TASK_RUNNER=threads).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import faults
import numpy as np
import pandas as pd
import pytest
from helpers import start_group

import flows.backtest
from engine.params import load_config
from engine.results.store import query, read_run, read_trades
from engine.run import Run, RunFailed, outcome
from engine.runner import run_backtest
from engine.types import TRADE_COLUMNS
from flows.backtest import backtest
from mmflow.cli import main

SECURITIES = ["SPINNEYS", "MODON", "PARKIN"]  # the three smallest of the ten
BIN = Path(sys.executable).parent  # the venv's console scripts: dask, mmflow
HERE = Path(__file__).resolve().parent


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet(shared_data) -> Path:
    """The ten securities' real tick data."""
    return shared_data / "parquet"


@pytest.fixture(scope="module")
def config_of(shared_data):
    """Path of a strategy's shipped per-security config."""
    return lambda strategy: str(shared_data / "configs" / f"{strategy}_config.json")


@pytest.fixture(scope="module")
def sequential(parquet, config_of):
    """The in-process sequential run of a strategy over SECURITIES (computed once per strategy)."""
    runs: dict[str, Run] = {}

    def get(strategy: str) -> Run:
        if strategy not in runs:
            config = load_config(config_of(strategy))
            runs[strategy] = run_backtest(parquet, strategy, config=config, securities=SECURITIES)
            assert not runs[strategy].failures
        return runs[strategy]

    return get


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """An existing cluster, reused by this module's Dask tests: `dask scheduler` and two
    `dask worker` processes (address, client); stopped (TERM, then KILL) at the end.

    The scheduler allows one worker death per task (distributed.scheduler.allowed-failures=1,
    default 3) so a task that kills every worker fails after 2 deaths instead of 4. tests/flows
    is on PYTHONPATH because the scheduler and workers unpickle `faults.FaultySource`.
    """
    from distributed import Client

    scratch = tmp_path_factory.mktemp("dask")
    port, dashboard = _free_port(), _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DASK_TEMPORARY_DIRECTORY": str(scratch),
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    scheduler = [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    scheduler += ["--dashboard-address", f"127.0.0.1:{dashboard}"]
    worker = [BIN / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1"]
    worker += ["--host", "127.0.0.1"]
    processes, logs = [], []
    try:
        for i, command in enumerate([scheduler, worker, worker]):
            logs.append(scratch / f"dask-{i}.log")
            processes.append(start_group(command, env, logs[-1]))
        try:
            client = Client(address, timeout=60)
            client.wait_for_workers(2, timeout=60)
        except Exception as error:
            tails = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs)
            raise RuntimeError(f"the Dask cluster did not start: {error}\n{tails}") from error
        with client:
            yield address, client
    finally:
        _stop(processes)


def _stop(processes: list[subprocess.Popen], grace: float = 15.0) -> None:
    """SIGTERM each process group (workers first), wait up to `grace` s, then SIGKILL them."""
    for process in reversed(processes):
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:  # also any worker child left behind by its nanny
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def dask_address(dask_cluster, monkeypatch) -> str:
    """The existing cluster's address, once both workers are up (a test may have killed one)."""
    address, client = dask_cluster
    monkeypatch.delenv("MMFLOW_TASK_RUNNER", raising=False)
    client.wait_for_workers(2, timeout=120)
    return address


@pytest.fixture
def small_data(tmp_path, parquet) -> Path:
    """A folder with SPINNEYS, MODON and PARKIN (links to the real files) and a corrupt
    BROKEN.parquet, which fails with InputError (not retried)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for security in SECURITIES:
        (folder / f"{security.lower()}.parquet").symlink_to(parquet / f"{security.lower()}.parquet")
    (folder / "broken.parquet").write_bytes(b"PAR1 this is not a Parquet file")
    return folder


# ---- helpers -----------------------------------------------------------------------------------


def run_flow(**kwargs):
    """The flow's final state (never raises)."""
    return backtest(**kwargs, return_state=True)


def with_faults(monkeypatch, tmp_path, **kinds) -> Path:
    """Make the flow's data inject `kinds` of faults per security; the folder of their marks."""
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(flows.backtest, "prepare_data", faults.opening_with_faults(marks, **kinds))
    return marks


def run_shipped(strategy: str, parquet, config_of, tmp_path, **kwargs):
    """The flow over the real data with the strategy's shipped config; its final state."""
    kwargs.setdefault("securities", SECURITIES)
    return run_flow(data=str(parquet), strategy=strategy, config=config_of(strategy),
                    store=str(tmp_path / "store.duckdb"), **kwargs)  # fmt: skip


def _plain(value):
    """A comparable plain value: NaN and None as None, dates as date, numpy scalars unwrapped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).date()
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def expected_trades(run: Run, securities=None) -> pd.DataFrame:
    """The sequential run's trades in `read_trades` form (security + TRADE_COLUMNS, by seq)."""
    parts = [
        r.trades.assign(security=r.security)
        for r in run.results
        if securities is None or r.security in securities
    ]
    trades = pd.concat(parts, ignore_index=True)[["security", *TRADE_COLUMNS]]
    return trades.sort_values(["security", "seq"], ignore_index=True)


def stored_summaries(store: str, run_id: str) -> dict[str, dict]:
    """security_results rows of a run: security -> plain values (params decoded)."""
    frame = query(
        store, f"SELECT * EXCLUDE (run_id) FROM security_results WHERE run_id = '{run_id}'"
    )
    rows = {}
    for row in frame.to_dict("records"):
        plain = {k: _plain(v) for k, v in row.items()}
        plain["params"] = json.loads(plain["params"])
        rows[plain["security"]] = plain
    return rows


def assert_same_as_sequential(summary: dict, run: Run, securities=SECURITIES) -> None:
    """Every stored trade (all columns, exact) and every summary figure equal the sequential run's."""
    store, run_id = summary.store, summary.run_id
    pd.testing.assert_frame_equal(
        read_trades(store, run_id), expected_trades(run, securities), check_exact=True
    )
    stored = stored_summaries(store, run_id)
    assert sorted(stored) == sorted(securities)
    for r in run.results:
        if r.security in securities:
            expected = {k: _plain(v) for k, v in r.summary.items()}
            expected["params"] = json.loads(json.dumps(r.params, default=str))
            assert stored[r.security] == expected, r.security
    if list(securities) == [r.security for r in run.results]:
        assert summary.portfolio == run.portfolio


def failures_of(store: str, run_id: str) -> dict[str, dict]:
    """The failures rows of a run: security -> {attempts, error_type, message}."""
    frame = query(store, f"SELECT * EXCLUDE (run_id) FROM failures WHERE run_id = '{run_id}'")
    return {row.pop("security"): row for row in frame.to_dict("records")}


def report_artifact(flow_run_id, key: str = "backtest-report", field: str = "data") -> str:
    """The markdown (or another field) of one of the flow run's artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert len(artifacts) == 1
    return getattr(artifacts[0], field)


def run_counts(flow_run_id) -> dict[str, int]:
    """Task run name -> run_count (Prefect attempts) of a flow run, once the API has final states
    (they arrive as events, shortly after the flow run ends)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        for _ in range(100):
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            if all(t.state is not None and t.state.is_final() for t in task_runs):
                break
            time.sleep(0.1)
    return {t.name: t.run_count for t in task_runs}


def task_states(flow_run_id) -> dict:
    """Task run name -> state of a flow run (from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {t.name: t.state for t in task_runs}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. the same results as the sequential runner ----------------------------------------------


def test_flow_on_its_own_local_cluster_stores_the_sequential_results(
    monkeypatch, parquet, config_of, sequential, tmp_path
):
    """The default path: no address, so the flow starts (and stops) a LocalCluster of 2 workers."""
    monkeypatch.delenv("MMFLOW_TASK_RUNNER", raising=False)
    strategy = "v1_baseline"
    state = run_shipped(strategy, parquet, config_of, tmp_path, securities=SECURITIES, workers=2)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.status == "completed" and summary.securities_ok == len(SECURITIES)
    assert set(summary.timings) == {"cluster_start", "compute", "cluster_stop", "store"}
    assert read_run(summary.store, summary.run_id).status == "completed"
    assert_same_as_sequential(summary, sequential(strategy))


@pytest.mark.parametrize("strategy", ["v2_price_follow_qty_cooldown", "v2_1_stop_loss"])
def test_flow_on_an_existing_cluster_stores_the_sequential_results(
    strategy, dask_address, parquet, config_of, sequential, tmp_path
):
    """`dask_address`: the flow connects to the running scheduler instead of starting one."""
    state = run_shipped(
        strategy, parquet, config_of, tmp_path, securities=SECURITIES, dask_address=dask_address
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.status == "completed"
    assert_same_as_sequential(summary, sequential(strategy))


# ---- 2. retries and failed securities ----------------------------------------------------------


def test_retried_and_failed_securities(
    threads, small_data, tmp_path, monkeypatch, config_of, sequential
):
    """MODON fails once and is stored after a retry; PARKIN's OSError is retried until retries
    run out (3 attempts); BROKEN's InputError is not retried; the run is Completed, partial."""
    marks = with_faults(monkeypatch, tmp_path, MODON=faults.FAIL_ONCE, PARKIN=faults.ALWAYS_OSERROR)
    strategy = "v1_baseline"
    state = run_flow(
        data=str(small_data),
        strategy=strategy,
        config=config_of(strategy),
        store=str(tmp_path / "store.duckdb"),
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.status == "partial"
    assert (summary.securities_ok, summary.securities_failed) == (2, 2)
    assert len(faults.attempts(marks, "MODON")) == 2
    assert len(faults.attempts(marks, "PARKIN")) == 3
    counts = run_counts(state.state_details.flow_run_id)  # Prefect's retries did these
    assert (counts["backtest-MODON"], counts["backtest-PARKIN"], counts["backtest-BROKEN"]) == (
        2,
        3,
        1,
    )
    assert_same_as_sequential(summary, sequential(strategy), securities=["MODON", "SPINNEYS"])

    failed = failures_of(summary.store, summary.run_id)
    assert sorted(failed) == ["BROKEN", "PARKIN"]
    assert failed["PARKIN"] == {
        "attempts": 3,
        "error_type": "OSError",
        "message": "injected: PARKIN is never readable",
    }
    assert failed["BROKEN"]["attempts"] == 1
    assert failed["BROKEN"]["error_type"] == "InputError"
    assert "could not be read as Parquet" in failed["BROKEN"]["message"]
    assert read_run(summary.store, summary.run_id).status == "partial"

    report = report_artifact(state.state_details.flow_run_id)
    assert "2 ok, 2 failed" in report
    assert "| PARKIN | 3 | OSError: injected: PARKIN is never readable |" in report
    assert "| BROKEN | 1 | InputError:" in report
    # Every figure says its basis, in the table artifact too; its numbers are rounded.
    table = report_artifact(state.state_details.flow_run_id, "backtest-summary", "description")
    assert "Sharpe ratios are daily" in table and "indicative only" in table
    assert "daily, over" in report  # the headline's Sharpe states its basis


def test_flow_fails_when_no_security_succeeds(threads, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "broken.parquet").write_bytes(b"not parquet")
    store = str(tmp_path / "store.duckdb")
    state = run_flow(data=str(folder), strategy="v1_baseline", store=store)
    assert state.is_failed()
    assert "all 1 securities failed" in state.message
    (run_id,) = query(store, "SELECT run_id FROM runs")["run_id"]
    assert read_run(store, run_id).status == "failed"
    failed = failures_of(store, run_id)
    assert list(failed) == ["BROKEN"] and failed["BROKEN"]["error_type"] == "InputError"
    assert outcome(state).run_id == run_id  # the summary of the failed run
    # Called directly (a notebook), the flow raises RunFailed with the summary.
    with pytest.raises(RunFailed, match="all 1 securities failed") as raised:
        backtest(data=str(folder), strategy="v1_baseline", store=store)
    summary = raised.value.summary
    assert summary.status == "failed" and summary.failed.keys() == {"BROKEN"}
    copied = pickle.loads(pickle.dumps(raised.value))  # crosses processes (deployments)
    assert str(copied) == str(raised.value) and copied.summary.failed == summary.failed


# ---- 3. a worker process killed during a run ---------------------------------------------------


def test_worker_killed_once_the_task_is_rerun_elsewhere(
    dask_address, dask_cluster, tmp_path, monkeypatch, parquet, config_of, sequential
):
    """MODON's first attempt SIGKILLs its worker process. The scheduler notices the lost worker
    and runs the task again on a live one (while its deaths <= distributed.scheduler.
    allowed-failures; default 3); the nanny restarts the killed process. Prefect's retries are
    not involved (the task run's run_count stays 1), and every security is stored."""
    marks = with_faults(monkeypatch, tmp_path, MODON=faults.KILL_ONCE)
    strategy = "v2_price_follow_qty_cooldown"
    state = run_shipped(
        strategy, parquet, config_of, tmp_path, securities=SECURITIES, dask_address=dask_address
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.status == "completed"
    killed, rerun = faults.attempts(marks, "MODON")
    client = dask_cluster[1]
    client.wait_for_workers(2, timeout=120)
    live = set(client.run(os.getpid).values())
    assert killed != rerun and killed not in live  # the first attempt's process is gone
    assert run_counts(state.state_details.flow_run_id)["backtest-MODON"] == 1  # not a retry
    assert_same_as_sequential(summary, sequential(strategy))


def test_worker_killed_on_every_try_fails_that_security_only(
    dask_address, tmp_path, monkeypatch, parquet, config_of, sequential
):
    """A security that kills every worker it runs on ends in Dask's KilledWorker (raised by the
    future, outside Prefect's task engine, after allowed-failures + 1 = 2 deaths here); the flow
    records it as failed and stores the rest."""
    marks = with_faults(monkeypatch, tmp_path, MODON=faults.KILL_ALWAYS)
    strategy = "v2_price_follow_qty_cooldown"
    state = run_shipped(
        strategy,
        parquet,
        config_of,
        tmp_path,
        securities=["SPINNEYS", "MODON"],
        dask_address=dask_address,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.status == "partial"
    assert len(set(faults.attempts(marks, "MODON"))) == 2
    failed = failures_of(summary.store, summary.run_id)
    assert list(failed) == ["MODON"]
    assert failed["MODON"]["error_type"] == "KilledWorker"
    assert failed["MODON"]["attempts"] == 2
    assert "workers died" in failed["MODON"]["message"]
    assert_same_as_sequential(summary, sequential(strategy), securities=["SPINNEYS"])
    # No task run of the flow is left Pending or Running in the UI: the one whose workers died
    # ends Crashed (when its worker reported it at all before dying).
    flow_run_id = read_run(summary.store, summary.run_id).flow_run_id
    for _ in range(100):  # task states reach the API as events, a moment later
        states = task_states(flow_run_id)
        if states and all(state.is_final() for state in states.values()):
            break
        time.sleep(0.1)
    assert all(state.is_final() for state in states.values()), states
    if "backtest-MODON" in states:
        assert states["backtest-MODON"].is_crashed(), states
    assert states["backtest-SPINNEYS"].is_completed()


# ---- 4. a locked store -------------------------------------------------------------------------


@pytest.fixture
def locked_store(tmp_path):
    """A store file held open read-write by another process until the test calls `release()`."""
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    path = str(tmp_path / "locked.duckdb")
    holder = context.Process(target=faults.hold_store, args=(path, ready, release), daemon=True)
    holder.start()

    def unlock() -> None:
        release.set()
        holder.join(30)

    try:
        assert ready.wait(60), "the lock holder did not start"
        yield path, holder.pid, unlock
    finally:
        unlock()
        if holder.is_alive():
            holder.kill()
            holder.join(10)


def test_a_store_locked_past_the_timeout_keeps_the_run_as_a_spill_that_loads_row_for_row(
    threads, locked_store, parquet, tmp_path, capsys
):
    """An idle reader (a notebook) holds the store: the writer waits --store-timeout, warns once
    who holds it, keeps the finished run as a spill, and `mmflow store load-spill` stores it
    exactly as an uninterrupted run is stored."""
    path, holder_pid, unlock = locked_store
    kwargs = dict(data=str(parquet), strategy="v1_baseline", securities=["SPINNEYS"])
    started = time.monotonic()
    state = run_flow(**kwargs, store=path, store_timeout=3)
    assert state.is_completed(), state.message
    summary = state.result()
    assert 3 <= time.monotonic() - started < 60
    [folder] = summary.spilled
    assert Path(folder).parent == Path(path).parent / "spill"
    assert Path(folder).name == summary.run_id
    assert (Path(folder) / "trades.parquet").is_file()

    unlock()
    assert main(["store", "load-spill", "--store", path]) == 0
    assert f"loaded run {summary.run_id}" in capsys.readouterr().out
    assert not Path(folder).exists()

    reference = str(tmp_path / "uninterrupted.duckdb")
    uninterrupted = run_flow(**kwargs, store=reference).result()
    for table in ("runs", "security_results", "trades", "daily_pnl", "failures"):
        columns = (
            "* EXCLUDE (run_id, started_at, finished_at, flow_run_id)"
            if table == "runs"
            else "* EXCLUDE (run_id)"
        )
        spilled = query(path, f"SELECT {columns} FROM {table} WHERE run_id = '{summary.run_id}'")
        again = query(
            reference, f"SELECT {columns} FROM {table} WHERE run_id = '{uninterrupted.run_id}'"
        )
        sort = [c for c in ("security", "seq", "date") if c in spilled.columns]
        pd.testing.assert_frame_equal(
            spilled.sort_values(sort, ignore_index=True) if sort else spilled,
            again.sort_values(sort, ignore_index=True) if sort else again,
            check_exact=True,
        )
    assert read_run(path, summary.run_id).status == "completed"


def test_a_pending_spill_is_loaded_by_the_next_run(threads, parquet, tmp_path):
    from engine.results.store import spill_run

    store = str(tmp_path / "store.duckdb")
    earlier = run_backtest(parquet, "v1_baseline", securities=["SPINNEYS"])
    folder = spill_run(store, earlier)
    state = run_flow(data=str(parquet), strategy="v1_baseline", securities=["PARKIN"], store=store)
    assert state.is_completed(), state.message
    assert not folder.exists()
    stored = set(query(store, "SELECT run_id FROM runs")["run_id"])
    assert stored == {earlier.run_id, state.result().run_id}


def test_mmflow_run_cli_end_to_end(dask_address, tmp_path, parquet, config_of):
    """`mmflow run --benchmark` in a subprocess against the session's Prefect API and (to save
    a cluster start; the flow's own cluster is tested above) the existing Dask cluster."""
    import prefect.settings

    data = tmp_path / "data"
    data.mkdir()
    for name in ("spinneys.parquet", "modon.parquet"):
        shutil.copy(parquet / name, data / name)
    store = tmp_path / "cli.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect.settings.PREFECT_API_URL.value()}
    env.pop("MMFLOW_TASK_RUNNER", None)
    command = [BIN / "mmflow", "run", "--data", data, "--strategy", "v1_baseline"]
    command += [
        "--config",
        config_of("v1_baseline"),
        "--store",
        store,
        "--dask-address",
        dask_address,
    ]
    process = subprocess.run(
        [str(c) for c in [*command, "--benchmark"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = process.stdout
    assert process.returncode == 0, output + process.stderr
    run_id = re.search(r"stored in .* as run (\S+)", output).group(1)
    run = read_run(store, run_id)
    assert (run.status, len(run.results), len(run.failures)) == ("completed", 2, 0)
    assert f"run {run_id} (v1_baseline)" in output
    assert "SPINNEYS" in output and "MODON" in output
    assert "portfolio (2 ok, 0 failed): trades=" in output
    assert "trades identical: True" in output
