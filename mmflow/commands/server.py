"""`mmflow server`: a local Prefect server with its UI, and a Dask cluster beside it, in the
foreground (Ctrl-C stops both).

It runs `prefect server start` with analytics off and the UI pointed at this server's API, and a
Dask scheduler with one single-threaded worker process per core (`--workers N`) on 127.0.0.1.
The workers load mmflow and its compiled kernels once, at start, and keep them: restart the
server after changing the engine's code (runs notice, say so, and start their own cluster). When
both are up it records their addresses in <MMFLOW_CACHE_DIR or ~/.cache/mmflow>/server.json:
`mmflow run` and `sweep` then use this server and cluster with no environment variables
(`--no-server` opts out), and so do the deployments `mmflow serve` runs against this server.
A first start creates the SQLite database and takes about 40 s on 2 cores; later starts 5-10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from mmflow.cli import UserError

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DASK_HOST = "127.0.0.1"  # the cluster runs this machine's work only
DASK_START_TIMEOUT = 180.0  # seconds: importing mmflow and loading kernels on 2 busy cores


def add_parser(subparsers) -> None:
    """Register `mmflow server`."""
    p = subparsers.add_parser(
        "server",
        help="start a local Prefect server, its UI and a Dask cluster in the foreground "
        "(Ctrl-C stops them)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for other machines)",
    )
    p.add_argument("--port", type=int, default=4200, help="port to listen on (default 4200)")
    p.add_argument(
        "--home",
        help="Prefect home holding the server's database (default $PREFECT_HOME or ~/.prefect)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="Dask worker processes (default $MMFLOW_WORKERS or one per core)",
    )
    p.add_argument(
        "--dask-port", type=int, default=0, help="Dask scheduler port (default: any free port)"
    )
    p.set_defaults(handler=run)


def urls(host: str, port: int, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(the address a browser opens, the API URL the browser and clients use)."""
    env = os.environ if environ is None else environ
    name = socket.gethostname() if host in WILDCARD_HOSTS else host
    if ":" in name:  # an IPv6 literal
        name = f"[{name}]"
    api = env.get("PREFECT_UI_API_URL") or f"http://{name}:{port}/api"
    return api.removesuffix("/api"), api


def local_api_url(host: str, port: int) -> str:
    """The API URL for clients on this machine (a wildcard host is reached over loopback)."""
    name = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in name and not name.startswith("["):  # an IPv6 literal
        name = f"[{name}]"
    return f"http://{name}:{port}/api"


def server_env(host: str, port: int, home: str | None = None) -> dict[str, str]:
    """The environment of `prefect server start`: analytics off, the UI pointed at this API."""
    env = dict(os.environ)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no telemetry calls (and no DNS errors)
    env["PREFECT_UI_API_URL"] = urls(host, port)[1]
    env.pop("PREFECT_API_URL", None)  # the server is not a client of another API
    if home:
        env["PREFECT_HOME"] = os.path.abspath(home)
    return env


def dask_env(api_url: str, home: str | None = None) -> dict[str, str]:
    """The environment of the scheduler and workers: this server's API (a task reports there),
    a scratch folder, the Prefect home, and the project on the path even when not installed."""
    from engine import settings

    env = dict(os.environ)
    env["PREFECT_API_URL"] = api_url
    env.setdefault("DASK_TEMPORARY_DIRECTORY", str(settings.cache_dir() / "dask"))
    os.makedirs(env["DASK_TEMPORARY_DIRECTORY"], exist_ok=True)
    if home:
        env["PREFECT_HOME"] = os.path.abspath(home)
    project = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, env.get("PYTHONPATH")]))
    return env


def dask_commands(address: str, workers: int) -> tuple[list[str], list[str]]:
    """(scheduler, workers) command lines: one nanny process holding `workers` single-threaded
    worker processes, each warmed by the `flows.runtime` preload before it registers."""
    port = address.rsplit(":", 1)[1]
    dashboard = "--dashboard" if _has_bokeh() else "--no-dashboard"
    scheduler = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", DASK_HOST]
    scheduler += ["--port", port, dashboard, "--dashboard-address", f"{DASK_HOST}:0"]
    worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", DASK_HOST]
    worker += ["--nworkers", str(workers), "--nthreads", "1", "--no-dashboard"]
    worker += ["--preload", "flows.runtime", "--death-timeout", "60"]
    return scheduler, worker


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _free_port(host: str = DASK_HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _check_port_free(host: str, port: int, option: str = "--port") -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror}); is a server already running "
                f"there? Pick another port with {option}"
            ) from exc


