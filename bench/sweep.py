"""Benchmark: sweeps end to end against the kernel alone, over the Parquet folder (10 securities).

Grids:
  1000  v2_1_stop_loss: refill_interval_sec x stop_loss_threshold_pct x quote_size, 10 x 10 x 10
  40    v2_1_stop_loss: refill_interval_sec (10 values) x stop_loss_threshold_pct (4 values)

For each grid it prints, side by side: the single-core kernel time of the same cells (each
security's events loaded once, every cell simulated, nothing else), the sweep flow's wall time
(fresh store, `--trades auto`), the ratio, the marginal cost per cell (the difference between the
two grids per extra cell) against the kernel's per-cell time, the store's growth and the peak
memory (RSS of this process plus its children).

    python bench/sweep.py [--grid 1000 40] [--data ../shared/data/parquet] [--workers N]

Uses the server (and Dask cluster) that `mmflow server` recorded, or $PREFECT_API_URL, else a
temporary one. Targets (2 cores): 1000 cells <= 60 s wall with `mmflow server` running; marginal
cost per cell <= 2x its single-core kernel time; peak memory <= 2 GB; <= 50 MB of store.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = (REPO / ".." / "shared" / "data" / "parquet").resolve()
STRATEGY = "v2_1_stop_loss"
GRIDS = {
    "1000": {
        "refill_interval_sec": [5, 10, 15, 20, 30, 45, 60, 90, 120, 180],
        "stop_loss_threshold_pct": [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10],
        "quote_size": [
            10_000,
            20_000,
            30_000,
            40_000,
            50_000,
            60_000,
            80_000,
            100_000,
            150_000,
            200_000,
        ],  # fmt: skip
    },
    "40": {
        "refill_interval_sec": [5, 10, 15, 20, 30, 45, 60, 90, 120, 180],
        "stop_loss_threshold_pct": [1, 2, 3, 5],
    },
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", nargs="+", choices=list(GRIDS), default=["40", "1000"])
    p.add_argument("--data", default=str(DATA), help=f"Parquet folder (default {DATA})")
    p.add_argument("--workers", type=int, help="local Dask workers (default: one per core)")
    p.add_argument("--dask-address", help="an existing Dask scheduler")
    p.add_argument("--trades", default="auto", help="the sweep's --trades (default auto)")
    return p.parse_args()


def kernel_seconds(data: str, grid: dict) -> float:
    """Single-core kernel time of every cell: events loaded once per security, only simulate()."""
    from engine.data.source import open_data
    from engine.params import resolve_params
    from engine.sim import strategies
    from engine.sim.backtest import simulate
    from engine.sweep import expand_grid

    source = open_data(data)
    cells = expand_grid([STRATEGY], grid).cells
    params_cls = strategies.get(STRATEGY).Params
    total = 0.0
    for security in source.securities:
        events, _ = source.load(security)
        resolved = [resolve_params(params_cls, security, {}, c.params) for c in cells]
        simulate(STRATEGY, events, resolved[0])  # compiled and cached before timing
        started = time.perf_counter()
        for params in resolved:
            simulate(STRATEGY, events, params)
        total += time.perf_counter() - started
    return total


def sweep_seconds(args, grid: dict, store: Path) -> tuple[float, object]:
    from flows.runtime import prefect_api
    from flows.sweep import sweep

    with prefect_api():
        started = time.perf_counter()
        summary = sweep(data=args.data, strategies=[STRATEGY], grid=grid, store=str(store),
                        dask_address=args.dask_address, workers=args.workers, trades=args.trades)  # fmt: skip
        return time.perf_counter() - started, summary


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def main() -> None:
    args = parse_args()
    rows = {}
    for name in args.grid:
        grid = GRIDS[name]
        cells = math.prod(len(v) for v in grid.values())
        kernel = kernel_seconds(args.data, grid)
        store = Path(tempfile.mkdtemp(prefix="mmflow-bench-sweep-")) / "sweep.duckdb"
        wall, summary = sweep_seconds(args, grid, store)
        size = store.stat().st_size / 1e6
        rows[name] = (cells, kernel, wall)
        print(f"{cells:>5} cells x {len(summary.securities)} securities: sweep {wall:7.1f} s wall | "
              f"kernel alone {kernel:7.1f} s on 1 core ({kernel / cells * 1000:.1f} ms/cell) | "
              f"wall / kernel {wall / kernel:5.2f} | store {size:6.1f} MB | "
              f"{summary.computed} computed, {len(summary.failed)} failed", flush=True)  # fmt: skip
    if len(rows) == 2:
        (small, k_small, w_small), (big, k_big, w_big) = sorted(rows.values())
        marginal = (w_big - w_small) / (big - small)
        per_cell = (k_big - k_small) / (big - small)
        print(f"marginal cost per cell {marginal * 1000:.1f} ms wall vs {per_cell * 1000:.1f} ms "
              f"single-core kernel: ratio {marginal / per_cell:.2f} (target <= 2)")  # fmt: skip
    print(f"peak memory (this process + children) {peak_mb():.0f} MB (target <= 2048)")


if __name__ == "__main__":
    main()
