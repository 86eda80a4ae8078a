"""Reports people would rather look at than read: one self-contained HTML file per run or sweep.

Pure: reads the DuckDB store on short-lived read-only connections and writes one HTML file with
plotly.js embedded once, so a report opens offline, from a mail attachment or a CI artifact. Curves
over trades are cut to the last value per minute, then to at most `MAX_POINTS` points that keep
each bucket's extremes, so a full-history run stays a few MB. Never imports prefect: the flows
publish `headline` as a markdown artifact and link the file.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from engine.store import StoreError, connect, read_run

MAX_POINTS = 2000  # per curve; each of MAX_POINTS // 3 buckets keeps its min, max and last point
HEATMAP_TEXT_CELLS = 400  # print values inside heatmap cells up to this many cells

INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
PNL, POSITION, GAIN, LOSS = "#2563eb", "#7c3aed", "#16a34a", "#dc2626"
DRAWDOWN_FILL = "rgba(220, 38, 38, 0.18)"
SERIES = (  # one colour per security or strategy, in order (Tableau 10)
    "#4e79a7 #f28e2b #e15759 #76b7b2 #59a14f #edc948 #b07aa1 #ff9da7 #9c755f #bab0ac".split()
)
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"]}
TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(
            family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12, color=INK
        ),
        colorway=SERIES,
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=64, r=16, t=36, b=32),
        hovermode="x",
        xaxis=dict(gridcolor=GRID, linecolor="#9ca3af", zeroline=False, automargin=True),
        yaxis=dict(gridcolor=GRID, zerolinecolor="#9ca3af", automargin=True),
        legend=dict(orientation="h", y=-0.12, x=0, font=dict(size=11)),
    )
)


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


# ---- downsampling ------------------------------------------------------------------------------


def decimate(y: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most `max_points` points of `y`: first point, then each bucket's min, max, last."""
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, (max_points - 1) // 3)
    bucket = pd.Series(np.arange(n) * buckets // n)
    values = pd.Series(y)
    keep = np.concatenate(
        [
            [0],
            values.groupby(bucket).idxmin().to_numpy(),
            values.groupby(bucket).idxmax().to_numpy(),
            bucket.index.to_series().groupby(bucket).max().to_numpy(),
        ]
    )
    return np.unique(keep)


def _epoch_ms(times: pd.Series) -> np.ndarray:
    """Naive timestamps as float milliseconds: compact typed arrays on a plotly date axis."""
    return times.to_numpy("datetime64[ms]").astype("int64").astype("float64")


def _rangebreaks(series: pd.DataFrame) -> list[dict]:
    """Hide nights (session hours read from the data) and weekends without fills on intraday axes.

    Holidays stay visible as short flat gaps: breaks by date values combined with the hour pattern
    make plotly.js fail, and one break per night makes it three times slower.
    """
    if series.empty:
        return []
    minutes = series["minute"]
    hour = minutes.dt.hour + minutes.dt.minute / 60
    start, end = math.floor(hour.min()), math.ceil(hour.max() + 1 / 60)
    breaks = [dict(bounds=[end, start], pattern="hour")] if 0 < start < end < 24 else []
    if not minutes.dt.day_of_week.isin([5, 6]).any():
        breaks.append(dict(bounds=["sat", "mon"]))
    return breaks


# ---- figures -----------------------------------------------------------------------------------


def _figure(rows: int, cols: int, titles: Iterable[str], height: int, **kwargs) -> go.Figure:
    """A subplot grid in the report's template."""
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.07, **kwargs
    )
    fig.update_layout(template=TEMPLATE, height=height, showlegend=False)
    for i, annotation in enumerate(fig.layout.annotations, start=1):  # left-align the titles
        domain = fig.layout[f"xaxis{i if i > 1 else ''}"].domain
        annotation.update(x=domain[0], xanchor="left", font=dict(size=13, color=INK))
    return fig


def _line(x, y, name: str, color: str, **kwargs) -> go.Scatter:
    """A downsampled line with a P&L-style hover."""
    keep = decimate(np.asarray(y, dtype="float64"))
    return go.Scatter(
        x=np.asarray(x)[keep],
        y=np.asarray(y, dtype="float64")[keep],
        name=name,
        mode="lines",
        line=dict(color=color, width=1.5, **kwargs.pop("line", {})),
        hovertemplate="%{y:,.2f}",
        **kwargs,
    )


