"""`mmflow run`: the main job. Runs the Prefect `backtest` flow (Dask fan-out, DuckDB store) on
the bundled sample by default; `--benchmark` also runs the same work in-process and compares."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from engine.params import parse_overrides
from mmflow.cli import heavy_imports
from mmflow.commands.checks import check_flow_arguments
from mmflow.commands.flowcall import call_flow
from mmflow.commands.options import (
    add_cluster,
    add_input,
    add_overrides,
    add_store,
    flow_inputs,
)

if TYPE_CHECKING:
    from engine.run import RunSummary


HELP = "run the backtest flow (Prefect + Dask) and store results in DuckDB"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow run`."""
    from engine.settings import DEFAULT_STRATEGY, default_data

    p.add_argument(
        "--strategy", default=DEFAULT_STRATEGY, help=f"strategy name (default {DEFAULT_STRATEGY})"
    )
    add_input(p, data_default=default_data())
    add_overrides(p)
    add_store(p, writes=True)
    add_cluster(p)
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="also run in-process sequentially; print both wall times, the speed-up and parity",
    )


def _flow_kwargs(args: argparse.Namespace) -> dict:
    overrides = parse_overrides(args.overrides) or None
    return dict(**flow_inputs(args), strategy=args.strategy, overrides=overrides)


def run_flow(kwargs: dict) -> tuple[RunSummary, float]:
    """Run the backtest flow against the configured (or a temporary) Prefect API."""
    with heavy_imports():
        from engine.run import RunSummary
        from flows.backtest import backtest

    return call_flow(backtest, kwargs, RunSummary, finish=_finish, what="backtest")


def _finish(summary: RunSummary) -> int:
    """Print the run and return the exit code (also used when the server is lost)."""
    _print_run(summary)
    return 0 if not summary.failed and not summary.spilled else 1


def _print_run(summary: RunSummary) -> None:
    """The per-security table and the portfolio line, from the flow's summary (no store read)."""
    import pandas as pd
    from rich.markup import escape

    from engine.types import KEY_FIGURES
    from mmflow.commands.backtest import summary_view
    from mmflow.console import console, portfolio_line, print_lines, spill_lines, table

    frame = pd.DataFrame(list(summary.securities), columns=[*KEY_FIGURES, "rows_kept"])
    frame["status"] = "ok"
    console.print(
        table(frame, title=f"run {summary.run_id} ({summary.strategy})", columns=summary_view())
    )
    for security, error in summary.failed.items():
        console.print(f"[red]FAILED[/red] {escape(security)}: {escape(error)}", highlight=False)
    console.print(
        portfolio_line(summary.portfolio, summary.securities_ok, summary.securities_failed),
        highlight=False,
    )
    if summary.report:
        console.print(f"report: {summary.report}", highlight=False)
    if summary.spilled:
        print_lines(spill_lines(summary.store, summary.spilled))
        return
    console.print(
        f"stored in {summary.store} as run {summary.run_id}  "
        f'(try: mmflow query "SELECT * FROM v_run_summary LIMIT 5")',
        highlight=False,
    )


def _benchmark(kwargs: dict, summary: RunSummary, flow_seconds: float) -> bool:
    """Run the same work in-process and compare every trade with what the flow stored."""
    import pandas as pd

    from engine.params import load_config
    from engine.results.store import read_trades
    from engine.runner import run_backtest
    from engine.types import TRADE_COLUMNS
    from mmflow.console import console

    started = time.perf_counter()
    sequential = run_backtest(
        kwargs["data"],
        kwargs["strategy"],
        config=load_config(kwargs["config"]),
        overrides=kwargs["overrides"],
        securities=kwargs["securities"],
        max_sheets=kwargs["max_sheets"],
    )
    seq_seconds = time.perf_counter() - started
    stored = read_trades(summary.store, summary.run_id)
    expected = pd.concat(
        [r.trades.assign(security=r.security) for r in sequential.results], ignore_index=True
    )
    columns = ["security", *TRADE_COLUMNS]
    stored = stored[columns].sort_values(["security", "seq"], ignore_index=True)
    expected = expected[columns].sort_values(["security", "seq"], ignore_index=True)
    identical = stored.equals(expected)
    console.print(
        f"benchmark: in-process sequential {seq_seconds:.2f} s, Prefect+Dask flow {flow_seconds:.2f} s, "
        f"speed-up {seq_seconds / flow_seconds:.2f}x; trades identical: {identical} "
        f"({len(stored):,} fills)",
        highlight=False,
    )
    return identical


def run(args: argparse.Namespace) -> int:
    """Run the flow, print the stored results; exit 1 when a security failed."""
    kwargs = _flow_kwargs(args)
    check_flow_arguments(args, [args.strategy], kwargs["overrides"])
    summary, seconds = run_flow(kwargs)
    code = _finish(summary)
    ok = _benchmark(kwargs, summary, seconds) if args.benchmark else True
    return code if ok else 1
