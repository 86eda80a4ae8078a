"""Per-security and portfolio statistics (SPEC §5.3, §0): pure functions of trade tables.

Sums of P&L use exactly rounded summation (`math.fsum`), so totals do not depend on the order in
which fills or securities are added; the reference's summary totals equal these to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.types import DAILY_COLUMNS, SecurityResult

TRADING_DAYS_PER_YEAR = 252


def daily_pnl(trades: pd.DataFrame) -> pd.DataFrame:
    """Realized P&L, its running total and the fill count per calendar date of the fills."""
    if trades.empty:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(DAILY_COLUMNS, ("datetime64[ns]", "f8", "f8", "i8"), strict=True)
            }
        )
    by_day = trades.groupby(trades["timestamp"].dt.normalize(), sort=True)["realized_pnl"]
    daily = pd.DataFrame(
        {
            "date": by_day.size().index.astype("datetime64[ns]"),
            "realized_pnl": by_day.agg(math.fsum).to_numpy(dtype=np.float64),
            "trades": by_day.size().to_numpy().astype(np.int64),
        }
    )
    daily["cumulative_pnl"] = daily["realized_pnl"].cumsum()
    return daily[list(DAILY_COLUMNS)]


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


def trade_metrics(trades: pd.DataFrame) -> dict[str, float]:
    """SPEC §5.3 for one security's trades in event order."""
    count = len(trades)
    if count == 0:
        return dict(
            avg_pnl_per_trade=0.0,
            sharpe_ratio=0.0,
            max_drawdown=0.0,
            max_drawdown_pct=0.0,
            calmar_ratio=0.0,
            win_rate=0.0,
            profit_factor=0.0,
        )
    realized = trades["realized_pnl"]
    total = math.fsum(realized)
    daily = daily_pnl(trades)["realized_pnl"]
    max_dd, max_dd_pct = drawdown(trades["pnl"])
    wins = realized[realized > 0].sum()
    losses = realized[realized < 0].sum()
    return {
        "avg_pnl_per_trade": total / count,
        "sharpe_ratio": sharpe_ratio(daily),
        "max_drawdown": max_dd,
        "max_drawdown_pct": max_dd_pct,
        "calmar_ratio": calmar_ratio(total, max_dd),
        "win_rate": float((realized > 0).sum() / count * 100),
        "profit_factor": float(wins / abs(losses)) if losses < 0 else float(wins),
    }


def portfolio_metrics(results: Sequence[SecurityResult]) -> dict[str, float]:
    """All securities together on the time-ordered combined daily P&L curve (SPEC §0)."""
    trades = [r.trades for r in results if not r.trades.empty]
    count = sum(len(t) for t in trades)
    if count == 0:
        return dict(
            trades=0,
            total_pnl=0.0,
            sharpe_ratio=0.0,
            max_drawdown=0.0,
            max_drawdown_pct=0.0,
            calmar_ratio=0.0,
            win_rate=0.0,
            profit_factor=0.0,
        )
    combined = pd.concat(trades, ignore_index=True)
    realized = combined["realized_pnl"]
    daily = combined_daily(results)["realized_pnl"]
    total = math.fsum(realized)
    max_dd, max_dd_pct = drawdown(daily.cumsum())
    wins = realized[realized > 0].sum()
    losses = realized[realized < 0].sum()
    return {
        "trades": count,
        "total_pnl": total,
        "sharpe_ratio": sharpe_ratio(daily),
        "max_drawdown": max_dd,
        "max_drawdown_pct": max_dd_pct,
        "calmar_ratio": calmar_ratio(total, max_dd),
        "win_rate": float((realized > 0).sum() / count * 100),
        "profit_factor": float(wins / abs(losses)) if losses < 0 else float(wins),
    }


def combined_daily(results: Sequence[SecurityResult]) -> pd.DataFrame:
    """The portfolio's daily realized P&L: all securities summed per date, in date order."""
    frames = [r.daily for r in sorted(results, key=lambda r: r.security) if not r.daily.empty]
    if not frames:
        return daily_pnl(pd.DataFrame(columns=["timestamp", "realized_pnl"]))
    stacked = pd.concat(frames, ignore_index=True)
    out = (
        stacked.groupby("date", sort=True)
        .agg(realized_pnl=("realized_pnl", "sum"), trades=("trades", "sum"))
        .reset_index()
    )
    out["cumulative_pnl"] = out["realized_pnl"].cumsum()
    return out[list(DAILY_COLUMNS)]