def _bars(daily: pd.DataFrame) -> go.Bar:
    """Daily P&L bars, gains green and losses red."""
    values = daily["realized_pnl"].to_numpy("float64")
    return go.Bar(
        x=_epoch_ms(daily["date"]),
        y=values,
        name="daily P&L",
        marker=dict(color=np.where(values >= 0, GAIN, LOSS).tolist(), line=dict(width=0)),
        hovertemplate="%{x|%Y-%m-%d}: %{y:,.2f}<extra></extra>",
    )


def _security_figure(series: pd.DataFrame, daily: pd.DataFrame, breaks: list[dict]) -> go.Figure:
    """Cumulative realized P&L, position, daily P&L bars and drawdown of one security."""
    fig = _figure(
        2,
        2,
        ["Cumulative realized P&L", "Position", "Daily realized P&L", "Drawdown (realized)"],
        height=430,
        vertical_spacing=0.16,
    )
    x = _epoch_ms(series["minute"])
    fig.add_trace(_line(x, series["pnl"], "realized P&L", PNL), row=1, col=1)
    position = _line(x, series["position"], "position", POSITION, line=dict(shape="hv"))
    position.hovertemplate = "%{y:,.0f}"
    fig.add_trace(position, row=1, col=2)
    fig.add_trace(_bars(daily), row=2, col=1)
    drawdown = _line(x, series["drawdown"], "drawdown", LOSS, fill="tozeroy")
    drawdown.fillcolor = DRAWDOWN_FILL
    fig.add_trace(drawdown, row=2, col=2)
    for row, col in ((1, 2), (2, 2)):
        fig.update_xaxes(matches="x", row=row, col=col)
    for row, col in ((1, 1), (1, 2), (2, 2)):
        fig.update_xaxes(type="date", rangebreaks=breaks, row=row, col=col)
    fig.update_xaxes(type="date", row=2, col=1)
    return fig


def _portfolio_figure(daily: pd.DataFrame) -> go.Figure:
    """The combined daily curve (sum over securities by date), its drawdown and per-security curves."""
    combined = daily.groupby("date", sort=True)["realized_pnl"].sum().reset_index()
    combined["cumulative_pnl"] = combined["realized_pnl"].cumsum()
    drawdown = combined["cumulative_pnl"] - combined["cumulative_pnl"].cummax()
    fig = _figure(
        2,
        2,
        [
            "Cumulative realized P&L, all securities (daily)",
            "Drawdown of the combined curve",
            "Daily realized P&L, all securities",
            "Cumulative realized P&L by security",
        ],
        height=480,
        vertical_spacing=0.16,
        shared_xaxes="all",
    )
    x = _epoch_ms(combined["date"])
    fig.add_trace(_line(x, combined["cumulative_pnl"], "portfolio", PNL), row=1, col=1)
    fill = _line(x, drawdown, "drawdown", LOSS, fill="tozeroy")
    fill.fillcolor = DRAWDOWN_FILL
    fig.add_trace(fill, row=1, col=2)
    fig.add_trace(_bars(combined), row=2, col=1)
    fig.update_traces(showlegend=False)
    for i, (security, frame) in enumerate(daily.groupby("security", sort=True)):
        color = SERIES[i % len(SERIES)]
        line = _line(_epoch_ms(frame["date"]), frame["cumulative_pnl"], security, color)
        line.hovertemplate = f"{security}: %{{y:,.2f}}<extra></extra>"
        line.showlegend = True
        fig.add_trace(line, row=2, col=2)
    fig.update_xaxes(type="date")
    fig.update_layout(showlegend=True, legend=dict(orientation="h", x=0, y=-0.1))
    return fig


