"""The portfolio's fill-quality figures (ANALYTICS.md A6, A7, A8, A11 pooled over securities),
from each security's analytics; `engine.run.Portfolio` carries them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from engine.types import SecurityResult


def portfolio_figures(results: Sequence[SecurityResult], realized_pnl: float) -> dict | None:
    """All securities together: `fees` summed and `net_pnl = realized_pnl - fees` (A11);
    `edge_bps` and `markout_bps_60` as A6 over every security's fills pooled (1e4 * sum of the
    values / sum of p * q over the fills with the mid defined); `fill_ratio` = all quote fills /
    all quotes placed (A7); `uptime_two_sided` and `avg_abs_position` are the securities' values
    weighted by their `window_seconds` (the A7 time basis: share of all the securities' quoting
    time; the position is in each security's own shares). None when some result has no analytics
    (a run stored before them): `Portfolio` then has them NaN."""
    if any(not r.analytics or r.markouts is None for r in results):
        return None
    figures = [r.analytics for r in results]
    pooled = [all_row(r.markouts) for r in results]
    fees = math.fsum(f["fees"] for f in figures)
    window = sum(f["window_seconds"] for f in figures)
    placed = sum(f["quotes_placed"] for f in figures)

    def ratio(value: str, basis: str) -> float:
        denominator = sum(float(row[basis]) for row in pooled)
        return (
            1e4 * sum(float(row[value]) for row in pooled) / denominator
            if denominator
            else math.nan
        )

    def weighted(name: str) -> float:
        return sum(f[name] * f["window_seconds"] for f in figures) / window if window else math.nan

    return {
        "fees": fees,
        "net_pnl": realized_pnl - fees,
        "edge_bps": ratio("edge_total", "notional_mid_0"),
        "markout_bps_60": ratio("markout_total_60", "notional_mid_60"),
        "uptime_two_sided": weighted("uptime_two_sided"),
        "fill_ratio": sum(f["quote_fills"] for f in figures) / placed if placed else math.nan,
        "avg_abs_position": weighted("avg_abs_position"),
    }


def all_row(markouts):
    """The 'all' row of a result's markouts: a frame's first row, or a compact result's dict."""
    return markouts if isinstance(markouts, dict) else markouts.iloc[0]
