"""The report's figures, as plotly.js specs (plain dicts), and the downsampling of long curves."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from engine.results.report.markup import days_basis
from engine.results.report.plotspec import Figure, Grid

MAX_POINTS = 2000  # per curve; each of MAX_POINTS // 3 buckets keeps its min, max and last point
HEATMAP_TEXT_CELLS = 400  # print values inside heatmap cells up to this many cells

INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
PNL, POSITION, GAIN, LOSS = "#2563eb", "#7c3aed", "#16a34a", "#dc2626"
DRAWDOWN_FILL = "rgba(220, 38, 38, 0.18)"
SERIES = (  # one colour per security or strategy, in order (Tableau 10)
    "#4e79a7 #f28e2b #e15759 #76b7b2 #59a14f #edc948 #b07aa1 #ff9da7 #9c755f #bab0ac".split()
)
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"]}
TEMPLATE = dict(  # plotly's JSON form of a template: plotly.js takes its layout as defaults
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


# ---- downsampling ------------------------------------------------------------------------------


def decimate(y: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most `max_points` points of `y`: first point, then each bucket's min, max, last
    (the first of equal extremes; NaN skipped)."""
    y = np.asarray(y, dtype="float64")
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, (max_points - 1) // 3)
    bucket = np.arange(n) * buckets // n  # contiguous runs 0, 0, ..., 1, 1, ...: none empty
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    keep = np.zeros(n, dtype=bool)
    keep[0] = True
    keep[starts[1:] - 1] = keep[-1] = True  # each bucket's last point
    for extreme in (np.fmin, np.fmax):
        per_bucket = extreme.reduceat(y, starts)
        at = np.where(y == per_bucket[bucket], np.arange(n), n)  # n: not the bucket's extreme
        first = np.minimum.reduceat(at, starts)
        keep[first[first < n]] = True  # none where a bucket is all NaN
    return np.flatnonzero(keep)


def _epoch_ms(times: pd.Series) -> np.ndarray:
    """Naive timestamps as float milliseconds: compact typed arrays on a plotly date axis."""
    return times.to_numpy("datetime64[ms]").astype("int64").astype("float64")


def rangebreaks(series: pd.DataFrame) -> list[dict]:
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

# plotly's RdYlGn (ColorBrewer) spelled out: plotly.js itself knows no scale of that name.
RDYLGN = [
    [i / 10, color]
    for i, color in enumerate(
        "rgb(165,0,38) rgb(215,48,39) rgb(244,109,67) rgb(253,174,97) rgb(254,224,139) "
        "rgb(255,255,191) rgb(217,239,139) rgb(166,217,106) rgb(102,189,99) rgb(26,152,80) "
        "rgb(0,104,55)".split()
    )
]


def _figure(rows: int, cols: int, titles: Iterable[str], height: int, **kwargs) -> Grid:
    """A subplot grid in the report's template, its titles left-aligned over the subplots."""
    grid = Grid(
        rows,
        cols,
        titles,
        horizontal_spacing=0.07,
        title_font=dict(size=13, color=INK),
        **kwargs,
    )
    grid.layout.update(template=TEMPLATE, height=height, showlegend=False)
    return grid


def _line(x, y, name: str, color: str, line: dict | None = None, **kwargs) -> dict:
    """A downsampled line with a P&L-style hover (`kwargs` add or override trace properties)."""
    y = np.asarray(y, dtype="float64")
    keep = decimate(y)
    return {
        "type": "scatter",
        "x": np.asarray(x)[keep],
        "y": y[keep],
        "name": name,
        "mode": "lines",
        "line": dict(color=color, width=1.5, **(line or {})),
        "hovertemplate": "%{y:,.2f}",
        **kwargs,
    }


def _bars(daily: pd.DataFrame) -> dict:
    """Daily P&L bars, gains green and losses red."""
    values = daily["realized_pnl"].to_numpy("float64")
    return {
        "type": "bar",
        "x": _epoch_ms(daily["date"]),
        "y": values,
        "name": "Daily Realized P&L",
        "marker": dict(color=np.where(values >= 0, GAIN, LOSS).tolist(), line=dict(width=0)),
        "hovertemplate": "%{x|%Y-%m-%d}: %{y:,.2f}<extra></extra>",
    }


def security_figure(series: pd.DataFrame, daily: pd.DataFrame, breaks: list[dict]) -> Figure:
    """Cumulative realized P&L, position, daily realized P&L bars and drawdown of one security."""
    fig = _figure(
        2,
        2,
        [
            "Cumulative Realized P&L (last per minute)",
            "Position (last per minute)",
            "Daily Realized P&L",
            "Drawdown of Realized P&L (per fill, deepest per minute)",
        ],
        height=430,
        vertical_spacing=0.16,
    )
    x = _epoch_ms(series["minute"])
    fig.add(_line(x, series["pnl"], "Realized P&L", PNL), 1, 1)
    position = _line(
        x,
        series["position"],
        "position",
        POSITION,
        line=dict(shape="hv"),
        hovertemplate="%{y:,.0f}",
    )
    fig.add(position, 1, 2)
    fig.add(_bars(daily), 2, 1)
    drawdown = _line(
        x, series["drawdown"], "drawdown", LOSS, fill="tozeroy", fillcolor=DRAWDOWN_FILL
    )
    fig.add(drawdown, 2, 2)
    for row, col in ((1, 2), (2, 2)):
        fig.xaxes(row, col, matches="x")
    intraday = dict(type="date", rangebreaks=breaks) if breaks else dict(type="date")
    for row, col in ((1, 1), (1, 2), (2, 2)):
        fig.xaxes(row, col, **intraday)
    fig.xaxes(2, 1, type="date")
    return fig.figure


