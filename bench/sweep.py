"""Benchmark: the sweep flow end to end — v2 and v2.1 × refill_interval_sec 5,10,30,60 over the
Parquet folder (8 cells × 10 securities), `fresh` into a new store in a temporary folder, on the
Dask task runner. Prints the wall time with and without start-up and cells per second; `--baseline`
also times the same cells in-process, sequentially, for the speed-up ratio.

    python bench/sweep.py [--data ../shared/data/parquet] [--workers N] [--batch-cells N]

Uses the server at $PREFECT_API_URL when set, else starts a temporary one (~20 s on 2 cores).
Target: under 30 s wall in all, start-up included.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# bench/ is sys.path[0] when run as a script; a bench module named like a package would shadow it.
sys.path.insert(0, str(REPO))
DATA = (REPO / ".." / "shared" / "data" / "parquet").resolve()
STRATEGIES = ["v2_price_follow_qty_cooldown", "v2_1_stop_loss"]
GRID = {"refill_interval_sec": [5, 10, 30, 60]}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DATA), help=f"Parquet folder (default {DATA})")
    p.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    p.add_argument("--dask-address", help="an existing Dask scheduler instead of a local cluster")
    p.add_argument("--batch-cells", type=int, help="cells per task (default: the flow's)")
    p.add_argument("--baseline", action="store_true", help="also time it in-process, sequentially")
    return p.parse_args()


def baseline(data: str) -> float:
    """Seconds for the same cells in one process: each security loaded once, all cells run."""
    from engine.data.source import open_data
    from engine.sweep import expand_grid, run_cells

    source = open_data(data)
    cells = expand_grid(STRATEGIES, GRID).cells
    started = time.perf_counter()
    for security in source.securities:
        run_cells(source, security, cells)
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    store = Path(tempfile.mkdtemp(prefix="mmflow-bench-sweep-")) / "sweep.duckdb"
    from engine.sweep import DEFAULT_BATCH_CELLS
    from flows.runtime import prefect_api
    from flows.sweep import sweep

    imported = time.perf_counter()
    server = "running server" if os.environ.get("PREFECT_API_URL") else "temporary server"
    runner = (
        "threads"
        if os.environ.get("MMFLOW_TASK_RUNNER") == "threads"
        else f"Dask {args.dask_address or 'local cluster, start-up and teardown included'}"
    )
    with prefect_api() as url:
        api_ready = time.perf_counter()
        state = sweep(
            data=args.data,
            strategies=STRATEGIES,
            grid=GRID,
            store=str(store),
            dask_address=args.dask_address,
            workers=args.workers,
            fresh=True,
            batch_cells=args.batch_cells or DEFAULT_BATCH_CELLS,
            return_state=True,
        )
        flow_done = time.perf_counter()
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise SystemExit(f"the sweep flow failed: {summary}")
    total = time.perf_counter() - STARTED
    flow_seconds = flow_done - api_ready
    cells, securities = summary.cells, len(summary.securities)
    print(
        f"sweep {summary.sweep_id}: {cells} cells x {securities} securities, "
        f"{len(summary.tasks)} tasks, {len(summary.failed)} failed; store {store}"
    )
    print(
        f"imports {imported - STARTED:.1f} s, Prefect API ({server}, {url}) "
        f"{api_ready - imported:.1f} s, flow {flow_seconds:.1f} s on {runner}"
    )
    print(
        f"TOTAL wall {total:.1f} s (target < 30 s); {cells / flow_seconds:.2f} cells/s and "
        f"{cells * securities / flow_seconds:.1f} security-cells/s in the flow, "
        f"{cells / total:.2f} cells/s overall"
    )
    if args.baseline:
        seconds = baseline(args.data)
        print(
            f"in-process sequential: {seconds:.1f} s ({cells / seconds:.2f} cells/s); "
            f"flow / sequential = {flow_seconds / seconds:.2f}"
        )


if __name__ == "__main__":  # the local Dask cluster spawns worker processes
    main()
