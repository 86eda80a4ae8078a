"""How long `mmflow query "SELECT * FROM trades"` takes over a 2M-row store, and its peak memory,
for the terminal (100 rows, then the count), --csv FILE, --parquet FILE, `--csv -` and --all.

Not collected by pytest (the name does not start with test_). Run it by hand:

    .venv/bin/python tests/cli/bench_query_export.py [ROWS]

Each command runs in its own process; peak RSS is that process's, from os.wait4.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from query_store import make_store  # noqa: E402

MMFLOW = Path(sys.executable).with_name("mmflow")
LIMIT_MB = 500


def measure(args: list[str], stdout) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB, and exit code of `mmflow *args`."""
    start = time.perf_counter()
    process = subprocess.Popen([str(MMFLOW), *args], stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"mmflow {' '.join(args)} failed: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024, process.returncode


def main(rows: int = 2_000_000) -> None:
    with tempfile.TemporaryDirectory(prefix="mmflow-bench-") as folder:
        folder = Path(folder)
        start = time.perf_counter()
        store = make_store(folder / "results.duckdb", trades=rows)
        print(
            f"store: {rows:,} trades, {store.stat().st_size / 2**20:.0f} MB, "
            f"built in {time.perf_counter() - start:.1f} s"
        )
        sql = "SELECT * FROM trades"
        cases = {
            "terminal (100 rows + count)": ([sql], None),
            "--csv FILE": ([sql, "--csv", str(folder / "t.csv")], None),
            "--parquet FILE": ([sql, "--parquet", str(folder / "t.parquet")], None),
            "--csv - > file": ([sql, "--csv", "-"], folder / "stdout.csv"),
            "--all > file": ([sql, "--all"], folder / "all.txt"),
        }
        worst = 0.0
        for name, (args, redirect) in cases.items():
            with open(redirect or os.devnull, "wb") as stdout:
                seconds, peak, _ = measure(["query", *args, "--store", str(store)], stdout)
            worst = max(worst, peak)
            print(f"{name:<28} {seconds:6.2f} s   peak RSS {peak:6.0f} MB")
        for output in ("t.csv", "t.parquet", "stdout.csv", "all.txt"):
            print(f"{output:<12} {(folder / output).stat().st_size / 2**20:7.1f} MB")
        print(
            f"worst peak RSS {worst:.0f} MB (limit {LIMIT_MB} MB):",
            "ok" if worst < LIMIT_MB else "OVER",
        )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
