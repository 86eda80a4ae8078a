"""Benchmark: the `backtest` flow (Prefect + Dask, local 2-worker cluster, DuckDB store) against
the in-process sequential runner behind `mmflow backtest`, on the same data, in one process.

Prints the flow's wall time split into Prefect start (the temporary API server, when no server
is given), cluster start, compute, cluster stop, store write and the rest (Prefect's own
bookkeeping: flow run, prepare-data task, artifacts), next to the sequential time, their ratio,
and whether the stored trades equal the sequential ones.

    python bench/flow.py                       # all 10 securities of ../shared/data/parquet
    python bench/flow.py --runs 3 --strategy v1_baseline

With a running Prefect server (the production setup; target: < 10 s per flow run over the
10 securities), start it once and point the script at it:

    PREFECT_HOME=/tmp/benchhome PREFECT_SERVER_ANALYTICS_ENABLED=false \\
        prefect server start --host 127.0.0.1 --port 4300 &
    curl -s http://127.0.0.1:4300/api/health          # prints true when it is up (10-40 s)
    python bench/flow.py --api-url http://127.0.0.1:4300/api   # or set PREFECT_API_URL

Without --api-url / PREFECT_API_URL the script starts a temporary server and reports its
start-up separately. --dask-address tcp://host:port uses a running Dask scheduler instead of
starting a LocalCluster per flow run (which is most of a warm run's time).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PHASES = ("cluster_start", "compute", "cluster_stop", "store")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data", default=str(SHARED_DATA / "parquet"), help="Parquet folder or workbook"
    )
    p.add_argument("--strategy", default="v2_price_follow_qty_cooldown")
    p.add_argument("--config", help="per-security JSON (default: the strategy's shipped config)")
    p.add_argument("--workers", type=int, default=2, help="local cluster worker processes")
    p.add_argument("--runs", type=int, default=2, help="flow runs (the first pays first-use costs)")
    p.add_argument("--api-url", help="a running Prefect server's API (default $PREFECT_API_URL)")
    p.add_argument("--dask-address", help="a running Dask scheduler (default: a LocalCluster)")
    p.add_argument("--store", help="DuckDB file (default: a temporary one)")
    p.add_argument("--verbose", action="store_true", help="show Prefect's INFO logs")
    args = p.parse_args(argv)
    if args.config is None:
        shipped = SHARED_DATA / "configs" / f"{args.strategy}_config.json"
        args.config = str(shipped) if shipped.exists() else None
    return args


def sequential(args: argparse.Namespace):
    """`mmflow backtest` without the CSV files: every security in turn, in this process."""
    from engine.params import load_config
    from engine.runner import run_backtest

    started = time.perf_counter()
    run = run_backtest(args.data, args.strategy, config=load_config(args.config))
    return run, time.perf_counter() - started


def flow_run(args: argparse.Namespace, store: str) -> tuple[dict, float]:
    """One flow run: its summary (with the flow's per-phase timings) and wall seconds."""
    from flows.backtest import backtest

    started = time.perf_counter()
    state = backtest(
        data=args.data,
        strategy=args.strategy,
        config=args.config,
        store=store,
        dask_address=args.dask_address,
        workers=args.workers,
        return_state=True,
    )
    seconds = time.perf_counter() - started
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        if not isinstance(state.data, dict):
            raise SystemExit(f"the flow failed: {summary}")
        summary = state.data
    return summary, seconds


def same_trades(store: str, run_id: str, run) -> tuple[bool, int]:
    """Whether the stored trades equal the sequential run's, and how many there are."""
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
    if args.api_url:
        os.environ["PREFECT_API_URL"] = args.api_url
    if not args.verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))

    import flows.runtime  # sets Prefect's environment defaults; imports no Prefect itself

    started = time.perf_counter()
    import prefect_dask  # noqa: F401 - imported here so its ~4 s is not counted as cluster start

    import flows.backtest  # noqa: F401

    imports = time.perf_counter() - started
    run, seq_seconds = sequential(args)
    print(
        f"data {args.data}: {len(run.results) + len(run.failures)} securities, strategy {args.strategy}\n"
        f"import prefect + prefect-dask + flows   {imports:6.2f} s\n"
        f"sequential in-process (mmflow backtest) {seq_seconds:6.2f} s  "
        f"({sum(len(r.trades) for r in run.results):,} trades, {len(run.failures)} failed)"
    )
    temporary = not os.environ.get("PREFECT_API_URL")
    with ExitStack() as stack:
        store = args.store or str(
            Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.duckdb"
        )
        started = time.perf_counter()
        url = stack.enter_context(flows.runtime.prefect_api())
        api_seconds = time.perf_counter() - started
        where = "temporary server started" if temporary else "running server"
        print(f"Prefect API {url} ({where})  {api_seconds:6.2f} s")
        cluster = args.dask_address or f"a new LocalCluster of {args.workers} worker processes"
        print(f"flow runs on {cluster} (seconds):")
        columns = ("wall", *PHASES, "prefect+rest", "flow/seq")
        print(f"{'':7}" + "".join(f"{name:>14}" for name in columns) + "   trades identical")
        for i in range(1, args.runs + 1):
            summary, seconds = flow_run(args, store)
            timings = dict(summary.timings)
            rest = seconds - sum(timings.get(name, 0.0) for name in PHASES)
            identical, fills = same_trades(summary.store, summary.run_id, run)
            values = [seconds, *(timings.get(name, float("nan")) for name in PHASES), rest]
            print(
                f"run {i:<3}"
                + "".join(f"{value:14.2f}" for value in values)
                + f"{seconds / seq_seconds:13.2f}x   {identical} ({fills:,} fills)"
                + (f"  FAILED: {summary.failed}" if summary.failed else "")
            )
        started = time.perf_counter()
    if temporary:
        print(f"temporary server stopped in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
