"""`mmflow sweep`: strategies × a parameter grid through the Prefect `sweep` flow (Dask), each cell
stored as its own run. Re-running the same sweep computes only the cells not yet stored (resume
after an interruption); `--fresh` recomputes all."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from engine.settings import DEFAULT_STRATEGIES
from mmflow.cli import UserError, heavy_imports
from mmflow.commands.checks import check_flow_arguments
from mmflow.commands.flowcall import call_flow
from mmflow.commands.options import add_cluster, add_input, add_store, flow_inputs

if TYPE_CHECKING:
    from engine.sweep import SweepSummary

# Leaderboard orders (higher is better for each) and the figures it shows.
RANKINGS = ("total_pnl", "realized_pnl", "sharpe_ratio", "calmar_ratio", "profit_factor",
            "win_rate", "max_drawdown")  # fmt: skip
SHOWN = ("trades", "total_pnl", "sharpe_ratio", "calmar_ratio", "max_drawdown", "win_rate",
         "profit_factor")  # fmt: skip


HELP = "run strategies x parameter grid (Prefect + Dask); resume skips stored cells"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow sweep`."""
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
        help="cells per task; each batch is stored when done (default: from the grid and the "
        "workers, at most 250)",
    )
    p.add_argument(
        "--trades",
        choices=("auto", "none", "best", "all"),
        default="auto",
        help="which cells store their trades: auto (all up to 16 cells, else best), best (the "
        "3 best by total P&L), none, all (default auto); `mmflow rerun RUN_ID` gets any later",
    )
    p.add_argument(
        "--top", type=int, default=20, help="cells on the leaderboard printed (default 20)"
    )
    p.add_argument(
        "--rank-by",
        choices=RANKINGS,
        default="total_pnl",
        help="the leaderboard's order (default total_pnl; max_drawdown ranks the shallowest first)",
    )
    p.add_argument("--csv", metavar="FILE", help="write every cell's row to FILE")


def flow_kwargs(args: argparse.Namespace) -> dict:
    """The sweep flow's parameters, validated before Prefect starts (that takes ~20 s)."""
    from engine.sweep import expand_grid, parse_grid

    grid = parse_grid(args.grid)
    expand_grid(args.strategies, grid)
    if args.batch_cells is not None and args.batch_cells < 1:
        raise UserError(f"--batch-cells must be at least 1, got {args.batch_cells}")
    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    check_flow_arguments(args, args.strategies, None)
    grid_values = {k: list(v) for k, v in grid.items()}
    return dict(**flow_inputs(args), strategies=list(args.strategies), grid=grid_values,
                fresh=args.fresh, batch_cells=args.batch_cells, trades=args.trades)  # fmt: skip


def run_flow(kwargs: dict, finish=None) -> SweepSummary:
    """Run the sweep flow against the configured (or a temporary) Prefect API; its summary."""
    with heavy_imports():
        from engine.sweep import SweepSummary
        from flows.sweep import sweep
        from mmflow.console import progress_from_logs

    with progress_from_logs("sweep"):
        summary, _ = call_flow(sweep, kwargs, SweepSummary, finish=finish, what="sweep")
    return summary


def leaderboard(summary: SweepSummary, rank_by: str, top: int):
    """The best `top` cells by `rank_by`, one line each: rank, run id (whole), cell, figures."""
    import pandas as pd

    frame = pd.DataFrame(list(summary.table))
    if frame.empty:
        return frame
    frame["cell"] = frame["strategy"] + " " + frame["parameters"]
    ascending = False  # every ranking is "higher is better"; a drawdown is a negative number
    frame = frame.sort_values(rank_by, ascending=ascending, na_position="last", kind="stable")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.head(top)


def print_summary(summary: SweepSummary, rank_by: str = "total_pnl", top: int = 20) -> None:
    """Notes, the leaderboard, failures and what to run next."""
    from rich.markup import escape

    from mmflow.console import console, print_lines, spill_lines, table

    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)
    board = leaderboard(summary, rank_by, top)
    if not board.empty:
        title = (
            f"sweep {summary.sweep_id}: top {len(board)} of {summary.cells} cells by {rank_by} "
            f"({len(summary.securities)} securities; {summary.computed} computed, "
            f"{summary.reused} already stored)"
        )
        columns = ["rank", "run_id", "cell", *SHOWN, "this_run"]
        console.print(table(board, title=title, columns=columns))
    for security, error in summary.failed.items():
        console.print(f"[red]FAILED[/red] {escape(security)}: {escape(error)}", highlight=False)
    if summary.report:
        console.print(f"report: {summary.report}", highlight=False)
    print_lines(spill_lines(summary.store, summary.spilled))
    console.print(
        f"stored in {summary.store}; every cell: mmflow compare --sweep {summary.sweep_id} "
        "(or --csv FILE); a cell's trades: mmflow rerun RUN_ID",
        highlight=False,
    )


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print the leaderboard; exit 1 when a security failed."""

    def finish(summary: SweepSummary) -> int:
        print_summary(summary, args.rank_by, args.top)
        if args.csv:
            import pandas as pd

            pd.DataFrame(list(summary.table)).to_csv(args.csv, index=False, lineterminator="\n")
        return 1 if summary.failed or summary.spilled else 0

    return finish(run_flow(flow_kwargs(args), finish))