def _metrics_figure(cells: pd.DataFrame, parameters: list[str]) -> go.Figure:
    """Total P&L, Sharpe and max drawdown (columns) against each swept parameter (rows); one line
    per strategy, averaged over the other swept parameters."""
    rows = parameters or ["parameter set"]
    metrics = [("total_pnl", "Total P&L"), ("sharpe_ratio", "Sharpe"), ("max_drawdown", "Max DD")]
    titles = [f"{label} by {p}" for p in rows for _, label in metrics]
    fig = _figure(
        len(rows),
        len(metrics),
        titles,
        height=250 * len(rows) + 60,
        vertical_spacing=0.3 / len(rows),
    )
    for s, (strategy, group) in enumerate(cells.groupby("strategy", sort=True)):
        for r, parameter in enumerate(rows, start=1):
            x = group["overrides"].map(lambda o, p=parameter: o.get(p))
            frame = group.assign(x=x if parameters else group["parameters"]).dropna(subset=["x"])
            means = frame.groupby("x", sort=True)[[m for m, _ in metrics]].mean()
            for c, (metric, _) in enumerate(metrics, start=1):
                fig.add_trace(
                    go.Scatter(
                        x=list(means.index),
                        y=means[metric].to_numpy("float64"),
                        name=strategy,
                        legendgroup=strategy,
                        showlegend=r == 1 and c == 1,
                        mode="lines+markers",
                        line=dict(color=SERIES[s % len(SERIES)], width=2),
                        marker=dict(size=7),
                        hovertemplate=f"{strategy}<br>{parameter}=%{{x}}: %{{y:,.2f}}<extra></extra>",
                    ),
                    row=r,
                    col=c,
                )
    for r, parameter in enumerate(parameters, start=1):  # ticks at the swept values
        values = {o[parameter] for o in cells["overrides"] if parameter in o}
        if len(values) <= 12 and all(isinstance(v, int | float) for v in values):
            fig.update_xaxes(tickvals=sorted(values), row=r)
    fig.update_layout(
        showlegend=True,
        hovermode="closest",
        margin=dict(b=64),
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0),
    )
    return fig


def _heatmap(cells: pd.DataFrame, securities: pd.DataFrame) -> go.Figure:
    """Parameter set × security heatmap of each security's total P&L (diverging at zero)."""
    grid = securities.pivot(index="run_id", columns="security", values="total_pnl")
    grid = grid.reindex(index=cells["run_id"])
    show_text = grid.size <= HEATMAP_TEXT_CELLS
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy("float64"),
            x=list(grid.columns),
            y=cells["label"].tolist(),
            colorscale="RdYlGn",
            zmid=0,
            texttemplate="%{z:,.0f}" if show_text else None,
            textfont=dict(size=11),
            colorbar=dict(title=dict(text="P&L"), thickness=12),
            hovertemplate="%{y}<br>%{x}: total P&L %{z:,.2f}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        height=max(220, 26 * len(grid.index) + 90),
        xaxis=dict(side="top", type="category", gridcolor="white"),
        yaxis=dict(autorange="reversed", type="category", tickformat="", gridcolor="white"),
        hovermode="closest",
        margin=dict(t=40, b=16),
    )
    return fig


# ---- HTML pieces ------------------------------------------------------------------------------


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _int(value) -> str:
    return "–" if _missing(value) else f"{int(value):,}"


def _money(value) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}"


def _ratio(value) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}"


def _pct(value) -> str:
    return "–" if _missing(value) else f"{float(value):.1f}%"


def _tone(value) -> str:
    """' pos' / ' neg' by sign (P&L is coloured), '' for zero or missing."""
    return "" if _missing(value) or value == 0 else (" pos" if value > 0 else " neg")


def _table(
    records: list[dict], columns, row_class: Callable[[int, dict], str] | None = None
) -> str:
    """An HTML table; columns are (header, key, format to HTML, kind: 'text' | 'num' | 'signed')."""
    head = "".join(
        f"<th{' class=num' if kind != 'text' else ''}>{header}</th>"
        for header, _, _, kind in columns
    )
    rows = []
    for i, record in enumerate(records):
        cells = "".join(
            f"<td class='{'' if kind == 'text' else 'num'}{_tone(record[key]) if kind == 'signed' else ''}'>"
            f"{fmt(record[key])}</td>"
            for _, key, fmt, kind in columns
        )
        css = row_class(i, record) if row_class else ""
        rows.append(f"<tr class='{css}'>{cells}</tr>" if css else f"<tr>{cells}</tr>")
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _time(value) -> str:
    return "–" if _missing(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M:%S} UTC"


def _sort_key(key: str, value) -> tuple:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return key, float(value) if number else math.inf, str(value)


def _overrides_label(overrides: dict) -> str:
    return (
        ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(overrides.items())
        )
        or "defaults"
    )


def _run_header(run: dict) -> str:
    status = _esc(run["status"])
    return (
        f'<header><div class="eyebrow">mmflow {_esc(run["kind"])} report</div>'
        f'<h1>{_esc(run["strategy"])} <span class="badge {status}">{status}</span></h1>'
        f'<div class="sub">run <code>{_esc(run["run_id"])}</code> · '
        f"{_esc(run['securities'])} securities · {_esc(run['data_source'])}</div></header>"
    )


