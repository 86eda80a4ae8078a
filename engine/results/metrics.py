"""Per-security and portfolio statistics (SPEC §5.3, §0): pure functions of fill arrays.

Sums of P&L use exactly rounded summation (`math.fsum`), so totals do not depend on the order in
which fills or securities are added; the reference's summary totals equal these to the last bit.
A security's fills are condensed into `FillStats` (counts and the *exact partials* of its sums),
so the portfolio's figures are the same to the last bit whether a run kept every trade or only
compact results (a sweep cell): fsum over the partials of every security is fsum over every fill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.results.exact import exact_partials_nb, segment_fsums_nb
from engine.types import (
    DAILY_ANALYTICS_COLUMNS,
    DAILY_COLUMNS,
    NS_PER_DAY,
    DailyArrays,
    FillStats,
    SecurityResult,
)

TRADING_DAYS_PER_YEAR = 252
_DAILY_DTYPES = ("datetime64[ns]", "f8", "f8", "i8")


def fill_stats(realized: np.ndarray) -> FillStats:
    """Counts and exact partial sums of one security's realized P&L per fill."""
    realized = np.ascontiguousarray(realized, dtype=np.float64)
    gains = exact_partials_nb(realized[realized > 0])
    losses = exact_partials_nb(realized[realized < 0])
    return FillStats(
        fills=len(realized),
        wins=len(realized) - int(np.count_nonzero(realized <= 0)),
        realized=tuple(exact_partials_nb(np.concatenate((gains, losses))).tolist()),
        gains=tuple(gains.tolist()),
        losses=tuple(losses.tolist()),
    )


