"""`mmflow sweep`: strategies × a parameter grid through the Prefect `sweep` flow (Dask), each cell
stored as its own run. Re-running the same sweep computes only the cells not yet stored (resume
after an interruption); `--fresh` recomputes all."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from engine.settings import DEFAULT_BATCH_CELLS, DEFAULT_STRATEGIES
from mmflow.cli import UserError
from mmflow.commands.checks import check_flow_arguments
from mmflow.commands.options import add_cluster, add_input, add_store

if TYPE_CHECKING:
    from engine.sweep import SweepSummary


def add_parser(subparsers) -> None:
    """Register `mmflow sweep`."""
    p = subparsers.add_parser(
        "sweep",
        help="run strategies x parameter grid (Prefect + Dask); resume skips stored cells",
        description=__doc__,
    )
    p.add_argument(
        "--strategies",
        nargs="+",
        default=list(DEFAULT_STRATEGIES),
        metavar="NAME",
        help=f"strategies to sweep (default {' '.join(DEFAULT_STRATEGIES)})",
    )
    p.add_argument(
        "--set",
        dest="grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values of a parameter for every security, e.g. refill_interval_sec=5,10,30,60 "
        "(repeatable; one value = fixed; a strategy without KEY is not swept over it)",
    )
    add_input(p)
    add_store(p, writes=True)
    add_cluster(p)
    p.add_argument(
        "--fresh", action="store_true", help="recompute every cell, even those already stored"
    )
    p.add_argument(
        "--batch-cells",
        type=int,
        default=DEFAULT_BATCH_CELLS,
        help=f"cells per task; each batch is stored when done (default {DEFAULT_BATCH_CELLS})",
    )
    p.set_defaults(handler=run)


def flow_kwargs(args: argparse.Namespace) -> dict:
    """The sweep flow's parameters, validated before Prefect starts (that takes ~20 s)."""
    from engine.sweep import expand_grid, parse_grid

    grid = parse_grid(args.grid)
    expand_grid(args.strategies, grid)
    if args.batch_cells < 1:
        raise UserError(f"--batch-cells must be at least 1, got {args.batch_cells}")
    check_flow_arguments(args, args.strategies, None)
    return dict(
        data=args.data,
        strategies=list(args.strategies),
        grid={k: list(v) for k, v in grid.items()},
        config=args.config,
        securities=args.securities,
        max_sheets=args.max_sheets,
        store=args.store,
        dask_address=args.dask_address,
        workers=args.workers,
        store_timeout=args.store_timeout,
        fresh=args.fresh,
        batch_cells=args.batch_cells,
    )


def run_flow(kwargs: dict) -> SweepSummary:
    """Run the sweep flow against the configured (or a temporary) Prefect API; its summary."""
    from engine.sweep import SweepSummary
    from flows.runtime import prefect_api
    from flows.sweep import sweep

    with prefect_api():
        state = sweep(**kwargs, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException):
        if state.is_failed() and isinstance(state.data, SweepSummary):
            return state.data
        raise UserError(f"the sweep flow failed: {outcome}") from outcome
    return outcome


def print_summary(summary: SweepSummary) -> None:
    """The notes, the final table of cells, failures and what to run next."""
    import pandas as pd
    from rich.markup import escape

    from engine.results.compare import RUN_FIGURES
    from mmflow.console import console, print_lines, spill_lines, table

    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)
    frame = pd.DataFrame(list(summary.table))
    if not frame.empty:
        frame["cell"] = frame["strategy"] + " " + frame["parameters"]
        title = (
            f"sweep {summary.sweep_id}: {summary.cells} cells x {len(summary.securities)} "
            f"securities ({summary.computed} computed, {summary.reused} already stored)"
        )
        columns = ["run_id", "cell", "status", *RUN_FIGURES, "this_run"]
        console.print(table(frame, title=title, columns=columns))
    for security, error in summary.failed.items():
        console.print(f"[red]FAILED[/red] {escape(security)}: {escape(error)}", highlight=False)
    if summary.report:
        console.print(f"report: {summary.report}", highlight=False)
    print_lines(spill_lines(summary.store, summary.spilled))
    console.print(
        f"stored in {summary.store}; compare with: mmflow compare --sweep {summary.sweep_id}",
        highlight=False,
    )


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print the table; exit 1 when a security failed."""
    summary = run_flow(flow_kwargs(args))
    print_summary(summary)
    return 1 if summary.failed or summary.spilled else 0
