"""`mmflow backtest`: the in-process sequential runner (no Prefect), for comparison and debugging."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.params import load_config, parse_overrides
from mmflow.cli import heavy_imports
from mmflow.commands.options import add_input, add_overrides


def summary_view() -> list[str]:
    """The per-security columns `backtest` and `run` print."""
    from engine.types import KEY_FIGURES

    return [*KEY_FIGURES, "rows_kept", "status"]


HELP = "run one strategy in-process, sequentially; write trade CSVs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow backtest`."""
    p.add_argument(
        "--strategy", required=True, help="strategy name, e.g. v2_price_follow_qty_cooldown"
    )
    add_input(p)
    add_overrides(p)
    p.add_argument(
        "--out", required=True, help="folder for <SECURITY>_trades.csv and backtest_summary.csv"
    )


def run(args: argparse.Namespace) -> int:
    """Run the backtest, write the files, print the summary; exit 1 if any security failed."""
    with heavy_imports():
        from rich.markup import escape

        from engine.data.source import open_data
        from engine.results.files import summary_frame, write_outputs
        from engine.runner import run_backtest
        from engine.types import Failure
        from mmflow.console import console, portfolio_line, progress, table

    config = load_config(args.config)
    overrides = parse_overrides(args.overrides)

    source = open_data(
        args.data, securities=args.securities, max_sheets=args.max_sheets, cache_dir=args.cache
    )
    with progress(len(source.securities), f"{args.strategy}") as bar:

        def on_done(security, outcome):
            mark = "failed" if isinstance(outcome, Failure) else "ok"
            bar.update(0, advance=1, last=f"{security} {mark}")

        result = run_backtest(
            source,
            args.strategy,
            config=config,
            config_path=args.config,
            overrides=overrides,
            on_done=on_done,
        )
    summary_path = write_outputs(result, args.out)
    frame = summary_frame(result.results, result.failures)
    console.print(table(frame, title=f"{args.strategy} on {source.path}", columns=summary_view()))
    console.print(
        portfolio_line(result.portfolio, len(result.results), len(result.failures)),
        highlight=False,
    )
    for failure in result.failures:
        console.print(
            f"[red]FAILED[/red] {escape(failure.security)}: {escape(failure.message)}",
            highlight=False,
        )
    fills = sum(r.fill_analytics is not None for r in result.results)
    console.print(
        f"wrote {len(result.results)} trade and {fills} fills files, {summary_path.name} and "
        f"analytics_summary.csv in {Path(args.out)} "
        f"({(result.finished_at - result.started_at).total_seconds():.2f} s)",
        highlight=False,
    )
    return 1 if result.failures else 0
