"""One security's backtest summarised: the per-security figures of SPEC §3.7, §5.3 and the §0 row
counts, from the simulation's fill records and final state.

Everything is computed from arrays, so a sweep cell that keeps no trade table costs about a
millisecond here; the trade table (SPEC §5.1) is built only when it is kept. Figures that depend
on the events alone (`EventFacts`) are computed once per security, not once per cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.params import MarketMakingParams
from engine.results import metrics
from engine.results.analytics import analyse
from engine.results.market import Market, market_of
from engine.sim.backtest import Simulation, trades_frame
from engine.types import BUY, NS_PER_DAY, TRADE, Events, RowCounts, SecurityResult


@dataclass(frozen=True)
class EventFacts:
    """What the summary needs from the events alone (the same for every cell of a sweep)."""

    market_dates: int  # dates with at least one TRADE row
    first_date: object  # datetime.date or None
    last_date: object
    market: Market | None = None  # the analytics' market (for many cells; else per cell)


def _dates(timestamps_ns: np.ndarray) -> int:
    """How many calendar dates the timestamps touch (runs first: rows come nearly sorted)."""
    days = timestamps_ns // NS_PER_DAY
    runs = days[np.r_[True, days[1:] != days[:-1]]] if len(days) else days
    return int(np.unique(runs).size)


def event_facts(events: Events, *, with_market: bool = False) -> EventFacts:
    """The event-only figures of a security; `with_market` adds its analytics `Market` (worth
    it when many cells are summarised on the same events: a sweep)."""
    market = market_of(events) if with_market else None
    if not len(events):
        return EventFacts(0, None, None, market)
    stamps = events.timestamp_ns
    return EventFacts(
        market_dates=_dates(stamps[events.kind == TRADE]),
        first_date=pd.Timestamp(stamps.min()).date(),
        last_date=pd.Timestamp(stamps.max()).date(),
        market=market,
    )


def summarise(
    security: str,
    strategy: str,
    events: Events,
    params: MarketMakingParams,
    sim: Simulation,
    counts: RowCounts | None = None,
    *,
    keep_trades: bool = True,
    keep_fills: bool | None = None,
    facts: EventFacts | None = None,
) -> SecurityResult:
    """The result of one simulated security: daily P&L, summary, and (if kept) the trades and
    the per-fill analytics (`keep_fills`, by default with the trades)."""
    fills, state = sim.fills, sim.state
    counts = counts or RowCounts(rows_read=len(events), rows_kept=len(events))
    facts = facts or event_facts(events)
    realized = np.ascontiguousarray(fills.realized_pnl, dtype=np.float64)
    fill_ns = events.timestamp_ns[fills.row]
    stats = metrics.fill_stats(realized)
    daily = metrics.daily_from_fills(fill_ns, realized)
    total = math.fsum(stats.realized)
    unrealized = 0.0
    if state.position != 0 and not np.isnan(state.last_price):
        unrealized = (state.last_price - state.entry_price) * state.position
    qty = np.ascontiguousarray(fills.fill_qty, dtype=np.int64)
    buys = int(np.count_nonzero(fills.side == BUY))
    summary = {
        "security": security,
        "strategy": strategy,
        "trades": len(fills),
        "buy_trades": buys,
        "sell_trades": len(fills) - buys,
        "volume": int(qty.sum()),
        "notional": float((np.ascontiguousarray(fills.fill_price, dtype=np.float64) * qty).sum()),
        "final_position": int(state.position),
        "realized_pnl": total,
        "unrealized_pnl": float(unrealized),
        "total_pnl": total + unrealized,
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
        "market_dates": facts.market_dates,
        "strategy_dates": _dates(fill_ns),
        "first_date": facts.first_date,
        "last_date": facts.last_date,
        "stop_loss_triggers": int(state.stop_loss_triggers),
        **metrics.trade_metrics(stats, daily, np.asarray(fills.pnl, dtype=np.float64)),
        "dropped_nonfinite_price": counts.dropped_nonfinite_price,
        "dropped_bad_size": counts.dropped_bad_size,
    }
    trades = trades_frame(events, fills) if keep_trades else None
    # ANALYTICS.md A1-A11: fill quality, quoting, inventory, mark-to-market and fees.
    dates = daily["date"].to_numpy()
    fills_kept = keep_trades if keep_fills is None else keep_fills
    analysis = analyse(security, events, sim, params, total, dates, keep_fills=fills_kept,
                       trades=trades, market=facts.market)  # fmt: skip
    daily["mtm_pnl"], daily["fees"] = analysis.daily_mtm, analysis.daily_fees  # a fresh frame
    return SecurityResult(
        security=security,
        strategy=strategy,
        params=params.as_dict(),
        trades=trades,
        daily=daily,
        summary=summary,
        stats=stats,
        analytics=analysis.figures,
        markouts=analysis.markouts,
        fill_analytics=analysis.fills,
    )