def _check_not_running() -> None:
    """One recorded server per cache folder: refuse to start a second beside a live one."""
    from flows.runtime import answers_health, read_server_record

    record = read_server_record()
    if record is not None and answers_health(record.api_url):
        raise UserError(
            f"mmflow server is already running (PID {record.pids.get('mmflow')}, "
            f"{record.api_url}, Dask {record.dask_address}); stop it first, or give this one "
            "its own MMFLOW_CACHE_DIR"
        )


def _parent_death_signal():
    """A pre-exec hook giving a child SIGTERM when `mmflow server` dies, even by SIGKILL, so no
    server or cluster is left behind unrecorded (Linux's PR_SET_PDEATHSIG; None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _start_dask(address: str, workers: int, env: dict[str, str]) -> list[subprocess.Popen]:
    """Start the scheduler and the workers, each in its own process group (stopped in order,
    workers first, by us: a terminal's Ctrl-C does not reach them)."""
    hook = _parent_death_signal()
    return [
        subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=hook)
        for command in dask_commands(address, workers)
    ]


def _wait_for_workers(address: str, workers: int, processes, prefect) -> float:
    """Seconds until every worker registered (warmed) or the Prefect server ended; a
    RuntimeError saying why the cluster did not start."""
    from distributed import Client

    from flows.runtime import accepts_connections

    started = time.monotonic()

    def waiting() -> bool:
        """Sleep a moment and say whether to go on waiting (False: the Prefect server ended)."""
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a Dask process exited during start-up (its log is above)")
        if time.monotonic() - started > DASK_START_TIMEOUT:
            raise RuntimeError(f"the Dask workers did not start in {DASK_START_TIMEOUT:.0f} s")
        time.sleep(0.2)
        return prefect.poll() is None

    while not accepts_connections(address):
        if not waiting():
            return time.monotonic() - started
    with Client(address, timeout=30) as client:
        while len(client.scheduler_info(n_workers=-1)["workers"]) < workers:
            if not waiting():
                break
    return time.monotonic() - started


def _wait_healthy(api: str, process: subprocess.Popen) -> bool:
    """Whether /api/health answered before the server exited (a fresh database takes ~40 s)."""
    from flows.runtime import answers_health

    while process.poll() is None:
        if answers_health(api):
            return True
        time.sleep(0.5)
    return False


