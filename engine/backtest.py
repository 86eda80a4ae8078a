"""Run one strategy over one security's events: arrays in, trades and summary out.

This is the Python edge of the compiled kernels (SPEC §3-§4): it validates and converts inputs,
drives the kernel (growing its output when it fills up) and turns the fill records into the
trade table, daily P&L and per-security summary (SPEC §5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine import metrics, strategies
from engine.params import MarketMakingParams
from engine.session import MAX_FILLS_PER_ROW
from engine.types import (
    BUY,
    FILL_DTYPE,
    NS_PER_DAY,
    TRADE,
    TRADE_COLUMNS,
    Events,
    RowCounts,
    SecurityResult,
    new_state,
)


@dataclass
class Simulation:
    """The raw kernel output: fill records (row index into the events) and the final state."""

    fills: np.recarray
    state: np.record


def simulate(
    strategy: str, events: Events, params: MarketMakingParams, *, capacity: int | None = None
) -> Simulation:
    """Run the compiled strategy loop over all rows (SPEC §3.2), in file order."""
    run_nb = strategies.get(strategy).run_nb
    timestamp = np.ascontiguousarray(events.timestamp_ns, dtype=np.int64)
    kind = np.ascontiguousarray(events.kind, dtype=np.int8)
    price = np.ascontiguousarray(events.price, dtype=np.float64)
    # A NaN size is "no size": `volume > 0` is false, so it empties a book side exactly as 0
    # does (SPEC §2-2), and a NaN print fills nothing (engine/fills.py).
    volume = np.ascontiguousarray(events.volume, dtype=np.float64)
    state, quotes = new_state()
    if capacity is None:  # room for most runs; the kernel stops and resumes when it fills up
        capacity = 1024 + int(np.count_nonzero(kind == TRADE)) // 2
    out = np.empty(capacity, dtype=FILL_DTYPE).view(np.recarray)
    row, n = 0, len(kind)
    kernel_params = params.kernel()
    while True:
        row = run_nb(timestamp, kind, price, volume, kernel_params, state, quotes, out, row)
        if row >= n:
            break
        bigger = np.empty(2 * len(out) + MAX_FILLS_PER_ROW, dtype=FILL_DTYPE).view(np.recarray)
        bigger[: len(out)] = out
        out = bigger
    return Simulation(fills=out[: state[0].n_fills], state=state[0])


def trades_frame(events: Events, fills: np.recarray) -> pd.DataFrame:
    """Fill records as the trade table of SPEC §5.1, in event order, with a sequence number."""
    return pd.DataFrame(
        {
            "seq": np.arange(1, len(fills) + 1, dtype=np.int64),
            "timestamp": events.timestamp_ns[fills.row].view("datetime64[ns]"),
            "side": np.where(fills.side == BUY, "buy", "sell"),
            "fill_price": fills.fill_price.astype(np.float64),
            "fill_qty": fills.fill_qty.astype(np.int64),
            "realized_pnl": fills.realized_pnl.astype(np.float64),
            "position": fills.position.astype(np.int64),
            "pnl": fills.pnl.astype(np.float64),
        },
        columns=list(TRADE_COLUMNS),
    )


def _dates(timestamps_ns: np.ndarray) -> int:
    """How many calendar dates the timestamps touch (runs first: rows come nearly sorted)."""
    days = timestamps_ns // NS_PER_DAY
    runs = days[np.r_[True, days[1:] != days[:-1]]] if len(days) else days
    return int(np.unique(runs).size)


def run_security(
    security: str,
    strategy: str,
    events: Events,
    params: MarketMakingParams,
    counts: RowCounts | None = None,
) -> SecurityResult:
    """Backtest one security and summarise it (SPEC §3.7, §5.3, §0 row counts)."""
    sim = simulate(strategy, events, params)
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