def _segment_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The exactly rounded sum of each segment values[start:end] (math.fsum's, to the bit)."""
    values = np.ascontiguousarray(values, np.float64)
    if np.isfinite(values).all():
        return segment_fsums_nb(values, starts, ends)
    flat = values.tolist()  # inf or NaN: math.fsum's own rules for them
    return np.array(
        [math.fsum(flat[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    )


def daily_frame(
    dates: np.ndarray, realized: np.ndarray, trades: np.ndarray, **analytics: np.ndarray
) -> pd.DataFrame:
    """DAILY_COLUMNS from each date, its realized P&L and its fill count, then the
    DAILY_ANALYTICS_COLUMNS given as keywords (mtm_pnl=..., fees=...)."""
    return pd.DataFrame(
        {
            "date": dates.astype("datetime64[ns]"),
            "realized_pnl": realized,
            "cumulative_pnl": np.cumsum(realized),
            "trades": trades.astype(np.int64),
            **analytics,
        },
        columns=[*DAILY_COLUMNS, *analytics],
    )


def empty_daily() -> pd.DataFrame:
    """A daily frame with no dates."""
    return pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in zip(DAILY_COLUMNS, _DAILY_DTYPES, strict=True)}
    )


def daily_from_fills(timestamp_ns: np.ndarray, realized: np.ndarray) -> pd.DataFrame:
    """Realized P&L (exact sum), its running total and the fill count per calendar date."""
    if len(realized) == 0:
        return empty_daily()
    days = timestamp_ns // NS_PER_DAY
    if np.any(days[1:] < days[:-1]):  # rows stepped back over midnight: group by date anyway
        order = np.argsort(days, kind="stable")
        days, realized = days[order], realized[order]
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(days)]
    sums = _segment_sums(realized, starts, ends)
    return daily_frame((days[starts] * NS_PER_DAY).view("datetime64[ns]"), sums, ends - starts)


def daily_pnl(trades: pd.DataFrame) -> pd.DataFrame:
    """`daily_from_fills` of a trade table (timestamp, realized_pnl columns)."""
    timestamps = trades["timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    return daily_from_fills(timestamps, trades["realized_pnl"].to_numpy(np.float64))


def sharpe_ratio(daily: np.ndarray | pd.Series) -> float:
    """mean/std(ddof=1)·√252 of daily P&L; 0 with one day or no dispersion (SPEC §5.3-2)."""
    values = np.asarray(daily, dtype=np.float64)
    if len(values) <= 1:
        return 0.0
    mean = values.sum() / len(values)
    std = math.sqrt(((values - mean) ** 2).sum() / (len(values) - 1))
    if not std > 0:
        return 0.0
    return float(mean / std * math.sqrt(TRADING_DAYS_PER_YEAR))


def drawdown(cumulative: np.ndarray | pd.Series) -> tuple[float, float]:
    """(max drawdown, max drawdown %) of a running P&L series (SPEC §5.3-3)."""
    values = np.asarray(cumulative, dtype=np.float64)
    if len(values) == 0:
        return 0.0, 0.0
    running_max = np.maximum.accumulate(values)
    max_dd = float((values - running_max).min())
    if not (running_max > 0).any():
        return max_dd, 0.0
    return max_dd, float(max_dd / np.where(running_max == 0, 1.0, running_max).max() * 100)


def calmar_ratio(total: float, max_dd: float) -> float:
    """total/|max drawdown|, or the total itself when there is no drawdown and it is positive."""
    if max_dd < 0:
        return total / abs(max_dd)
    return total if total > 0 else 0.0


def _statistics(stats: Sequence[FillStats], daily: np.ndarray, dd: tuple[float, float]) -> dict:
    """SPEC §5.3 from the fills' stats, daily P&L and the drawdown of the running P&L."""
    count = sum(s.fills for s in stats)
    total = math.fsum([p for s in stats for p in s.realized])
    gains = math.fsum([p for s in stats for p in s.gains])
    losses = math.fsum([p for s in stats for p in s.losses])
    max_dd, max_dd_pct = dd
    return {
        "trades": count,
        "total_pnl": total,
        "avg_pnl_per_trade": total / count if count else 0.0,
        "sharpe_ratio": sharpe_ratio(daily),
        "max_drawdown": max_dd,
        "max_drawdown_pct": max_dd_pct,
        "calmar_ratio": calmar_ratio(total, max_dd),
        "win_rate": float(sum(s.wins for s in stats) / count * 100) if count else 0.0,
        "profit_factor": gains / abs(losses) if losses < 0 else gains,
    }


def trade_metrics(stats: FillStats, daily: np.ndarray, dd: tuple[float, float]) -> dict:
    """SPEC §5.3 for one security (its stats, realized P&L per date and the `drawdown` of its
    running realized P&L per fill): avg_pnl_per_trade, sharpe_ratio, max_drawdown(_pct),
    calmar_ratio, win_rate, profit_factor."""
    figures = _statistics([stats], daily, dd)
    del figures["trades"], figures["total_pnl"]
    return figures


def daily_frame_of(daily: pd.DataFrame | DailyArrays) -> pd.DataFrame:
    """A result's daily P&L as a frame (a compact result holds `DailyArrays`)."""
    if not isinstance(daily, DailyArrays):
        return daily
    return daily_frame(daily.date, daily.realized_pnl, daily.trades, mtm_pnl=daily.mtm_pnl,
                       fees=daily.fees)  # fmt: skip


def daily_columns(daily: pd.DataFrame | DailyArrays) -> dict[str, np.ndarray]:
    """date (int64 ns), realized_pnl, trades, and the DAILY_ANALYTICS_COLUMNS it has."""
    if isinstance(daily, DailyArrays):
        return {"date": daily.date.view(np.int64), "realized_pnl": daily.realized_pnl,
                "trades": daily.trades, "mtm_pnl": daily.mtm_pnl, "fees": daily.fees}  # fmt: skip
    columns = {
        "date": daily["date"].to_numpy("datetime64[ns]").view(np.int64),
        "realized_pnl": daily["realized_pnl"].to_numpy(np.float64),
        "trades": daily["trades"].to_numpy(np.int64),
    }
    for name in DAILY_ANALYTICS_COLUMNS:
        if name in daily:
            columns[name] = daily[name].to_numpy(np.float64)
    return columns


def combined_daily(results: Sequence[SecurityResult]) -> pd.DataFrame:
    """The portfolio's daily P&L: all securities summed per date (exactly), in date order;
    securities are taken in name order, so the sums do not depend on their order. DAILY_COLUMNS,
    then the analytics' `mtm_pnl` and `fees` (ANALYTICS.md A9, A11) when every result has them."""
    ordered = sorted(results, key=lambda r: r.security)
    parts = [daily_columns(r.daily) for r in ordered]
    analytics = all(set(DAILY_ANALYTICS_COLUMNS) <= part.keys() for part in parts)
    parts = [part for part in parts if len(part["date"])]
    if not parts:
        daily = empty_daily()
        return daily.assign(mtm_pnl=0.0, fees=0.0) if analytics and results else daily
    dates = np.concatenate([part["date"] for part in parts])
    order = np.argsort(dates, kind="stable")
    dates = dates[order]
    starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1]])
    ends = np.r_[starts[1:], len(dates)]

    def summed(column: str) -> np.ndarray:
        values = np.concatenate([part[column] for part in parts])[order]
        return _segment_sums(values, starts, ends)

    trades = np.concatenate([part["trades"] for part in parts])[order]
    extra = {name: summed(name) for name in DAILY_ANALYTICS_COLUMNS} if analytics else {}
    return daily_frame(dates[starts].view("datetime64[ns]"), summed("realized_pnl"),
                       np.add.reduceat(trades, starts), **extra)  # fmt: skip


def portfolio_metrics(
    results: Sequence[SecurityResult], daily: pd.DataFrame | None = None
) -> dict[str, float]:
    """All securities together on the time-ordered combined daily P&L curve (SPEC §0); `daily`:
    their `combined_daily`, when already computed."""
    daily = combined_daily(results) if daily is None else daily
    stats = _statistics(
        [r.stats for r in results],
        daily["realized_pnl"].to_numpy(),
        drawdown(daily["cumulative_pnl"].to_numpy()),
    )
    del stats["avg_pnl_per_trade"]
    return stats