def _kpis(run: dict) -> str:
    max_dd = f"{_money(run['max_drawdown'])} <small>{_pct(run['max_drawdown_pct'])}</small>"
    cards = [
        ("Realized P&amp;L", _money(run["total_pnl"]), _tone(run["total_pnl"])),
        ("Sharpe", _ratio(run["sharpe_ratio"]), ""),
        ("Max drawdown", max_dd, ""),
        ("Calmar", _ratio(run["calmar_ratio"]), ""),
        ("Win rate", _pct(run["win_rate"]), ""),
        ("Profit factor", _ratio(run["profit_factor"]), ""),
        ("Trades", _int(run["trades"]), ""),
        ("Securities", _securities(run), ""),
    ]
    items = "".join(
        f'<div class="kpi"><div class="label">{label}</div><div class="value{tone}">{value}</div>'
        "</div>"
        for label, value, tone in cards
    )
    return f'<section class="kpis">{items}</section>'


def _security_note(row: dict) -> str:
    """The headline figures of one security, beside its name."""
    return (
        f"total P&amp;L {_money(row['total_pnl'])} · {_int(row['trades'])} trades · "
        f"Sharpe {_ratio(row['sharpe_ratio'])} · max DD {_money(row['max_drawdown'])} · "
        f"final position {_int(row['final_position'])}"
    )


def _securities(run: dict) -> str:
    ok, failed = run["securities_ok"], run["securities_failed"]
    text = f"{ok} <small>of {run['securities']}</small>"
    return text + (f' <small class="neg">{failed} failed</small>' if failed else "")


_FAILURE_COLUMNS = (
    ("Security", "security", _esc, "text"),
    ("Error", "error_type", _esc, "text"),
    ("Attempts", "attempts", _int, "num"),
    ("Message", "message", lambda m: f"<pre>{_esc(m)}</pre>", "text"),
)


def _failures_section(failures: pd.DataFrame) -> str:
    if failures.empty:
        return ""
    noun = "security" if len(failures) == 1 else "securities"
    return (
        f'<section class="failures"><h2>{len(failures)} failed {noun}</h2>'
        f"{_table(failures.to_dict('records'), _FAILURE_COLUMNS)}</section>"
    )


def _lineage_section(run: dict, summary: pd.DataFrame) -> str:
    params = run["params"] or {}
    overrides = params.get("overrides") or {}
    started, finished = run["started_at"], run["finished_at"]
    duration = f"{(finished - started).total_seconds():,.1f} s" if started and finished else "–"
    items = [
        ("Strategy", run["strategy"]),
        ("Config", params.get("config") or "defaults"),
        ("Overrides", _overrides_label(overrides) if overrides else "none"),
        ("Config hash", run["config_hash"]),
        ("Data source", run["data_source"]),
        ("Data hash", run["data_hash"]),
        ("Code version", run["code_version"]),
        ("Started", _time(started)),
        ("Finished", f"{_time(finished)} ({duration})"),
        ("Sweep", run["sweep_id"]),
        ("Prefect flow run", run["flow_run_id"]),
    ]
    rows = "".join(
        f"<dt>{k}</dt><dd><code>{_esc(v)}</code></dd>" for k, v in items if not _missing(v)
    )
    return (
        f'<section class="card"><h2>Parameters and lineage</h2><dl>{rows}</dl>'
        f"{_resolved_params(summary)}</section>"
    )


def _resolved_params(summary: pd.DataFrame) -> str:
    """The parameters resolved per security, as a collapsible table (differing values marked)."""
    if summary.empty:
        return ""
    resolved = pd.DataFrame(
        [json.loads(p) if p else {} for p in summary["params"]], index=summary["security"]
    ).T
    head = "".join(f"<th class='num'>{_esc(s)}</th>" for s in resolved.columns)
    rows = []
    for name, values in resolved.iterrows():
        differs = " class='differs'" if values.astype(str).nunique() > 1 else ""
        cells = "".join(f"<td class='num'>{_esc(_plain(v))}</td>" for v in values)
        rows.append(f"<tr{differs}><td>{_esc(name)}</td>{cells}</tr>")
    return (
        "<details><summary>Resolved parameters per security</summary><div class='scroll'>"
        f"<table><thead><tr><th>Parameter</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div></details>"
    )


