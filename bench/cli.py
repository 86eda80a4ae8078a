"""CLI benchmark (not a test): each command's wall time as a user feels it, cold process.

    python bench/cli.py [--data ../shared/data/parquet] [--repeat 5]

Every command runs in a fresh process (subprocess wall time, best of --repeat after one warm-up
run, so numba's on-disk kernel cache is warm, and with mmflow's bytecode compiled beforehand) and
prints next to its target with the ratio time/target: `mmflow --help`; `mmflow backtest` over
every security of the data folder writing all CSVs; `mmflow query "SELECT 1"` and `mmflow
compare` on a small store written beforehand with `engine.results.store.write_run` (no Prefect).
For scale it also prints `python -c "import engine.sim.backtest"`, the in-process simulation of
every security, and the trade CSVs written in-process by `DataFrame.to_csv` and by
`engine.results.csv`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/engine.py is named like the `engine` package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))  # for bench.common
from bench import common  # noqa: E402

DEFAULT_DATA = REPO / ".." / "shared" / "data"
STRATEGY = "v2_price_follow_qty_cooldown"
MMFLOW = Path(sys.executable).parent / "mmflow"  # the console script a user runs
STORE_SECURITIES = ["SPINNEYS", "MODON"]  # a small store: two runs of two securities
TARGETS = {"help": 0.3, "backtest": 1.2, "query": 0.6}  # seconds (issue 13)


def wall(argv: list[str]) -> float:
    """Wall time of one fresh process; stops the benchmark with its stderr if it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr}")
    return elapsed


def best(fn, repeat: int) -> float:
    """Best wall time of `repeat` calls, after one untimed call."""
    return common.best(fn, repeat, warm_up=True)


def write_store(data: Path, configs: Path, store: Path) -> list[str]:
    """A store holding two small runs (two strategies); returns their run ids."""
    from engine.params import load_config
    from engine.results.store.writer import write_run
    from engine.runner import run_backtest

    run_ids = []
    for strategy in (STRATEGY, "v2_1_stop_loss"):
        config = load_config(configs / f"{strategy}_config.json")
        run = run_backtest(data, strategy, config=config, securities=STORE_SECURITIES)
        write_run(store, run)
        run_ids.append(run.run_id)
    return run_ids


def row(name: str, seconds: float, target: float | None = None) -> None:
    """One line: time, target and ratio time/target (> 1 misses the target)."""
    if target is None:
        print(f"{name:52} {seconds:7.3f}s")
    else:
        verdict = "ok" if seconds <= target else "MISSED"
        print(f"{name:52} {seconds:7.3f}s  ≤ {target:.1f}s  {seconds / target:5.2f}x  {verdict}")


def csv_in_process(data: Path, config_path: Path, repeat: int) -> tuple[float, float, int]:
    """Trade CSVs of every security written by `to_csv` and by engine.results.csv (seconds)."""
    from engine.params import load_config
    from engine.results.csv import pandas_csv, write_trades
    from engine.results.files import CSV_TRADE_COLUMNS
    from engine.runner import run_backtest

    run = run_backtest(data, STRATEGY, config=load_config(config_path))
    tables = [r.trades[CSV_TRADE_COLUMNS] for r in run.results]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        pandas_s = best(
            lambda: [pandas_csv(t, out / f"{i}.csv") for i, t in enumerate(tables)], repeat
        )
        fast_s = best(
            lambda: [write_trades(t, out / f"{i}.csv") for i, t in enumerate(tables)], repeat
        )
    return pandas_s, fast_s, sum(map(len, tables))


def simulate_in_process(data: Path, config_path: Path, repeat: int) -> float:
    """Every security's compiled simulation, data already loaded (seconds)."""
    from engine.data.source import open_data
    from engine.params import load_config, resolve_params
    from engine.sim import strategies
    from engine.sim.backtest import simulate

    source, config = open_data(data), load_config(config_path)
    params_type = strategies.get(STRATEGY).Params
    work = [(source.load(s)[0], resolve_params(params_type, s, config)) for s in source.securities]
    return best(lambda: [simulate(STRATEGY, events, params) for events, params in work], repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "parquet")
    parser.add_argument("--configs", type=Path, default=DEFAULT_DATA / "configs")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    config = args.configs / f"{STRATEGY}_config.json"
    n = args.repeat
    common.compile_bytecode()
    mmflow = [str(MMFLOW)]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = tmp / "bench.duckdb"
        run_ids = write_store(args.data, args.configs, store)
        backtest = ["backtest", "--strategy", STRATEGY, "--data", str(args.data)]
        backtest += ["--config", str(config)]
        shipped = [*mmflow, *backtest, "--out", str(tmp / "shipped")]

        print(f"fresh processes, best of {n} (after one warm-up run); data {args.data.resolve()}")
        row("mmflow --help", best(lambda: wall([*mmflow, "--help"]), n), TARGETS["help"])
        row(
            "mmflow backtest, every security, all CSVs",
            best(lambda: wall(shipped), n),
            TARGETS["backtest"],
        )
        query = [*mmflow, "query", "SELECT 1", "--store", str(store)]
        row('mmflow query "SELECT 1"', best(lambda: wall(query), n), TARGETS["query"])
        compare = [*mmflow, "compare", *run_ids, "--store", str(store)]
        row(
            f"mmflow compare (2 runs × {len(STORE_SECURITIES)} securities)",
            best(lambda: wall(compare), n),
        )

    print(f"\nfor scale ({STRATEGY}):")
    import_only = [sys.executable, "-c", "import engine.sim.backtest"]
    row('python -c "import engine.sim.backtest"', best(lambda: wall(import_only), n))
    row("in-process simulate(), every security", simulate_in_process(args.data, config, n))
    pandas_s, fast_s, trades = csv_in_process(args.data, config, n)
    row(f"in-process trade CSVs, {trades:,} trades: DataFrame.to_csv", pandas_s)
    row(f"{'engine.results.csv':>52}", fast_s)
    print(f"{'':52} {pandas_s / fast_s:7.1f}x faster")


if __name__ == "__main__":
    main()
