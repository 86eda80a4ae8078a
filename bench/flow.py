"""Benchmark: `mmflow run` (the Prefect `backtest` flow on Dask, stored in DuckDB), warm and cold,
against the in-process `mmflow backtest` of the same work; every command in a fresh process, as a
user runs it (mmflow's bytecode compiled first, as an installed package has it).

  in-process  `mmflow backtest --out DIR`: every security in turn, CSV files
  warm        `mmflow run` while `mmflow server` runs (its Prefect API and warm Dask workers, found
              in server.json); targets: <= 3 s wall and <= 1.5x in-process
  as before   `mmflow run --no-server` with PREFECT_API_URL of the server: a local cluster per run
  cold        `mmflow run --no-server`: a temporary Prefect server and a local cluster per run
  fresh       (--fresh) the first `mmflow run` on a fresh machine: a new Prefect home and cache
              folder (the database is created, numba compiles); target <= 30 s

    python bench/flow.py                         # the 10 securities of ../shared/data/parquet
    python bench/flow.py --runs 5 --fresh
    python bench/flow.py --use-running           # the `mmflow server` you started yourself

It starts its own `mmflow server` (its own cache folder and Prefect home in a temporary folder;
your kernel cache) unless --use-running, and stops it at the end. Then it runs the flow itself
against the same server to print where a warm run's time goes, phase by phase (the flow's
`timings`; `rest` is Prefect's own bookkeeping, the report and the artifacts), and whether the
flow's trades equal the in-process ones. Times are best and median of --runs. The scratch
folder (stores, Prefect homes, logs: hundreds of MB) is removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/engine.py is named like the `engine` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))
from bench import common  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data"
MMFLOW = Path(sys.executable).parent / "mmflow"  # the console script a user runs
PHASES = ("cluster_start", "compute", "cluster_stop", "store")
TARGET_WARM, TARGET_RATIO, TARGET_FRESH = 3.0, 1.5, 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data", default=str(SHARED_DATA / "parquet"), help="Parquet folder or workbook"
    )
    p.add_argument("--strategy", default="v2_price_follow_qty_cooldown")
    p.add_argument("--config", help="per-security JSON config (default: none, as in the issue)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per command (default 3)")
    p.add_argument("--cold-runs", type=int, default=1, help="timed cold runs (default 1)")
    p.add_argument("--fresh", action="store_true", help="also time a first run on a fresh machine")
    p.add_argument("--workers", type=int, help="the server's Dask workers (default: one per core)")
    p.add_argument("--use-running", action="store_true", help="use the running `mmflow server`")
    p.add_argument("--no-phases", action="store_true", help="skip the per-phase flow runs")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, stores)")
    return p.parse_args(argv)


STALE = "run other code ("  # a warm run that fell back to a local cluster says so


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of one fresh process; stops the benchmark with its output if it fails, or if
    a warm run could not use the server's workers (the engine changed since it started)."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}"
                 f"\n{done.stderr[-3000:]}")  # fmt: skip
    if STALE in done.stdout + done.stderr:
        sys.exit("mmflow's code changed while the benchmark ran: its server's workers no "
                 "longer match; run it again on a tree nobody edits")  # fmt: skip
    return seconds


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float]]:
    """Wall times of a first fresh process, and of `runs` more."""
    return wall(argv, env), [wall(argv, env) for _ in range(runs)]


def start_server(args, scratch: Path, env: dict[str, str]) -> subprocess.Popen:
    """`mmflow server` on a free port with its own Prefect home; returns once it is recorded."""
    from flows.runtime import read_server_record
    from mmflow.commands.server import _free_port

    command = [str(MMFLOW), "server", "--port", str(_free_port()), "--home", str(scratch / "home")]
    command += ["--workers", str(args.workers)] if args.workers else []
    log = open(scratch / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    record_file = Path(env["MMFLOW_CACHE_DIR"]) / "server.json"
    started = time.perf_counter()
    while read_server_record(record_file) is None:
        if server.poll() is not None or time.perf_counter() - started > 300:
            server.kill()
            sys.exit(
                f"mmflow server did not start:\n{(scratch / 'server.log').read_text()[-3000:]}"
            )
        time.sleep(0.5)
    print(f"mmflow server (ours) ready in {time.perf_counter() - started:.1f} s")
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def line(name: str, times: list[float], base: list[float] | None) -> str:
    best, median = min(times), statistics.median(times)
    ratio = f"{best / min(base):6.2f}x {median / statistics.median(base):6.2f}x" if base else ""
    return f"{name:<34}{best:8.2f}{median:8.2f}{len(times):6d}   {ratio}"


def phases(args, store: str, run) -> None:
    """Warm flow runs in this process against the same server: seconds per phase."""
    import flows.runtime
    from flows.backtest import backtest

    print("\nwarm flow runs in-process (seconds; the flow's own timings):")
    print(
        f"{'':7}" + "".join(f"{n:>14}" for n in ("wall", *PHASES, "rest")) + "   trades identical"
    )
    with flows.runtime.prefect_api():
        for i in range(1, args.runs + 2):  # the first is a warm-up of this process
            started = time.perf_counter()
            state = backtest(data=args.data, strategy=args.strategy, config=args.config,
                             store=store, return_state=True)  # fmt: skip
            seconds = time.perf_counter() - started
            summary = state.result(raise_on_failure=False)
            if isinstance(summary, BaseException):
                sys.exit(f"the flow failed: {summary}")
            timings = dict(summary.timings)
            rest = seconds - sum(timings.get(name, 0.0) for name in PHASES)
            identical, fills = same_trades(summary.store, summary.run_id, run)
            values = [seconds, *(timings.get(name, float("nan")) for name in PHASES), rest]
            print(f"run {i:<3}" + "".join(f"{v:14.2f}" for v in values)
                  + f"   {identical} ({fills:,} fills)")  # fmt: skip
    extra = sorted(set(timings) - set(PHASES))
    if extra:
        print("  other timings of the last run: "
              + ", ".join(f"{k} {timings[k]:.2f}" for k in extra))  # fmt: skip


def same_trades(store: str, run_id: str, run) -> tuple[bool, int]:
    """Whether the stored trades equal the in-process run's, and how many there are."""
    import pandas as pd

    from engine.results.store import read_trades
    from engine.types import TRADE_COLUMNS

    stored = read_trades(store, run_id)
    expected = pd.concat(
        [r.trades.assign(security=r.security) for r in run.results], ignore_index=True
    )[["security", *TRADE_COLUMNS]].sort_values(["security", "seq"], ignore_index=True)
    return stored.equals(expected), len(stored)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import engine  # noqa: F401 - sets NUMBA_CACHE_DIR: every command below shares the kernels
    from engine import settings
    from engine.params import load_config
    from engine.runner import run_backtest
    from flows.runtime import read_server_record

    common.compile_bytecode()
    scratch = Path(tempfile.mkdtemp(prefix="mmflow-bench-flow-"))
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    if not args.use_running:
        env["MMFLOW_CACHE_DIR"] = str(scratch / "cache")
    elif read_server_record() is None:
        sys.exit("--use-running: no `mmflow server` is recorded; start one first")
    config = ["--config", args.config] if args.config else []
    work = ["--strategy", args.strategy, "--data", args.data, *config]
    backtest = [str(MMFLOW), "backtest", *work, "--out", str(scratch / "out")]
    run = [str(MMFLOW), "run", *work, "--store", str(scratch / "runs.duckdb")]
    sequential = run_backtest(args.data, args.strategy, config=load_config(args.config))
    print(f"data {args.data}: {len(sequential.results)} securities, strategy {args.strategy}, "
          f"{sum(len(r.trades) for r in sequential.results):,} trades")  # fmt: skip
    server = None if args.use_running else start_server(args, scratch, env)
    try:
        rows = {"in-process  mmflow backtest": timed(backtest, env, args.runs)[1]}
        first, rows["warm  mmflow run (mmflow server)"] = timed(run, env, args.runs)
        rows["warm  first run after server start"] = [first]
        api = read_server_record(settings.server_file(env)).api_url
        rows["server, local cluster (as before)"] = timed(
            [*run, "--no-server"], {**env, "PREFECT_API_URL": api}, args.runs
        )[1]
        cold_env = {**env, "PREFECT_HOME": str(scratch / "cold-home")}  # not the server's DB
        first, cold = timed([*run, "--no-server"], cold_env, args.cold_runs)
        if cold:
            rows["cold  mmflow run --no-server"] = cold
        rows["cold  first run (new Prefect home)"] = [first]
        if args.fresh:
            fresh = {**env, "PREFECT_HOME": str(scratch / "fresh-home"),
                     "MMFLOW_CACHE_DIR": str(scratch / "fresh-cache")}  # fmt: skip
            fresh.pop("NUMBA_CACHE_DIR", None)
            rows["fresh machine  first mmflow run"] = [wall(run, fresh)]
        base = rows["in-process  mmflow backtest"]
        print(f"\n{'':34}{'best':>8}{'median':>8}{'runs':>6}   vs in-process (best, median)")
        for name, times in rows.items():
            print(line(name, times, None if times is base else base))
        warm = rows["warm  mmflow run (mmflow server)"]
        print(f"targets: warm <= {TARGET_WARM:.0f} s and <= {TARGET_RATIO}x in-process; "
              f"fresh <= {TARGET_FRESH:.0f} s. Warm best {min(warm):.2f} s "
              f"= {min(warm) / min(base):.2f}x")  # fmt: skip
        if not args.no_phases:
            if not args.use_running:  # this process finds our server too
                os.environ["MMFLOW_CACHE_DIR"] = env["MMFLOW_CACHE_DIR"]
            phases(args, str(scratch / "phases.duckdb"), sequential)
    finally:
        if server is not None:
            stop_server(server)
        if args.keep:
            print(f"\nscratch folder (server log, stores): {scratch}")
        else:  # stores, Prefect homes and a fresh kernel cache: hundreds of MB
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
