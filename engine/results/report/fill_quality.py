"""The run report's fill-quality panel (ANALYTICS.md), from the `Run` in memory: a table of each
security's figures and one figure with the markout curve, edge against adverse selection,
quoting activity, the position's distribution, the mark-to-market curve beside the realized one
and the P&L decomposition as a waterfall. Runs stored before the analytics have no panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.results.report.columns import columns
from engine.results.report.figures import GAIN, LOSS, PNL, POSITION, SERIES, _epoch_ms, _figure
from engine.results.report.markup import ratio, table
from engine.results.report.plotspec import Figure, Grid
from engine.run import Run
from engine.types import HORIZONS_SEC, SecurityResult

HORIZONS = (0, *HORIZONS_SEC)
_TOTALS = ("edge_total", *(f"markout_total_{h}" for h in HORIZONS_SEC))
_NOTIONALS = tuple(f"notional_mid_{h}" for h in HORIZONS)


def analysed(run: Run) -> list[SecurityResult]:
    """The run's results that have analytics, by security name."""
    return sorted((r for r in run.results if r.analytics), key=lambda r: r.security)


def curve(markouts: list[pd.DataFrame]) -> np.ndarray:
    """A6 markout bps at HORIZONS over the 'all' rows of one or more securities, pooled."""
    rows = [m.iloc[0] for m in markouts]
    totals = np.array([[row[c] for c in _TOTALS] for row in rows], dtype=float).sum(axis=0)
    notionals = np.array([[row[c] for c in _NOTIONALS] for row in rows], dtype=float).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(notionals > 0, 1e4 * totals / notionals, np.nan)


_COLUMNS = columns(
    "security",
    "fills",
    "edge_bps",
    "markout_bps_60",
    "adverse_selection_60",
    "uptime_two_sided",
    "fill_ratio",
    "avg_abs_position",
    "time_at_limit",
    "inventory_half_life_min",
    "spread_capture",
    "inventory_pnl",
    "fees",
    "net_pnl",
)


def section(run: Run) -> str:
    """The per-security fill-quality table with the basis of each figure, or ''."""
    results = analysed(run)
    if not results:
        return ""
    rows = table([r.analytics for r in results], _COLUMNS)
    return (
        f'<section class="card"><h2>Fill quality</h2>{rows}<p class="note">ANALYTICS.md: edge and '
        "markouts against the market mid, in bps of the notional of the fills with that mid "
        "(A5, A6); adverse selection = edge − markout, in currency. Uptime and |position| are "
        "weighted by time between in-window rows (A7, A8). Spread capture = edge of quote fills; "
        "inventory P&amp;L = the rest of the mark-to-market P&amp;L (A10); net P&amp;L = realized "
        "− fees (A11).</p></section>"
    )


def figure(run: Run, daily: pd.DataFrame) -> Figure | None:
    """The six fill-quality plots of a run, or None without analytics."""
    results = analysed(run)
    if not results:
        return None
    fig = _figure(
        3,
        2,
        [
            "Markout by horizon (bps; 0 s = edge at the print)",
            "Edge against adverse selection at 60 s (bps)",
            "Two-sided uptime and fill ratio",
            "Position after each fill (share of max_position)",
            "Cumulative realized and mark-to-market P&L (daily)",
            "P&L decomposition (A10)",
        ],
        height=900,
        vertical_spacing=0.09,
    )
    _markout_curves(fig, results)
    _edge_bars(fig, results)
    _activity_bars(fig, results)
    _positions(fig, results)
    _mtm_curves(fig, daily)
    _waterfall(fig, results)
    fig.xaxes(1, 1, type="category")
    fig.xaxes(3, 1, type="date")
    fig.layout.update(showlegend=True, barmode="group", hovermode="closest")
    return fig.figure


