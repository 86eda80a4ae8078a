"""`mmflow report`: one self-contained HTML report (opens offline) of a stored run or sweep.

A run is read back whole from the store and rendered like a fresh one; a sweep report shows
every stored cell of the sweep.

mmflow report 20261128T081500-3f9a2c        # a run, to <store dir>/reports/run-<id>.html
mmflow report --latest --out latest.html     # the newest run
mmflow report --sweep 20261128T090000-77aa01  # a sweep: metrics by parameter, heatmap
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mmflow.cli import UserError
from mmflow.commands.options import add_store

HELP = "write a self-contained HTML report of a stored run or sweep"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow report`."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run to report on")
    which.add_argument("--latest", action="store_true", help="report on the newest stored run")
    which.add_argument("--sweep", metavar="SWEEP_ID", help="report on every cell of a sweep")
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE.html",
        help="where to write the report (default <store dir>/reports/run-<id>.html or sweep-<id>.html)",
    )
    add_store(p)


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from engine.results.report import default_report_path, write_run_report, write_sweep_report
    from engine.results.store import latest_run_id, read_run
    from engine.settings import store_path
    from mmflow.console import console

    store = store_path(args.store)
    if args.out is not None and args.out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {args.out}: the report is HTML; give a file name ending in .html")
    started = time.perf_counter()
    if args.sweep:
        path, what = write_sweep_report(store, args.sweep, args.out), f"sweep {args.sweep}"
    else:
        run_id = args.run_id or latest_run_id(store)
        if run_id is None:
            raise UserError(f"the store {store} has no runs yet; run `mmflow run` first")
        out = args.out or default_report_path(store, f"run-{run_id}")
        path, what = write_run_report(read_run(store, run_id), out), f"run {run_id}"
    seconds = time.perf_counter() - started
    size = path.stat().st_size / 1e6
    console.print(
        f"wrote the report of {what} to {path} ({size:.1f} MB, {seconds:.1f} s); "
        f"open {path.resolve().as_uri()}",
        highlight=False,
        soft_wrap=True,
    )
    return 0
