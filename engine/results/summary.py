"""One security's backtest summarised: the per-security figures of SPEC §3.7, §5.3 and the §0 row
counts, from the simulation's fills and final state."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.params import MarketMakingParams
from engine.results import metrics
from engine.sim.backtest import Simulation, trades_frame
from engine.types import NS_PER_DAY, TRADE, Events, RowCounts, SecurityResult


def _dates(timestamps_ns: np.ndarray) -> int:
    """How many calendar dates the timestamps touch (runs first: rows come nearly sorted)."""
    days = timestamps_ns // NS_PER_DAY
    runs = days[np.r_[True, days[1:] != days[:-1]]] if len(days) else days
    return int(np.unique(runs).size)


def summarise(
    security: str,
    strategy: str,
    events: Events,
    params: MarketMakingParams,
    sim: Simulation,
    counts: RowCounts | None = None,
) -> SecurityResult:
    """The result of one simulated security: trades, daily P&L and summary (SPEC §3.7, §5.3)."""
    trades = trades_frame(events, sim.fills)
    state = sim.state
    counts = counts or RowCounts(rows_read=len(events), rows_kept=len(events))
    unrealized = 0.0
    if state.position != 0 and not np.isnan(state.last_price):
        unrealized = (state.last_price - state.entry_price) * state.position
    first_ns, last_ns = (
        (events.timestamp_ns.min(), events.timestamp_ns.max()) if len(events) else (None, None)
    )
    daily = metrics.daily_pnl(trades)
    realized = math.fsum(trades["realized_pnl"].tolist())
    summary = {
        "security": security,
        "strategy": strategy,
        "trades": len(trades),
        "buy_trades": int((trades["side"] == "buy").sum()),
        "sell_trades": int((trades["side"] == "sell").sum()),
        "volume": int(trades["fill_qty"].sum()),
        "notional": float((trades["fill_price"] * trades["fill_qty"]).sum()),
        "final_position": int(state.position),
        "realized_pnl": realized,
        "unrealized_pnl": float(unrealized),
        "total_pnl": realized + unrealized,
        "last_price": float(state.last_price),
        "rows_read": counts.rows_read,
        "rows_kept": counts.rows_kept,
        "rows_in_window": int(state.rows_in_window),
        "bid_rows": int(state.bid_rows),
        "ask_rows": int(state.ask_rows),
        "trade_rows": int(state.trade_rows),
        "dropped_bad_timestamp": counts.dropped_bad_timestamp,
        "dropped_bad_price": counts.dropped_bad_price,
        "dropped_nonpositive_price": counts.dropped_nonpositive_price,
        "dropped_nonfinite_price": counts.dropped_nonfinite_price,
        "dropped_bad_size": counts.dropped_bad_size,
        "market_dates": _dates(events.timestamp_ns[events.kind == TRADE]),
        "strategy_dates": _dates(events.timestamp_ns[sim.fills.row]),
        "first_date": pd.Timestamp(first_ns).date() if first_ns is not None else None,
        "last_date": pd.Timestamp(last_ns).date() if last_ns is not None else None,
        "stop_loss_triggers": int(state.stop_loss_triggers),
        **metrics.trade_metrics(trades, daily),
    }
    return SecurityResult(
        security=security,
        strategy=strategy,
        params=params.as_dict(),
        trades=trades,
        daily=daily,
        summary=summary,
    )