def _markout_curves(fig: Grid, results: list[SecurityResult]) -> None:
    x = [f"{h} s" for h in HORIZONS]
    for i, r in enumerate(results):
        fig.add(
            {"type": "scatter", "x": x, "y": curve([r.markouts]), "name": r.security,
             "mode": "lines+markers", "line": dict(color=SERIES[i % len(SERIES)], width=1.2),
             "legendgroup": r.security},
            1, 1,
        )  # fmt: skip
    fig.add(
        {"type": "scatter", "x": x, "y": curve([r.markouts for r in results]), "name": "Portfolio",
         "mode": "lines+markers", "line": dict(color="#111827", width=3)},
        1, 1,
    )  # fmt: skip


def _bar(x: list, y: list, name: str, color: str) -> dict:
    return {"type": "bar", "x": x, "y": y, "name": name, "marker": dict(color=color)}


def _edge_bars(fig: Grid, results: list[SecurityResult]) -> None:
    names = [r.security for r in results]
    edge = [r.analytics["edge_bps"] for r in results]
    markout = [r.analytics["markout_bps_60"] for r in results]
    adverse = [e - m for e, m in zip(edge, markout, strict=True)]
    for label, values, color in (
        ("edge", edge, GAIN),
        ("adverse selection (edge − markout 60 s)", adverse, LOSS),
        ("markout 60 s", markout, PNL),
    ):
        fig.add(_bar(names, values, label, color), 1, 2)


def _activity_bars(fig: Grid, results: list[SecurityResult]) -> None:
    names = [r.security for r in results]
    for label, key, color in (
        ("two-sided uptime", "uptime_two_sided", PNL),
        ("any-side uptime", "uptime_any", "#93c5fd"),
        ("fill ratio (quote fills / quotes placed)", "fill_ratio", POSITION),
    ):
        values = [r.analytics[key] for r in results]
        fig.add(_bar(names, values, label, color), 2, 1)


def _positions(fig: Grid, results: list[SecurityResult]) -> None:
    for i, r in enumerate(results):
        if r.trades is None or r.trades.empty:
            continue
        limit = float(r.params.get("max_position") or 0) or float("nan")
        half_life = r.analytics["inventory_half_life_min"]
        label = f"{r.security}<br>half-life {ratio(half_life)} min"
        fig.add(
            {"type": "box", "y": r.trades["position"].to_numpy(float) / limit, "name": label,
             "boxpoints": False, "marker": dict(color=SERIES[i % len(SERIES)]),
             "showlegend": False},
            2, 2,
        )  # fmt: skip


def _mtm_curves(fig: Grid, daily: pd.DataFrame) -> None:
    if daily.empty or "mtm_pnl" not in daily.columns:
        return
    by_date = daily.groupby("date", sort=True)[["realized_pnl", "mtm_pnl", "fees"]].sum()
    x = _epoch_ms(by_date.index.to_series())
    for label, values, color in (
        ("cumulative realized", by_date["realized_pnl"].cumsum(), PNL),
        ("cumulative mark-to-market (net of fees)", by_date["mtm_pnl"].cumsum(), GAIN),
    ):
        fig.add(
            {"type": "scatter", "x": x, "y": values.to_numpy(), "name": label, "mode": "lines",
             "line": dict(color=color)},
            3, 1,
        )  # fmt: skip


def _waterfall(fig: Grid, results: list[SecurityResult]) -> None:
    spread = sum(r.analytics["spread_capture"] for r in results)
    inventory = sum(r.analytics["inventory_pnl"] for r in results)
    fees = sum(r.analytics["fees"] for r in results)
    fig.add(
        {
            "type": "waterfall",
            "x": ["spread capture", "inventory P&L", "fees", "mark-to-market"],
            "y": [spread, inventory, -fees, 0.0],
            "measure": ["relative", "relative", "relative", "total"],
            "increasing": dict(marker=dict(color=GAIN)),
            "decreasing": dict(marker=dict(color=LOSS)),
            "totals": dict(marker=dict(color=PNL)),
            "showlegend": False,
            "name": "P&L",
        },
        3, 2,
    )  # fmt: skip
