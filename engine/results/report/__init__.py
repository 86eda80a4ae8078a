"""Reports people would rather look at than read: one self-contained HTML file per run or sweep.

Pure: reads the DuckDB store on short-lived read-only connections and writes one HTML file with
plotly.js embedded once, so a report opens offline, from a mail attachment or a CI artifact. Curves
over trades are cut to the last value per minute, then to at most `MAX_POINTS` points that keep
each bucket's extremes, so a full-history run stays a few MB. Never imports prefect: the flows
publish `headline` as a markdown artifact and link the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from engine.results.report.figures import (
    MAX_POINTS,
    _heatmap,
    _metrics_figure,
    _portfolio_figure,
    _rangebreaks,
    _security_figure,
    decimate,
)
from engine.results.report.page import (
    _anchor,
    _cells_section,
    _failures_section,
    _int,
    _kpis,
    _lineage_section,
    _money,
    _overrides_label,
    _pct,
    _ratio,
    _run_header,
    _security_note,
    _sort_key,
    _summary_section,
    _sweep_header,
    _write_html,
)
from engine.results.store import StoreError, connect, read_run

__all__ = [
    "MAX_POINTS",
    "decimate",
    "default_report_path",
    "headline",
    "write_run_report",
    "write_sweep_report",
]

# ---- public API --------------------------------------------------------------------------------


def default_report_path(store: str | Path, name: str) -> Path:
    """`<store dir>/reports/<name>.html`, e.g. name `run-<run_id>` or `sweep-<sweep_id>`."""
    return Path(store).resolve().parent / "reports" / f"{name}.html"


def write_run_report(store: str | Path, run_id: str, out: Path | None = None) -> Path:
    """Write the HTML report of one run (lineage, summary table, curves, failures); return its path."""
    run = read_run(store, run_id)
    tables = _run_tables(store, run_id)
    out = Path(out) if out is not None else default_report_path(store, f"run-{run_id}")
    body = [
        _run_header(run),
        _kpis(run),
        _failures_section(tables["failures"]),
        _lineage_section(run, tables["summary"]),
        _summary_section(run, tables["summary"]),
    ]
    figures = []
    if not tables["daily"].empty:
        note = "securities summed by date; hover a curve for values, drag to zoom"
        figures.append(("portfolio", "Portfolio", note, _portfolio_figure(tables["daily"])))
    breaks = _rangebreaks(tables["series"])
    for row in tables["summary"].to_dict("records"):
        security = row["security"]
        series = tables["series"][tables["series"]["security"] == security]
        daily = tables["daily"][tables["daily"]["security"] == security]
        figure = _security_figure(series, daily, breaks)
        figures.append((_anchor(security), security, _security_note(row), figure))
    title = f"Run {run_id} · {run['strategy']}"
    _write_html(out, title, body, figures, store)
    return out


def write_sweep_report(store: str | Path, sweep_id: str, out: Path | None = None) -> Path:
    """Write the HTML report of one sweep (metrics against each parameter, heatmap); return its path."""
    cells, securities = _sweep_tables(store, sweep_id)
    out = Path(out) if out is not None else default_report_path(store, f"sweep-{sweep_id}")
    parameters = sorted({key for overrides in cells["overrides"] for key in overrides})
    body = [_sweep_header(sweep_id, cells, parameters), _cells_section(cells)]
    figures = [
        (
            "sweep-metrics",
            "P&L, Sharpe and drawdown by parameter",
            "portfolio figures of each cell; one line per strategy",
            _metrics_figure(cells, parameters),
        ),
        (
            "sweep-heatmap",
            "Total P&L by security and parameter set",
            "green gains, red losses; blank where the security failed or was not run",
            _heatmap(cells, securities),
        ),
    ]
    _write_html(out, f"Sweep {sweep_id}", body, figures, store)
    return out


def headline(store: str | Path, run_id: str, report: Path | None = None) -> str:
    """Markdown headline of a run (portfolio figures, best/worst security, report path)."""
    run = read_run(store, run_id)
    summary = _run_tables(store, run_id, series=False)["summary"]
    report = report or default_report_path(store, f"run-{run_id}")
    lines = [
        f"### Run `{run_id}` · {run['strategy']} · {run['status']}",
        "",
        "| Realized P&L | Sharpe | Max drawdown | Trades | Securities |",
        "|---:|---:|---:|---:|---:|",
        f"| {_money(run['total_pnl'])} | {_ratio(run['sharpe_ratio'])} | "
        f"{_money(run['max_drawdown'])} ({_pct(run['max_drawdown_pct'])}) | {_int(run['trades'])} "
        f"| {run['securities_ok']} ok, {run['securities_failed']} failed |",
        "",
    ]
    if not summary.empty:
        ranked = summary.sort_values("total_pnl", ascending=False)
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        lines.append(
            f"Best: **{best['security']}** {_money(best['total_pnl'])}; "
            f"worst: **{worst['security']}** {_money(worst['total_pnl'])} (total P&L)."
        )
    lines += ["", f"Report: `{report}`"]
    return "\n".join(lines)


# ---- reading the store ---------------------------------------------------------------------------

_SERIES_SQL = """
WITH t AS (
    SELECT security, seq, "timestamp", position, pnl,
           pnl - max(pnl) OVER (PARTITION BY security ORDER BY seq) AS drawdown
    FROM trades WHERE run_id = ?)
