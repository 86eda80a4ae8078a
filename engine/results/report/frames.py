"""The run report's tables, from the `Run` in memory (nothing is read back from the store).

Securities and failures are ordered by name, parameters by key and moments in naive UTC, so a run
renders the same whether it comes straight from the engine or back from the store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.run import Run
from engine.types import DAILY_ANALYTICS_COLUMNS, DAILY_COLUMNS, SecurityResult

NS_PER_MINUTE = 60 * 1_000_000_000
SERIES_COLUMNS = ("security", "minute", "pnl", "position", "drawdown")


def ordered(run: Run) -> list[SecurityResult]:
    """The run's results, by security name."""
    return sorted(run.results, key=lambda r: r.security)


def summary_records(run: Run) -> list[dict]:
    """One row per security: its summary figures, resolved `params` and `days` (daily rows, the
    basis of its Sharpe)."""
    return [
        {**r.summary, "params": dict(sorted(r.params.items())), "days": len(r.daily)}
        for r in ordered(run)
    ]


def failure_records(run: Run) -> list[dict]:
    """One row per failed security, by name."""
    return [
        dict(security=f.security, error_type=f.error_type, attempts=f.attempts, message=f.message)
        for f in sorted(run.failures, key=lambda f: f.security)
    ]


def daily_frame(run: Run) -> pd.DataFrame:
    """All securities' daily realized P&L: security + DAILY_COLUMNS (+ mtm_pnl and fees), by
    security and date."""
    columns = list(DAILY_COLUMNS)  # and A9/A11's mtm_pnl and fees when every security has them
    if run.results and all(set(DAILY_ANALYTICS_COLUMNS) <= set(r.daily) for r in run.results):
        columns += DAILY_ANALYTICS_COLUMNS
    parts = [r.daily[columns].assign(security=r.security) for r in ordered(run) if len(r.daily)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in ("security", *columns)})
    daily = pd.concat(parts, ignore_index=True)[["security", *columns]]
    daily["date"] = pd.to_datetime(daily["date"]).astype("datetime64[ns]")
    return daily.sort_values(["security", "date"], kind="stable", ignore_index=True)


def minute_series(trades: pd.DataFrame) -> pd.DataFrame:
    """Per minute of one security's fills: the last running realized P&L (`pnl`) and position, and
    the deepest drawdown of `pnl` below its running peak; equals, per minute, a SQL
    `arg_max(pnl, seq)`, `arg_max(position, seq)`, `min(pnl - max(pnl) OVER (ORDER BY seq))`."""
    if trades.empty:
        return pd.DataFrame(
            {
                "minute": pd.Series(dtype="datetime64[ns]"),
                **{c: pd.Series(dtype="float64") for c in ("pnl", "position", "drawdown")},
            }
        )
    by_seq = np.argsort(trades["seq"].to_numpy(), kind="stable")
    pnl = trades["pnl"].to_numpy("float64")[by_seq]
    drawdown = pnl - np.maximum.accumulate(pnl)
    minute = trades["timestamp"].to_numpy("datetime64[ns]").view("int64")[by_seq] // NS_PER_MINUTE
    by_minute = np.argsort(minute, kind="stable")  # fills keep their event order within a minute
    minute, pnl, drawdown = minute[by_minute], pnl[by_minute], drawdown[by_minute]
    position = trades["position"].to_numpy()[by_seq][by_minute]
    starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
    lasts = np.r_[starts[1:], len(minute)] - 1
    return pd.DataFrame(
        {
            "minute": (minute[starts] * NS_PER_MINUTE).view("datetime64[ns]"),
            "pnl": pnl[lasts],
            "position": position[lasts],
            "drawdown": np.minimum.reduceat(drawdown, starts),
        }
    )


def series_frame(run: Run) -> pd.DataFrame:
    """`minute_series` of every security, with a leading security column, by security."""
    parts = [minute_series(r.trades).assign(security=r.security) for r in ordered(run)]
    if not parts:
        return minute_series(pd.DataFrame()).assign(security=pd.Series(dtype="str"))[
            list(SERIES_COLUMNS)
        ]
    return pd.concat(parts, ignore_index=True)[list(SERIES_COLUMNS)]
