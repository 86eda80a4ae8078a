"""Engine benchmark (not a test): compiled kernels against the same code as plain Python.

    python bench/engine.py [--data ../shared/data/parquet] [--repeat 5]

For each strategy over every security of the data folder it prints the warm kernel throughput
(rows per second, every row processed: the output grows as in `simulate`), the fill-quality
analytics pass alone (ANALYTICS.md: market mids, horizons, per-security figures) and its share of
the whole in-process run (Parquet read + SPEC §1.3 normalisation + kernel + result tables), the
`mmflow backtest` equivalent (the same plus CSV files), the cold first call in a fresh process
(on-disk numba cache loaded, and compiled from nothing), and the ratio against
NUMBA_DISABLE_JIT=1 on one security.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file is named like the `engine` package: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))  # for bench.common
from bench.common import best  # noqa: E402

DEFAULT_DATA = REPO / ".." / "shared" / "data" / "parquet"

# Run in a child process: time one security through the engine and print JSON.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.data.source import open_data
t1 = time.perf_counter()
source = open_data(sys.argv[1], securities=[sys.argv[2]])
events, _ = source.load(sys.argv[2])
t2 = time.perf_counter()
sim = simulate(sys.argv[3], events, strategies.get(sys.argv[3]).Params())
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first_call": t3 - t2, "rows": len(events),
                  "fills": len(sim.fills)}))
"""


def child(data: Path, security: str, strategy: str, env: dict | None = None) -> dict:
    """Run CHILD in a fresh interpreter and return its timings."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), security, strategy],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--python-security", default="SPINNEYS", help="security for the plain-Python ratio"
    )
    args = parser.parse_args()

    from engine.data.source import open_data
    from engine.results.analytics import analyse
    from engine.results.files import write_outputs
    from engine.results.metrics import daily_from_fills
    from engine.runner import run_backtest
    from engine.sim import strategies
    from engine.sim.backtest import simulate
    from engine.types import new_state

    def dates(sim, events):
        """The daily table's dates of a simulation (what summarise hands to analyse)."""
        realized = sim.fills.realized_pnl.astype("float64")
        return daily_from_fills(events.timestamp_ns[sim.fills.row], realized)["date"].to_numpy()

    source = open_data(args.data)
    loaded = {s: source.load(s)[0] for s in source.securities}
    rows = sum(len(e) for e in loaded.values())
    print(f"{len(loaded)} securities, {rows:,} rows from {args.data.resolve()}")
    load_s = best(lambda: [source.load(s) for s in source.securities], args.repeat)
    print(
        f"Parquet read + normalisation, all securities: {load_s:.3f} s ({rows / load_s / 1e6:.1f} M rows/s)"
    )
    print()
    header = (
        f"{'strategy':30} {'kernel':>9} {'M rows/s':>9} {'analytics':>10} {'in-process':>11} "
        f"{'share':>6} {'backtest':>9} {'fills':>9}"
    )
    print(header)
    print("-" * len(header))
    for name in strategies.available():
        strategy = strategies.get(name)
        params = strategy.Params().kernel()
        prepared = []
        for events in loaded.values():  # the kernel alone, outputs preallocated
            volume = events.volume.copy()
            volume[volume != volume] = 0.0
            prepared.append((events.timestamp_ns, events.kind, events.price, volume))
        simulate(name, next(iter(loaded.values())), strategy.Params())  # compile / load the cache

        def kernel_only(strategy=strategy, prepared=prepared, params=params):
            import numpy as np

            from engine.types import FILL_DTYPE

            for ts, kind, price, volume in prepared:
                state, quotes = new_state()
                capacity = 1024 + int(np.count_nonzero(kind == 2)) // 2  # as engine.sim.backtest
                out = np.empty(capacity, dtype=FILL_DTYPE).view(np.recarray)
                row = strategy.run_nb(ts, kind, price, volume, params, state, quotes, out, 0)
                while row < len(kind):  # every row: resume with a larger output, as simulate
                    out = np.resize(out, 2 * len(out)).view(np.recarray)
                    row = strategy.run_nb(ts, kind, price, volume, params, state, quotes, out, row)

        kernel_s = best(kernel_only, args.repeat)
        sims = {s: simulate(name, e, strategy.Params()) for s, e in loaded.items()}
        fills = sum(len(sim.fills) for sim in sims.values())
        analytics_s = best(
            lambda sims=sims, strategy=strategy: [
                analyse(s, loaded[s], sim, strategy.Params(), 0.0, dates(sim, loaded[s]))
                for s, sim in sims.items()
            ],
            args.repeat,
        )
        in_process_s = best(lambda name=name: run_backtest(args.data, name), args.repeat)
        with tempfile.TemporaryDirectory() as tmp:
            backtest_s = best(
                lambda name=name, tmp=tmp: write_outputs(run_backtest(args.data, name), tmp), 2
            )
        print(
            f"{name:30} {kernel_s:8.3f}s {rows / kernel_s / 1e6:9.1f} {analytics_s:9.3f}s "
            f"{in_process_s:10.3f}s {analytics_s / in_process_s:6.0%} {backtest_s:8.3f}s "
            f"{fills:9,}"
        )
    print()
    sec = args.python_security
    print(f"fresh process, first call ({sec}):")
    for name in strategies.available():
        warm_cache = child(args.data, sec, name)
        with tempfile.TemporaryDirectory() as cache_dir:
            cold = child(args.data, sec, name, {"NUMBA_CACHE_DIR": cache_dir})
        plain = child(args.data, sec, name, {"NUMBA_DISABLE_JIT": "1"})
        compiled_warm = best(
            lambda name=name: simulate(name, loaded[sec], strategies.get(name).Params()),
            args.repeat,
        )
        print(
            f"  {name:30} import {warm_cache['import']:.2f}s, first call {warm_cache['first_call']:.2f}s "
            f"(on-disk cache) / {cold['first_call']:.2f}s (compiling); plain Python {plain['first_call']:.2f}s "
            f"vs compiled {compiled_warm * 1000:.1f} ms: {plain['first_call'] / compiled_warm:,.0f}x"
        )


if __name__ == "__main__":
    main()
