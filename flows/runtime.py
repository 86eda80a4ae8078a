"""Where flows run: the Prefect API (a running server, the one `mmflow server` recorded, or a
temporary one we start), and the Dask task runner (an existing scheduler by address, the cluster
`mmflow server` recorded, or a local cluster per run).

`mmflow server` writes `<cache dir>/server.json` once its Prefect server and Dask cluster are
healthy, and removes it when it stops; every mmflow process on this machine reads it, so a run
needs no environment variables. A record is ignored when its processes are gone or do not answer,
when $MMFLOW_NO_SERVER=1 (`--no-server`), and (the cluster only) when its workers loaded other
engine, task or flow code than this process (`worker_code_version`) or report to another API.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from engine import settings
from flows.liveness import alive

PACKAGES = Path(__file__).resolve().parents[1]  # where the engine, tasks and flows live

# Settings that suit a 2-core machine, applied before Prefect is imported (facts §2).
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "DASK_LOGGING__DISTRIBUTED": "warning",  # cluster start/stop chatter hides the run's progress
}
for _key, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_key, _value)


# ---- the record `mmflow server` leaves for the other commands ---------------------------------


@dataclass(frozen=True)
class ServerRecord:
    """A running `mmflow server`: its Prefect API, its Dask scheduler (None if it has none) and
    the processes behind them (`mmflow`: the server command itself; `prefect`, `scheduler`,
    `workers`: its children)."""

    api_url: str  # for clients on this machine
    dask_address: str | None
    pids: dict[str, int] = field(default_factory=dict)
    public_api_url: str = ""  # the one other machines use (`mmflow server --host 0.0.0.0`)
    workers: int = 0
    code_version: str = ""  # worker_code_version() of the code the workers loaded
    started_at: str = ""

    def alive(self, *names: str) -> bool:
        """Whether the named recorded processes all still exist on this machine."""
        return all(alive(self.pids.get(name, 0)) for name in names)


def write_server_record(record: ServerRecord, path: Path | None = None) -> Path:
    """Write the record atomically (readers never see half a file); its path."""
    path = path or settings.server_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(record), indent=2) + "\n")
    partial.replace(path)
    return path


def read_server_record(path: Path | None = None) -> ServerRecord | None:
    """The recorded server, or None: no file, an unreadable one, or its `mmflow server` is gone."""
    path = path or settings.server_file()
    try:
        values = json.loads(path.read_text())
        record = ServerRecord(**values)
    except (OSError, ValueError, TypeError):
        return None
    return record if record.alive("mmflow") else None


def remove_server_record(pid: int, path: Path | None = None) -> None:
    """Remove the record if it is the one process `pid` wrote (never another server's)."""
    path = path or settings.server_file()
    try:
        if json.loads(path.read_text()).get("pids", {}).get("mmflow") == pid:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def answers_health(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect server answers `true` at `<api_url>/health`."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as reply:
            return json.loads(reply.read() or b"null") is True
    except (OSError, ValueError):
        return False


def accepts_connections(address: str, timeout: float = 1.0) -> bool:
    """Whether something listens at a Dask address such as tcp://127.0.0.1:8786."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except (OSError, ValueError, TypeError):
        return False


def recorded_api() -> str | None:
    """The API URL of the recorded `mmflow server`, if it answers and --no-server is not set."""
    if settings.no_server():
        return None
    record = read_server_record()
    if record is None or not record.alive("prefect") or not answers_health(record.api_url):
        return None
    return record.api_url


@cache
def worker_code_version() -> str:
    """What a Dask worker of `mmflow server` loads at start: the engine (`code_version`, which
    also keys the kernel cache) and the task and flow modules, hashed. A recorded server whose
    workers loaded other code is not used (they would run stale tasks)."""
    from engine.lineage import code_version

    digest = hashlib.sha256()
    for package in ("tasks", "flows"):
        for path in sorted((PACKAGES / package).glob("*.py")):
            digest.update(f"{package}/{path.name}".encode())
            digest.update(path.read_bytes())
    return f"{code_version()}.{digest.hexdigest()[:8]}"


def recorded_dask_address(api_url: str | None) -> str | None:
    """The recorded cluster's scheduler, when a flow reporting to `api_url` may use it: the same
    API as its workers', the same engine code, and the scheduler and workers alive."""
    if settings.no_server():
        return None
    record = read_server_record()
    if record is None or not record.dask_address:
        return None
    if not any(_same_api(api_url, url) for url in (record.api_url, record.public_api_url)):
        return None
    if not record.alive("scheduler", "workers"):
        return None
    if record.code_version != worker_code_version():
        _warn(
            f"the Dask workers of `mmflow server` (PID {record.pids['mmflow']}) run other "
            f"code ({record.code_version}, here {worker_code_version()}): using a local cluster. "
            "Restart `mmflow server` to use its workers again."
        )
        return None
    return record.dask_address if accepts_connections(record.dask_address) else None


def _same_api(a: str | None, b: str | None) -> bool:
    def norm(url: str | None) -> str:
        return (url or "").rstrip("/").replace("://localhost:", "://127.0.0.1:")

    return bool(a) and norm(a) == norm(b)


def _warn(message: str) -> None:
    """A warning in the flow run's log (the UI) when in a flow, else on stderr."""
    try:
        from prefect import get_run_logger

        get_run_logger().warning(message)
    except Exception:  # noqa: BLE001 - no run context: the terminal is the place
        print(f"warning: {message}", file=sys.stderr)


# ---- Dask --------------------------------------------------------------------------------------


def make_task_runner(dask_address: str | None = None, workers: int | None = None):
    """A DaskTaskRunner: the scheduler at `dask_address` (or $MMFLOW_DASK_ADDRESS) if given, else
    the cluster of the recorded `mmflow server` (`workers` does not resize it), else a local
    cluster of single-threaded worker processes, one per core by default.
    MMFLOW_TASK_RUNNER=threads swaps in Prefect's thread pool (tests, debugging)."""
    if settings.task_runner_kind() == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers or 2)
    import prefect.settings
    from prefect_dask import DaskTaskRunner

    address = settings.dask_address(dask_address) or recorded_dask_address(
        prefect.settings.PREFECT_API_URL.value()
    )
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.workers(workers),
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


WARMED: dict[str, float] = {}  # strategy -> seconds its first run took in this worker


def warm_worker() -> dict[str, float]:
    """Load what a backtest task needs (Prefect's task engine, the Parquet reader, every
    strategy's compiled kernels from the numba cache) by backtesting a 10-row Parquet file
    (SPEC §1.4 columns) with each strategy, so the first real task on this worker pays no
    import, compile or first read; seconds per strategy."""
    import tempfile
    import time

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import tasks.backtest  # noqa: F401 - Prefect, the task engine and the data readers
    from engine.data.source import open_data
    from engine.runner import backtest_security
    from engine.sim import strategies

    start = np.datetime64("2026-01-05T10:00:00", "ns")
    table = pa.table(
        {
            "timestamp": start + np.arange(10) * np.timedelta64(30, "s"),
            "type": ["BID", "ASK", "TRADE", "BID", "ASK", "TRADE", "TRADE", "BID", "ASK", "TRADE"],
            "price": [10.0, 10.1, 10.1, 10.0, 10.1, 10.0, 10.1, 10.05, 10.1, 10.05],
            "volume": np.array([90, 90, 6, 90, 90, 6, 6, 90, 90, 6], dtype=np.int64) * 10_000,
        }
    )
    with tempfile.TemporaryDirectory(prefix="mmflow-warm-") as folder:
        path = Path(folder) / "warm.parquet"
        pq.write_table(table, path)
        source = open_data(path)
        for name in strategies.available():
            started = time.perf_counter()
            backtest_security(source, "WARM", name)
            WARMED[name] = time.perf_counter() - started
    return dict(WARMED)


def warm_up_cluster(api_url: str, address: str, tasks: int, timeout: float = 120.0) -> float:
    """Run `flows.warmup` (one tiny flow of `tasks` no-op tasks on the cluster at `address`,
    deleted after) in a subprocess, so a new server's first real run does not pay the server's
    and the workers' first task runs; its seconds. RuntimeError (the reason, in one line) when it
    did not finish."""
    import subprocess
    import time

    started = time.monotonic()
    command = [sys.executable, "-m", "flows.warmup", api_url, address, str(tasks)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"no answer in {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
    return time.monotonic() - started


def dask_setup(worker) -> None:
    """Dask preload hook (`dask worker --preload flows.runtime`): warm the worker before it
    registers with the scheduler, so a worker is never handed a task cold, restarts included."""
    warm_worker()


# ---- Prefect -----------------------------------------------------------------------------------


def _drain_workers() -> None:
    """Send buffered run logs and events before a temporary server goes away (as Prefect's own
    test harness does); otherwise the process waits on retries to a server that is gone.

    Only the workers that exist are drained: asking for `APILogWorker.instance()` would start a
    new one, and outside `prefect_api()` (no API URL any more) its client would start a
    temporary "ephemeral" server that outlives this process."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for service in (APILogWorker, EventsWorker):
            result = service.drain_all()
            if inspect.isawaitable(result):
                await result

    try:
        run_coro_as_sync(drain())
    except Exception:  # noqa: BLE001 - best effort: a lost log line must not mask the outcome
        pass


def _reconcile(liveness) -> None:
    """Mark Crashed our flow runs whose process died (they would show RUNNING forever)."""
    crashed = liveness.reconcile()
    if crashed:
        print(f"marked {len(crashed)} flow run(s) Crashed whose process is gone: "
              f"{', '.join(crashed)}")  # fmt: skip


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use $PREFECT_API_URL when set; else the recorded `mmflow server` when it answers (unless
    --no-server); otherwise start one temporary local server for this process.

    Starting it here (rather than letting each Prefect client start its own "ephemeral" server)
    matters with Dask: the URL travels to the worker processes, so they all report to one server
    instead of each starting another (facts §2). Flow runs send no Prefect heartbeats: our own
    liveness records find dead runs, and the heartbeat thread holds every flow run's end for up
    to a second.
    """
    import prefect.settings

    from flows import liveness

    server = None
    url = prefect.settings.PREFECT_API_URL.value() or recorded_api()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer  # 2-10 s import: if needed

        server = SubprocessASGIServer()
        server.start(timeout=int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
        SubprocessASGIServer._instances[None] = server  # Prefect reuses it, never starts another
        url = server.api_url
    updates = {
        prefect.settings.PREFECT_API_URL: url,
        prefect.settings.PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
    }
    try:
        with prefect.settings.temporary_settings(updates):
            try:
                _reconcile(liveness)
                yield url
            finally:  # also on Ctrl-C: otherwise log shipping retries against a dead server
                _drain_workers()
    finally:
        if server is not None:
            server.stop()
            SubprocessASGIServer._instances.pop(None, None)