def create_store_limit(api: str) -> None:
    """Create the one-slot global concurrency limit every store write takes, if missing."""
    from engine.settings import STORE_CONCURRENCY_LIMIT

    with contextlib.suppress(OSError):  # read first: POSTing an existing name logs a traceback
        return urllib.request.urlopen(f"{api}/v2/concurrency_limits/{STORE_CONCURRENCY_LIMIT}",
                                      timeout=10).close()  # fmt: skip
    body = json.dumps({"name": STORE_CONCURRENCY_LIMIT, "limit": 1}).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{api}/v2/concurrency_limits/", body, headers, method="POST")
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: it exists already
            print(f"mmflow server: could not create {STORE_CONCURRENCY_LIMIT}: {exc}", flush=True)
    except OSError as exc:
        print(f"mmflow server: could not create {STORE_CONCURRENCY_LIMIT}: {exc}", flush=True)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a supervisor's stop): unlike a terminal's Ctrl-C, it reached this process only."""


def _interrupt(signum, frame) -> None:
    raise _Terminated


def _stop(process: subprocess.Popen, *, reached: bool = True) -> None:
    """Stop the server: when Ctrl-C in a terminal has `reached` it too, give it a moment to shut
    its services down; then SIGTERM, then SIGKILL."""
    for send, seconds in ((None, 5 if reached else 0), (process.terminate, 15), (process.kill, 5)):
        if process.poll() is not None:
            return
        if send is not None:
            send()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass


def _stop_groups(processes: list[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM each process group in reverse start order (workers before the scheduler), wait up
    to `grace` s in all, then SIGKILL whatever is left (a nanny's orphaned worker included)."""
    deadline = time.monotonic() + grace
    for process in reversed(processes):
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _announce(args, ui: str, api: str, env: dict[str, str]) -> None:
    print(
        f"Prefect server starting on {args.host}:{args.port} (Prefect home "
        f"{env.get('PREFECT_HOME', '~/.prefect')}); the first start takes about 40 s.\n"
        f"  UI:  {ui}   (the new UI is under {ui}/v2/)\n"
        f"  `mmflow run`, `sweep` and `serve` on this machine find this server and its Dask "
        f"cluster by themselves; elsewhere: export PREFECT_API_URL={api}\n"
        f"  Ctrl-C stops the server and the cluster.",
        flush=True,
    )
    if args.host in WILDCARD_HOSTS:
        print(
            f"  Browsers on other machines must reach {api}; if not, set PREFECT_UI_API_URL.",
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    """Start the server and the cluster, record them, and wait (Ctrl-C or SIGTERM stops both)."""
    from engine import settings
    from flows import runtime  # also applies mmflow's Prefect and Dask defaults to os.environ

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    _check_port_free(args.host, args.port)
    if args.dask_port:
        _check_port_free(DASK_HOST, args.dask_port, option="--dask-port")
    _check_not_running()
    ui, api = urls(args.host, args.port)
    local_api = local_api_url(args.host, args.port)
    env = server_env(args.host, args.port, args.home)
    _announce(args, ui, api, env)
    workers = settings.workers(args.workers)
    address = f"tcp://{DASK_HOST}:{args.dask_port or _free_port()}"
    version = runtime.worker_code_version()  # of the code the workers are about to load
    started = time.monotonic()
    prefect = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start"]
        + ["--host", args.host, "--port", str(args.port)],
        env=env,
        preexec_fn=_parent_death_signal(),
    )
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop also stops the server
    dask: list[subprocess.Popen] = []
    reached = True  # whether the signal that stops us reached the Prefect server too
    try:
        dask, address = _start_cluster(address, workers, dask_env(local_api, args.home), prefect)
        if not _wait_healthy(local_api, prefect):
            return prefect.returncode or 1
        create_store_limit(local_api)
        pids = {"mmflow": os.getpid(), "prefect": prefect.pid}
        if dask:
            pids.update(scheduler=dask[0].pid, workers=dask[1].pid)
            try:
                warm = runtime.warm_up_cluster(local_api, address, 2 * workers)
                said = f"first-run warm-up done in {warm:.1f} s"
            except RuntimeError as exc:  # not fatal: only the first run is slower
                said = f"the warm-up flow did not finish ({exc}); continuing"
            print(f"mmflow server: {said}", flush=True)
        record = runtime.ServerRecord(
            api_url=local_api,
            dask_address=address,
            pids=pids,
            public_api_url=api,
            workers=workers if dask else 0,
            code_version=version,
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        path = runtime.write_server_record(record)
        seconds = time.monotonic() - started
        print(f"\nmmflow server: ready after {seconds:.0f} s - open {ui} (recorded in {path})",
              flush=True)  # fmt: skip
        return _watch(prefect, dask)
    except KeyboardInterrupt as stop:
        print("mmflow server: stopping", flush=True)
        reached = not isinstance(stop, _Terminated)
        return 0
    finally:
        runtime.remove_server_record(os.getpid())
        _stop_groups(dask)
        if prefect.poll() is None:
            _stop(prefect, reached=reached)
        print("mmflow server: stopped", flush=True)


def _start_cluster(address: str, workers: int, env: dict[str, str], prefect):
    """(processes, address) of a started and warmed cluster, or ([], None) after saying why it
    did not start: the Prefect server is still worth having, and runs start their own."""
    dask = _start_dask(address, workers, env)
    try:
        seconds = _wait_for_workers(address, workers, dask, prefect)
    except (RuntimeError, OSError) as exc:
        print(f"mmflow server: no Dask cluster ({exc}); runs start their own", flush=True)
        _stop_groups(dask)
        return [], None
    except BaseException:  # Ctrl-C or SIGTERM while waiting: the caller does not hold them yet
        _stop_groups(dask)
        raise
    print(f"mmflow server: Dask {address}: {workers} warm workers after {seconds:.0f} s",
          flush=True)  # fmt: skip
    return dask, address


def _watch(prefect: subprocess.Popen, dask: list[subprocess.Popen]) -> int:
    """Wait for the Prefect server to end; say so once if the Dask cluster ends first."""
    warned = False
    while True:
        try:
            return prefect.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        if dask and not warned and any(p.poll() is not None for p in dask):
            print("mmflow server: the Dask cluster stopped; runs now start their own "
                  "(restart mmflow server to get it back)", flush=True)  # fmt: skip
            warned = True
