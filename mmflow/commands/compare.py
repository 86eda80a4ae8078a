"""`mmflow compare`: stored runs side by side — portfolio figures per strategy and parameter set,
and total P&L (realized + unrealized) per security × run. Give run ids, `--sweep ID`, or `--latest` (the default: the
newest sweep). Reads the store directly (no Prefect start-up); `--flow` runs the Prefect `compare`
flow instead, which also publishes the tables as artifacts in the UI."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmflow.commands.options import add_store

if TYPE_CHECKING:
    from engine.results.compare import Comparison


HELP = "compare stored runs or a sweep (tables, CSV)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow compare`."""
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs to compare")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sweep", dest="sweep_id", metavar="ID", help="every cell of a sweep")
    which.add_argument("--latest", action="store_true", help="the newest sweep (the default)")
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="write the summary to FILE and the per-security P&L to FILE_by_security.csv",
    )
    add_store(p)
    p.add_argument(
        "--flow",
        action="store_true",
        help="run as the Prefect `compare` flow and publish artifacts (starts a temporary "
        "server unless PREFECT_API_URL is set)",
    )


def print_comparison(comparison: Comparison) -> None:
    """The summary table and the per-security pivot."""
    from engine.results.compare import RUN_FIGURES
    from mmflow.console import console, table

    columns = ["label", "status", *RUN_FIGURES, "run_id"]
    console.print(table(comparison.summary, title=comparison.title, columns=columns))
    pivot = comparison.by_security.reset_index(names="security")
    legend = {label: f"[{i + 1}]" for i, label in enumerate(comparison.by_security.columns)}
    console.print(
        table(
            pivot.rename(columns=legend),
            title="total P&L per security (realized + unrealized; columns: see legend)",
        )
    )
    for label, short in legend.items():
        console.print(f"{short} {label}", highlight=False, markup=False)  # labels may hold [..]


def run(args: argparse.Namespace) -> int:
    """Compare, print, and write CSV when asked."""
    from engine.results.compare import compare_runs, write_csv
    from engine.settings import store_path
    from mmflow.console import console

    if args.run_ids and (args.sweep_id or args.latest):
        from mmflow.cli import UserError

        raise UserError("give run ids, --sweep ID or --latest, not several of them")
    store = store_path(args.store)
    if args.flow:
        from flows.compare import compare
        from flows.runtime import prefect_api

        with prefect_api():
            compare(
                run_ids=args.run_ids or None,
                sweep_id=args.sweep_id,
                latest=args.latest,
                store=store,
                csv=args.csv,
            )
    comparison = compare_runs(
        store, run_ids=args.run_ids or None, sweep_id=args.sweep_id, latest=args.latest
    )
    print_comparison(comparison)
    if args.csv and not args.flow:
        paths = write_csv(comparison, args.csv)
        console.print(f"wrote {', '.join(str(p) for p in paths)}", highlight=False)
    return 0
