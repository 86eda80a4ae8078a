"""Terminal output shared by the commands: rich tables, progress and number formatting."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from engine.results.format import format_value

# Wide enough for the summary tables when output goes to a file or CI log (rich assumes 80).
console = Console(stderr=False, width=None if Console().is_terminal else 160)
err_console = Console(stderr=True)
MIN_FOLDED_WIDTH = 4  # narrower than this, a table prints as records (see `table`)


def fmt(value) -> str:
    """A number for people: thousands separators, 2 decimals for floats, blanks for missing."""
    return format_value(value)


def portfolio_line(portfolio, securities_ok: int, securities_failed: int) -> str:
    """One line of portfolio figures (an `engine.run.Portfolio`), each with its basis."""
    basis = f"daily, over {portfolio.days} days"
    if portfolio.days < 20:
        basis += "; fewer than 20 days: indicative only"
    fees = getattr(portfolio, "fees", 0.0)
    net = ""  # ANALYTICS.md A11: net beside gross when fees were charged (else they are equal)
    if fees == fees and fees != 0:
        net = f"fees={fmt(fees)}  net P&L={fmt(portfolio.net_pnl)} (realized - fees)  "
    return (
        f"portfolio ({securities_ok} ok, {securities_failed} failed): "
        f"trades={fmt(portfolio.trades)}  realized P&L={fmt(portfolio.realized_pnl)}  {net}"
        f"unrealized P&L={fmt(portfolio.unrealized_pnl)}  total P&L={fmt(portfolio.total_pnl)}  "
        f"Sharpe={fmt(portfolio.sharpe_ratio)} ({basis})  "
        f"max drawdown={fmt(portfolio.max_drawdown)} ({fmt(portfolio.max_drawdown_pct)}% of the "
        f"peak; on the combined daily realized curve over {portfolio.days} days, so intraday dips "
        "a security's per-fill drawdown shows can net out here; SPEC §5.3)"
    )


def is_id(name) -> bool:
    """An identifier column (`run_id`, `sweep_id`, `flow_run_id`, `id`): never cut in a table."""
    name = str(name).lower()
    return name == "id" or name.endswith("_id")


def cell(value) -> str:
    """A table cell: `fmt`, with every kind of missing value (None, NaN, NA, NaT) blank."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    return fmt(value.item() if hasattr(value, "item") else value)


def spill_lines(store: str, spilled) -> list[str]:
    """What to do about runs kept as spills because the store stayed locked."""
    if not spilled:
        return []
    return [
        f"NOT STORED YET: {store} stayed locked by another process; the results are kept in "
        f"{', '.join(spilled)}",
        f"close the other DuckDB session, then: mmflow store load-spill --store {store}  "
        "(the next mmflow run or sweep loads them too)",
    ]


def table(
    frame: pd.DataFrame,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    *,
    first_row: int = 1,
) -> Table:
    """A rich table of `frame` (optionally a subset of columns), numbers right-aligned, values
    shown as written (no markup). Id columns (`is_id`) are never wrapped or cut: other columns
    fold onto more lines instead, and where even that cannot fit (other columns narrower than
    MIN_FOLDED_WIDTH) the rows print as records, one field per line, numbered from `first_row`."""
    view = frame if columns is None else frame[list(columns)]
    names = [str(name) for name in view.columns]
    rows = [[cell(v) for v in row] for row in view.itertuples(index=False, name=None)]
    out = _IdSafeTable(names, rows, first_row, title=title, header_style="bold")
    for position, name in enumerate(names):
        dtype = view.dtypes.iloc[position]
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        justify = "right" if numeric else "left"
        if is_id(name):
            widest = max([len(name), *(len(row[position]) for row in rows)])
            out.add_column(Text(name), justify=justify, no_wrap=True, min_width=widest)
        else:  # min_width 1: a squeezed column folds, it never vanishes
            out.add_column(Text(name), justify=justify, overflow="fold", min_width=1)
    for row in rows:
        out.add_row(*(Text(value) for value in row))
    return out


def records(names: Sequence[str], rows: Iterable[Sequence[str]], first: int = 1) -> Iterator[str]:
    """Rows as records, one `name | value` line per field (like psql's expanded display)."""
    width = max((len(name) for name in names), default=0)
    for number, row in enumerate(rows, start=first):
        yield f"-[ RECORD {number:,} ]" + "-" * 20
        for name, value in zip(names, row, strict=True):
            yield f"{name:<{width}} | {value}"


def needed_width(names: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Terminal columns a table needs to show every id whole and fold nothing else narrower
    than MIN_FOLDED_WIDTH (3 per column for padding and border, 1 for the last border)."""
    need = 1
    for position, name in enumerate(names):
        widest = max([len(name), *(len(row[position]) for row in rows)])
        need += 3 + (widest if is_id(name) else min(widest, MIN_FOLDED_WIDTH))
    return need


class _IdSafeTable(Table):
    """A Table that prints its rows as records when its ids cannot be shown whole."""

    def __init__(self, names: list[str], rows: list[list[str]], first_row: int, **kwargs):
        super().__init__(**kwargs)
        self._names, self._rows, self._first_row = names, rows, first_row

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if needed_width(self._names, self._rows) <= options.max_width:
            yield from super().__rich_console__(console, options)
            return
        if self.title:
            yield Text(str(self.title), style="bold")
        yield Text(f"(too wide for {options.max_width} columns: one field per line)")
        for line in records(self._names, self._rows, self._first_row):
            yield Text(line)


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


@contextmanager
def progress_from_logs(description: str) -> Iterator[None]:
    """A progress bar with ETA on a terminal, driven by the flow's `[k/n]` log records (their
    `mmflow_progress` extra); Prefect's own lines for those records are held back meanwhile."""
    if not err_console.is_terminal:
        yield
        return
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                   console=err_console, transient=True)  # fmt: skip
    task = bar.add_task(description, total=None)

    class Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            step = getattr(record, "mmflow_progress", None)
            if step:
                bar.update(task, completed=step[0], total=step[1])

    def quiet(record: logging.LogRecord) -> bool:
        return not hasattr(record, "mmflow_progress")

    logger = logging.getLogger("prefect.flow_runs")
    handler, consoles = Steps(), _console_handlers(logger)
    logger.addHandler(handler)
    for console_handler in consoles:
        console_handler.addFilter(quiet)
    try:
        with bar:
            yield
    finally:
        logger.removeHandler(handler)
        for console_handler in consoles:
            console_handler.removeFilter(quiet)


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The stream handlers a record of `logger` reaches (Prefect's console handler)."""
    found, current = [], logger
    while current is not None:
        found += [h for h in current.handlers if isinstance(h, logging.StreamHandler)]
        current = current.parent if current.propagate else None
    return found


def print_lines(lines: Iterable[str]) -> None:
    """Print plain lines to stdout."""
    for line in lines:
        console.print(line, highlight=False)
