"""The report's plotly figures and the downsampling of long curves."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.results.report.markup import days_basis

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
        name="Daily Realized P&L",
        marker=dict(color=np.where(values >= 0, GAIN, LOSS).tolist(), line=dict(width=0)),
        hovertemplate="%{x|%Y-%m-%d}: %{y:,.2f}<extra></extra>",
    )


def security_figure(series: pd.DataFrame, daily: pd.DataFrame, breaks: list[dict]) -> go.Figure:
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
    fig.add_trace(_line(x, series["pnl"], "Realized P&L", PNL), row=1, col=1)
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


def portfolio_figure(daily: pd.DataFrame) -> go.Figure:
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
        shared_xaxes="all",
    )
    x = _epoch_ms(combined["date"])
    fig.add_trace(_line(x, combined["cumulative_pnl"], "Realized P&L", PNL), row=1, col=1)
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


def metrics_figure(cells: pd.DataFrame, parameters: list[str]) -> go.Figure:
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


def heatmap(cells: pd.DataFrame, securities: pd.DataFrame) -> go.Figure:
    """Parameter set × security heatmap of each security's Total P&L (realized + unrealized,
    diverging at zero)."""
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
            colorbar=dict(title=dict(text="Total P&L"), thickness=12),
            hovertemplate="%{y}<br>%{x}: Total P&L %{z:,.2f}<extra></extra>",
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