def portfolio_figure(daily: pd.DataFrame) -> Figure:
    """The combined daily realized curve (securities summed by date), its drawdown (daily, over
    its number of dates) and the per-security curves."""
    combined = daily.groupby("date", sort=True)["realized_pnl"].sum().reset_index()
    combined["cumulative_pnl"] = combined["realized_pnl"].cumsum()
    drawdown = combined["cumulative_pnl"] - combined["cumulative_pnl"].cummax()
    fig = _figure(
        2,
        2,
        [
            "Cumulative Realized P&L, all securities (daily)",
            f"Drawdown of the combined curve ({days_basis(len(combined))})",
            "Daily Realized P&L, all securities",
            "Cumulative Realized P&L by security",
        ],
        height=480,
        vertical_spacing=0.16,
        match_x=True,
    )
    x = _epoch_ms(combined["date"])
    line = _line(x, combined["cumulative_pnl"], "Realized P&L", PNL, showlegend=False)
    fig.add(line, 1, 1)
    fill = _line(
        x, drawdown, "drawdown", LOSS, fill="tozeroy", fillcolor=DRAWDOWN_FILL, showlegend=False
    )
    fig.add(fill, 1, 2)
    fig.add({**_bars(combined), "showlegend": False}, 2, 1)
    for i, (security, frame) in enumerate(daily.groupby("security", sort=True)):
        color = SERIES[i % len(SERIES)]
        line = _line(
            _epoch_ms(frame["date"]),
            frame["cumulative_pnl"],
            security,
            color,
            hovertemplate=f"{security}: %{{y:,.2f}}<extra></extra>",
            showlegend=True,
        )
        fig.add(line, 2, 2)
    fig.xaxes(type="date")
    fig.layout.update(showlegend=True, legend=dict(orientation="h", x=0, y=-0.1))
    return fig.figure


def metrics_figure(cells: pd.DataFrame, parameters: list[str]) -> Figure:
    """Total P&L, daily Sharpe and max drawdown (columns) against each swept parameter (rows); one
    line per strategy, averaged over the other swept parameters."""
    rows = parameters or ["parameter set"]
    metrics = [
        ("total_pnl", "Total P&L"),
        ("sharpe_ratio", "Sharpe (daily)"),
        ("max_drawdown", "Max DD (daily)"),
    ]
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
                trace = {
                    "type": "scatter",
                    "x": list(means.index),
                    "y": means[metric].to_numpy("float64"),
                    "name": strategy,
                    "legendgroup": strategy,
                    "showlegend": r == 1 and c == 1,
                    "mode": "lines+markers",
                    "line": dict(color=SERIES[s % len(SERIES)], width=2),
                    "marker": dict(size=7),
                    "hovertemplate": f"{strategy}<br>{parameter}=%{{x}}: %{{y:,.2f}}<extra></extra>",
                }
                fig.add(trace, r, c)
    for r, parameter in enumerate(parameters, start=1):  # ticks at the swept values
        values = {o[parameter] for o in cells["overrides"] if parameter in o}
        if len(values) <= 12 and all(isinstance(v, int | float) for v in values):
            fig.xaxes(r, tickvals=sorted(values))
    fig.layout.update(
        showlegend=True,
        hovermode="closest",
        margin=dict(b=64),
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0),
    )
    return fig.figure


def heatmap(cells: pd.DataFrame, securities: pd.DataFrame) -> Figure:
    """Parameter set × security heatmap of each security's Total P&L (realized + unrealized,
    diverging at zero)."""
    grid = securities.pivot(index="run_id", columns="security", values="total_pnl")
    grid = grid.reindex(index=cells["run_id"])
    trace = {
        "type": "heatmap",
        "z": grid.to_numpy("float64"),
        "x": list(grid.columns),
        "y": cells["label"].tolist(),
        "colorscale": RDYLGN,
        "zmid": 0,
        "textfont": dict(size=11),
        "colorbar": dict(title=dict(text="Total P&L"), thickness=12),
        "hovertemplate": "%{y}<br>%{x}: Total P&L %{z:,.2f}<extra></extra>",
        "xgap": 1,
        "ygap": 1,
    }
    if grid.size <= HEATMAP_TEXT_CELLS:
        trace["texttemplate"] = "%{z:,.0f}"
    layout = dict(
        template=TEMPLATE,
        height=max(220, 26 * len(grid.index) + 90),
        xaxis=dict(side="top", type="category", gridcolor="white"),
        yaxis=dict(autorange="reversed", type="category", tickformat="", gridcolor="white"),
        hovermode="closest",
        margin=dict(t=40, b=16),
    )
    return {"data": [trace], "layout": layout}