SELECT security, date_trunc('minute', "timestamp") AS minute, arg_max(pnl, seq) AS pnl,
       arg_max(position, seq) AS position, min(drawdown) AS drawdown
FROM t GROUP BY ALL ORDER BY security, minute"""


def _run_tables(store: str | Path, run_id: str, series: bool = True) -> dict[str, pd.DataFrame]:
    """summary, daily, failures and (per-minute) series frames of one run."""
    with connect(store, read_only=True) as con:
        out = {
            "summary": con.execute(
                "SELECT * FROM security_results WHERE run_id = ? ORDER BY security", [run_id]
            ).df(),
            "daily": con.execute(
                'SELECT security, "date", realized_pnl, cumulative_pnl, trades FROM daily_pnl '
                'WHERE run_id = ? ORDER BY security, "date"',
                [run_id],
            ).df(),
            "failures": con.execute(
                "SELECT * FROM failures WHERE run_id = ? ORDER BY security", [run_id]
            ).df(),
        }
        if series:
            out["series"] = con.execute(_SERIES_SQL, [run_id]).df()
    return out


def _sweep_tables(store: str | Path, sweep_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's cells (runs rows, overrides decoded, labelled) and their per-security results."""
    with connect(store, read_only=True) as con:
        cells = con.execute(
            "SELECT * FROM runs WHERE sweep_id = ? ORDER BY strategy, run_id", [sweep_id]
        ).df()
        securities = con.execute(
            "SELECT s.run_id, s.security, s.total_pnl FROM security_results s "
            "JOIN runs r USING (run_id) WHERE r.sweep_id = ? ORDER BY s.security",
            [sweep_id],
        ).df()
        failures = con.execute(
            "SELECT f.run_id, f.security, f.error_type, f.message FROM failures f "
            "JOIN runs r USING (run_id) WHERE r.sweep_id = ?",
            [sweep_id],
        ).df()
    if cells.empty:
        raise StoreError(
            f"no sweep {sweep_id!r} in {store}; list sweeps with "
            "`SELECT DISTINCT sweep_id FROM runs WHERE sweep_id IS NOT NULL`"
        )
    params = [json.loads(p) if p else {} for p in cells["params"]]
    cells["overrides"] = [p.get("overrides") or {} for p in params]
    cells["parameters"] = [_overrides_label(o) for o in cells["overrides"]]
    cells["label"] = cells["strategy"] + " · " + cells["parameters"]
    repeated = cells["label"].duplicated(keep=False)
    cells.loc[repeated, "label"] += " (" + cells.loc[repeated, "run_id"] + ")"
    cells["order"] = [
        tuple(_sort_key(k, v) for k, v in sorted(o.items())) for o in cells["overrides"]
    ]
    cells = cells.sort_values(["strategy", "order", "run_id"], ignore_index=True)
    cells["failed"] = [
        "; ".join(
            f"{f.security}: {f.error_type}" for f in failures[failures.run_id == r].itertuples()
        )
        for r in cells["run_id"]
    ]
    return cells, securities
