"""Terminal output shared by the commands: rich tables, progress and number formatting."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.results.compare import format_value

# Wide enough for the summary tables when output goes to a file or CI log (rich assumes 80).
console = Console(stderr=False, width=None if Console().is_terminal else 160)
err_console = Console(stderr=True)


def fmt(value) -> str:
    """A number for people: thousands separators, 2 decimals for floats, blanks for missing."""
    return format_value(value)


def portfolio_line(portfolio, securities_ok: int, securities_failed: int) -> str:
    """One line of portfolio figures (an `engine.run.Portfolio`), each with its basis."""
    basis = f"daily, over {portfolio.days} days"
    if portfolio.days < 20:
        basis += "; fewer than 20 days: indicative only"
    return (
        f"portfolio ({securities_ok} ok, {securities_failed} failed): "
        f"trades={fmt(portfolio.trades)}  realized P&L={fmt(portfolio.realized_pnl)}  "
        f"unrealized P&L={fmt(portfolio.unrealized_pnl)}  total P&L={fmt(portfolio.total_pnl)}  "
        f"Sharpe={fmt(portfolio.sharpe_ratio)} ({basis})  "
        f"max drawdown={fmt(portfolio.max_drawdown)} ({fmt(portfolio.max_drawdown_pct)}% of the "
        "peak realized P&L, SPEC §5.3)"
    )


def table(
    frame: pd.DataFrame, title: str | None = None, columns: Sequence[str] | None = None
) -> Table:
    """A rich table of `frame` (optionally a subset of columns), numbers right-aligned."""
    columns = list(columns or frame.columns)
    out = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) if col in frame else False
        out.add_column(col, justify="right" if numeric else "left")
    for row in frame[columns].itertuples(index=False):
        out.add_row(*(fmt(v.item() if hasattr(v, "item") else v) for v in row))
    return out


def progress(total: int, description: str) -> Progress:
    """A progress bar counting securities (on stderr, so stdout stays parseable)."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err_console,
        transient=False,
    )
    bar.add_task(description, total=total, last="")
    return bar


def print_lines(lines: Iterable[str]) -> None:
    """Print plain lines to stdout."""
    for line in lines:
        console.print(line, highlight=False)
