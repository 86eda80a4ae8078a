"""Per-security and portfolio statistics (SPEC §5.3, §0): pure functions of trade tables.

Sums of P&L use exactly rounded summation (`math.fsum`), so totals do not depend on the order in
which fills or securities are added; the reference's summary totals equal these to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.types import DAILY_COLUMNS, NS_PER_DAY, SecurityResult

TRADING_DAYS_PER_YEAR = 252
_DAILY_DTYPES = ("datetime64[ns]", "f8", "f8", "i8")


def _daily_frame(dates: np.ndarray, realized: np.ndarray, trades: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": dates.astype("datetime64[ns]"),
            "realized_pnl": realized,
            "cumulative_pnl": np.cumsum(realized),
            "trades": trades.astype(np.int64),
        },
        columns=list(DAILY_COLUMNS),
    )


def daily_pnl(trades: pd.DataFrame) -> pd.DataFrame:
    """Realized P&L (exact sum), its running total and the fill count per calendar date."""
    if trades.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(DAILY_COLUMNS, _DAILY_DTYPES, strict=True)}
        )
    days = trades["timestamp"].to_numpy("datetime64[ns]").view(np.int64) // NS_PER_DAY
    order = np.argsort(days, kind="stable")  # already sorted unless rows step back over midnight
    days = days[order]
    realized = trades["realized_pnl"].to_numpy()[order].tolist()
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(days)]
    sums = np.array([math.fsum(realized[a:b]) for a, b in zip(starts, ends, strict=True)])
    return _daily_frame((days[starts] * NS_PER_DAY).view("datetime64[ns]"), sums, ends - starts)


def sharpe_ratio(daily: pd.Series) -> float:
    """mean/std(ddof=1)·√252 of daily P&L; 0 with one day or no dispersion (SPEC §5.3-2)."""
    if len(daily) <= 1:
        return 0.0
    std = daily.std(ddof=1)
    if not std > 0:
        return 0.0
    return float(daily.mean() / std * math.sqrt(TRADING_DAYS_PER_YEAR))


def drawdown(cumulative: pd.Series) -> tuple[float, float]:
    """(max drawdown, max drawdown %) of a running P&L series (SPEC §5.3-3)."""
    if cumulative.empty:
        return 0.0, 0.0
    running_max = cumulative.cummax()
    max_dd = float((cumulative - running_max).min())
    if not (running_max > 0).any():
        return max_dd, 0.0
    return max_dd, float(max_dd / running_max.replace(0, 1).max() * 100)


def calmar_ratio(total: float, max_dd: float) -> float:
    """total/|max drawdown|, or the total itself when there is no drawdown and it is positive."""
    if max_dd < 0:
        return total / abs(max_dd)
    return total if total > 0 else 0.0


def _statistics(realized: pd.Series, daily: pd.Series, cumulative: pd.Series) -> dict[str, float]:
    """SPEC §5.3 from fills' realized P&L, daily P&L and the running P&L for the drawdown."""
    values = realized.to_numpy(dtype=np.float64)
    count = len(values)
    total = math.fsum(
        values.tolist()
    )  # fsum is several times faster on floats than on numpy scalars
    max_dd, max_dd_pct = drawdown(cumulative)
    wins = math.fsum(values[values > 0].tolist())
    losses = math.fsum(values[values < 0].tolist())
    return {
        "trades": count,
        "total_pnl": total,
        "avg_pnl_per_trade": total / count if count else 0.0,
        "sharpe_ratio": sharpe_ratio(daily),
        "max_drawdown": max_dd,
        "max_drawdown_pct": max_dd_pct,
        "calmar_ratio": calmar_ratio(total, max_dd),
        "win_rate": float((values > 0).sum() / count * 100) if count else 0.0,
        "profit_factor": wins / abs(losses) if losses < 0 else wins,
    }


def trade_metrics(trades: pd.DataFrame, daily: pd.DataFrame | None = None) -> dict[str, float]:
    """SPEC §5.3 for one security's trades in event order (`daily` if already computed):
    avg_pnl_per_trade, sharpe_ratio, max_drawdown(_pct), calmar_ratio, win_rate, profit_factor."""
    daily = daily_pnl(trades) if daily is None else daily
    stats = _statistics(trades["realized_pnl"], daily["realized_pnl"], trades["pnl"])
    del stats["trades"], stats["total_pnl"]
    return stats


def combined_daily(results: Sequence[SecurityResult]) -> pd.DataFrame:
    """The portfolio's daily realized P&L: all securities summed per date, in date order."""
    frames = [r.daily for r in sorted(results, key=lambda r: r.security) if not r.daily.empty]
    if not frames:
        return daily_pnl(
            pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns]"), "realized_pnl": []})
        )
    stacked = pd.concat(frames, ignore_index=True)
    by_date = stacked.groupby("date", sort=True)
    return _daily_frame(
        by_date.size().index.to_numpy(),
        by_date["realized_pnl"].agg(math.fsum).to_numpy(np.float64),
        by_date["trades"].sum().to_numpy(),
    )


def portfolio_metrics(results: Sequence[SecurityResult]) -> dict[str, float]:
    """All securities together on the time-ordered combined daily P&L curve (SPEC §0)."""
    trades = [r.trades["realized_pnl"] for r in results if not r.trades.empty]
    realized = pd.concat(trades, ignore_index=True) if trades else pd.Series([], dtype=np.float64)
    daily = combined_daily(results)
    stats = _statistics(realized, daily["realized_pnl"], daily["cumulative_pnl"])
    del stats["avg_pnl_per_trade"]
    return stats