def _plain(value) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int | float) else str(value)


class _Total(str):
    """The label of a table's total row (not a security, so not a link)."""


def _security_link(security: str) -> str:
    if isinstance(security, _Total):
        return _esc(security)
    return f"<a href='#{_anchor(security)}'>{_esc(security)}</a>"


def _anchor(security: str) -> str:
    """The id of a security's section: `sec-` and the name with anything but [A-Za-z0-9_-] as '-'."""
    return "sec-" + re.sub(r"[^A-Za-z0-9_-]", "-", security)


_SUMMARY_COLUMNS = (
    ("Security", "security", _security_link, "text"),
    ("Trades", "trades", _int, "num"),
    ("Volume", "volume", _int, "num"),
    ("Final pos.", "final_position", _int, "num"),
    ("Realized P&amp;L", "realized_pnl", _money, "signed"),
    ("Unrealized", "unrealized_pnl", _money, "signed"),
    ("Total P&amp;L", "total_pnl", _money, "signed"),
    ("P&amp;L / trade", "avg_pnl_per_trade", _money, "signed"),
    ("Sharpe", "sharpe_ratio", _ratio, "num"),
    ("Max DD", "max_drawdown", _money, "num"),
    ("Max DD %", "max_drawdown_pct", _pct, "num"),
    ("Win rate", "win_rate", _pct, "num"),
    ("Profit factor", "profit_factor", _ratio, "num"),
    ("Days", "strategy_dates", _int, "num"),
)


def _summary_section(run: dict, summary: pd.DataFrame) -> str:
    records = [*summary.to_dict("records"), _total_row(run, summary)]
    last = len(records) - 1
    table = _table(records, _SUMMARY_COLUMNS, lambda i, _: "total" if i == last else "")
    return (
        f'<section class="card"><h2>Summary by security</h2>{table}<p class="note">P&amp;L in '
        "the securities' currency; Sharpe, drawdown and win rate per SPEC §5.3. The portfolio row "
        "sums trades, volume and P&amp;L; its statistics use the combined daily curve.</p></section>"
    )


def _total_row(run: dict, summary: pd.DataFrame) -> dict:
    """Sums where a sum means something; portfolio statistics from the runs row."""
    total = {c: None for _, c, _, _ in _SUMMARY_COLUMNS}
    total.update({c: int(summary[c].sum()) for c in ("trades", "volume")})
    for c in ("realized_pnl", "unrealized_pnl", "total_pnl"):
        total[c] = math.fsum(summary[c].dropna())
    if total["trades"]:
        total["avg_pnl_per_trade"] = total["realized_pnl"] / total["trades"]
    for c in ("sharpe_ratio", "max_drawdown", "max_drawdown_pct", "win_rate", "profit_factor"):
        total[c] = run[c]
    total["security"] = _Total("Portfolio")
    return total


def _sweep_header(sweep_id: str, cells: pd.DataFrame, parameters: list[str]) -> str:
    strategies = ", ".join(sorted(cells["strategy"].unique()))
    sources = ", ".join(
        f"{s} ({h[:12]})"
        for s, h in cells[["data_source", "data_hash"]].drop_duplicates().itertuples(index=False)
    )
    return (
        f'<header><div class="eyebrow">mmflow sweep report</div><h1>Sweep {_esc(sweep_id)}</h1>'
        f'<div class="sub">{len(cells)} cells · strategies {_esc(strategies)} · swept '
        f"{_esc(', '.join(parameters) or 'nothing')} · data {_esc(sources)} · "
        f"{_time(cells['started_at'].min())} to {_time(cells['finished_at'].max())}</div></header>"
    )


_CELL_COLUMNS = (
    ("Strategy", "strategy", _esc, "text"),
    ("Parameters", "parameters", _esc, "text"),
    ("Status", "status", lambda s: f"<span class='badge {_esc(s)}'>{_esc(s)}</span>", "text"),
    ("Trades", "trades", _int, "num"),
    ("Total P&amp;L", "total_pnl", _money, "signed"),
    ("Sharpe", "sharpe_ratio", _ratio, "num"),
    ("Max DD", "max_drawdown", _money, "num"),
    ("Win rate", "win_rate", _pct, "num"),
    ("Run", "run_id", lambda r: f"<code>{_esc(r)}</code>", "text"),
)


