"""Reports people would rather look at than read: one self-contained HTML file per run or sweep.

A run's report and headline are rendered from the `Run` in memory (nothing is read back after the
store is written); a sweep's report reads the store, where the sweep's cells accumulate across
runs. Each page embeds plotly.js once, so it opens offline, from a mail attachment or a CI
artifact. Curves over trades are cut to the last value per minute, then to at most `MAX_POINTS`
points that keep each bucket's extremes, so a full-history run stays a few MB. Never imports
prefect: the flows publish `headline` as a markdown artifact and link the file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from engine.results.report import fill_quality, frames, run_page, sweep
from engine.results.report.figures import (
    MAX_POINTS,
    decimate,
    heatmap,
    metrics_figure,
    portfolio_figure,
    rangebreaks,
    security_figure,
)
from engine.results.report.markup import anchor, days_basis, esc
from engine.results.report.page import write_html
from engine.run import Run

__all__ = [
    "MAX_POINTS",
    "decimate",
    "default_report_path",
    "headline",
    "write_run_report",
    "write_sweep_report",
]


def default_report_path(store: str | Path, name: str) -> Path:
    """`<store dir>/reports/<name>.html`, e.g. name `run-<run_id>` or `sweep-<sweep_id>`."""
    return Path(store).resolve().parent / "reports" / f"{name}.html"


def write_run_report(run: Run, out: Path) -> Path:
    """Write the HTML report of a run from memory (lineage, KPIs, summary table, curves,
    failures) to `out`; return `out`."""
    out = Path(out)
    summary = frames.summary_records(run)
    daily, series = frames.daily_frame(run), frames.series_frame(run)
    body = [
        run_page.run_header(run),
        run_page.kpis(run),
        run_page.failures_section(frames.failure_records(run)),
        run_page.lineage_section(run, summary),
        run_page.summary_section(run, summary),
        fill_quality.section(run),
    ]
    figures = []
    quality = fill_quality.figure(run, daily)
    if quality is not None:
        note = "ANALYTICS.md A6-A10; hover for values; click a legend entry to hide it"
        figures.append(("fill-quality", "Fill quality", note, quality))
    if not daily.empty:
        note = (
            f"securities summed by date ({esc(days_basis(run.portfolio.days))}); "
            "hover a curve for values, drag to zoom"
        )
        figures.append(("portfolio", "Portfolio", note, portfolio_figure(daily)))
    breaks = rangebreaks(series)
    series_of, daily_of = _by_security(series), _by_security(daily)
    for row in summary:
        security = row["security"]
        figure = security_figure(series_of(security), daily_of(security), breaks)
        figures.append((anchor(security), security, run_page.security_note(row), figure))
    footer = (
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from run {esc(run.run_id)} "
        f"(mmflow {esc(run.code_version)})"
    )
    write_html(out, f"Run {run.run_id} · {run.strategy}", body, figures, footer)
    return out


def _by_security(frame: pd.DataFrame):
    """`security -> its rows of frame` (no rows for a security without any), split in one pass."""
    groups = dict(list(frame.groupby("security", sort=False))) if not frame.empty else {}
    return lambda security: groups.get(security, frame.iloc[0:0])


def write_sweep_report(store: str | Path, sweep_id: str, out: Path | None = None) -> Path:
    """Write the HTML report of one sweep (metrics against each parameter, heatmap) from the
    store; return its path."""
    cells, securities = sweep.sweep_tables(store, sweep_id)
    out = Path(out) if out is not None else default_report_path(store, f"sweep-{sweep_id}")
    parameters = sorted({key for overrides in cells["overrides"] for key in overrides})
    body = [sweep.sweep_header(sweep_id, cells, parameters), sweep.cells_section(cells)]
    figures = [
        (
            "sweep-metrics",
            "Total P&L, Sharpe and drawdown by parameter",
            f"portfolio figures of each cell ({esc(sweep.cells_basis(cells))}); "
            "one line per strategy",
            metrics_figure(cells, parameters),
        ),
        (
            "sweep-heatmap",
            "Total P&L by security and parameter set",
            "realized + unrealized; green gains, red losses; blank where the security failed "
            "or was not run",
            heatmap(cells, securities),
        ),
    ]
    footer = f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from {esc(Path(store).resolve())}"
    write_html(out, f"Sweep {sweep_id}", body, figures, footer)
    return out


def headline(run: Run, report: Path | None = None) -> str:
    """Markdown headline of a run from memory: portfolio figures with their basis, best and worst
    security, the report's path."""
    return run_page.headline(run, report)