def _cells_section(cells: pd.DataFrame) -> str:
    ranked = cells.sort_values("total_pnl", ascending=False, na_position="last")
    columns = _CELL_COLUMNS
    if ranked["failed"].any():
        columns += (
            (
                "Failed securities",
                "failed",
                lambda f: f"<span class='neg'>{_esc(f)}</span>",
                "text",
            ),
        )
    table = _table(ranked.to_dict("records"), columns, lambda i, _: "best" if i == 0 else "")
    return (
        f'<section class="card"><h2>Cells, best first</h2>{table}<p class="note">Portfolio '
        "figures of each cell (combined daily curve). The charts average each strategy's cells "
        "over the other swept parameters.</p></section>"
    )


def _write_html(out: Path, title: str, body: list[str], figures, store: str | Path) -> None:
    """Assemble the page: HTML first (it paints at once), each figure as a sized div and its JSON,
    then plotly.js once at the end, drawing the figures one after another."""
    plots = []
    for div_id, heading, note, figure in figures:
        spec = figure.to_json().replace("</", "<\\/")
        plots.append(
            f'<section class="card plot-card" id="{_esc(div_id)}"><h2>{_esc(heading)} '
            f'<span class="h-note">{note}</span></h2>'
            f'<div class="plot" id="plot-{_esc(div_id)}" style="height:{figure.layout.height}px">'
            "</div>"
            f'<script>draw("plot-{_esc(div_id)}", {spec});</script></section>'
        )
    generated = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    page = _PAGE.format(
        title=_esc(title),
        css=_CSS,
        plotly=get_plotlyjs(),
        config=json.dumps(PLOT_CONFIG),
        body="\n".join(part for part in body if part),
        plots="\n".join(plots),
        footer=f"Generated {generated} from {_esc(Path(store).resolve())}",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>
const PLOT_CONFIG = {config};
const FIGURES = [];
function draw(id, figure) {{ FIGURES.push([id, figure]); }}
</script>
</head><body><main>
{body}
{plots}
<footer>{footer}</footer>
</main>
<script>{plotly}</script>
<script>
(function next() {{
  const item = FIGURES.shift();
  if (item) Plotly.newPlot(item[0], item[1].data, item[1].layout, PLOT_CONFIG).then(() => setTimeout(next, 0));
}})();
</script>
</body></html>
"""

_CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f3f4f6; --pos: #15803d;
  --neg: #b91c1c; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 32px; }
header { margin-bottom: 14px; }
.eyebrow { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
h1 { margin: 2px 0 4px; font-size: 24px; font-weight: 650; }
h2 { margin: 0 0 10px; font-size: 15px; font-weight: 650; }
.sub { color: var(--muted); }
.h-note { color: var(--muted); font-weight: 400; font-size: 13px; margin-left: 8px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.badge { display: inline-block; vertical-align: middle; font-size: 12px; font-weight: 600;
  padding: 2px 8px; border-radius: 999px; background: #e5e7eb; color: var(--ink); }
.badge.completed { background: #dcfce7; color: var(--pos); }
.badge.partial { background: #fef3c7; color: #92400e; }
.badge.failed { background: #fee2e2; color: var(--neg); }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(135px, 1fr)); gap: 10px;
  margin-bottom: 14px; }
.kpi { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 9px 10px; }
.kpi .label { color: var(--muted); font-size: 12px; }
.kpi .value { font-size: 17px; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi small { font-size: 12px; color: var(--muted); font-weight: 500; }
.card { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin-bottom: 14px; }
.plot-card { padding-bottom: 6px; }
.failures { background: #fef2f2; border: 1px solid #fecaca; border-radius: 8px; padding: 12px 16px;
  margin-bottom: 14px; }
.failures h2 { color: var(--neg); }
.failures pre { margin: 0; white-space: pre-wrap; font-size: 12.5px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--accent); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 12.5px; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; border-bottom: 2px solid var(--line); }
.num { text-align: right; }
td.pos { color: var(--pos); }
td.neg, .neg { color: var(--neg); }
.failures td:last-child { white-space: normal; }
.value.pos { color: var(--pos); }
.value.neg { color: var(--neg); }
tbody tr:hover { background: #f9fafb; }
tr.total td { font-weight: 650; border-top: 2px solid var(--ink); border-bottom: none; }
tr.best td { background: #f0fdf4; font-weight: 600; }
tr.differs td { background: #fffbeb; }
a { color: var(--accent); text-decoration: none; }
.note { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 8px; }
"""
