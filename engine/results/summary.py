"""One security's backtest summarised: the per-security figures of SPEC §3.7, §5.3 and the §0 row
counts, from the simulation's fill records and final state.

A sweep cell that keeps no trade table is summarised by one compiled walk over its fills
(`engine.results.compact_nb`, about 2 ms for 30 k fills); any other result by array passes over
them, the general path, which the compiled one equals to the bit. The trade table (SPEC §5.1) is
built only when it is kept. Figures that depend on the events alone (`EventFacts`) are computed
once per security, not once per cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.params import MarketMakingParams
from engine.results import compact_nb, metrics
from engine.results.analytics import (
    MARKOUT_KINDS,
    Analysis,
    analyse,
    analysis_of,
    half_life_of,
)
from engine.results.exact import MAX_PARTIALS, exact_partials_nb
from engine.results.market import Market, market_of
from engine.sim.backtest import Simulation, trades_frame
from engine.types import (
    BUY,
    NS_PER_DAY,
    TRADE,
    DailyArrays,
    Events,
    FillStats,
    RowCounts,
    SecurityResult,
)


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


@dataclass(frozen=True)
class FillFigures:
    """What a security's summary takes from its fills, by either path."""

    stats: FillStats
    daily: pd.DataFrame | DailyArrays  # DAILY_COLUMNS, DAILY_ANALYTICS_COLUMNS
    buys: int
    volume: int
    notional: float  # numpy's (pairwise) sum of price x quantity
    strategy_dates: int  # dates with at least one fill
    drawdown: tuple[float, float]  # metrics.drawdown of the running realized P&L
    analysis: Analysis


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
    compact: bool = True,
) -> SecurityResult:
    """The result of one simulated security: daily P&L, summary, and (if kept) the trades and
    the per-fill analytics (`keep_fills`, by default with the trades). A sweep cell (nothing
    kept, the `Market` in `facts`) is summarised by one compiled pass unless `compact` is off;
    the figures are the same to the bit."""
    fills, state = sim.fills, sim.state
    counts = counts or RowCounts(rows_read=len(events), rows_kept=len(events))
    facts = facts or event_facts(events)
    fills_kept = keep_trades if keep_fills is None else keep_fills
    trades = trades_frame(events, fills) if keep_trades else None
    parts = None
    if compact and not keep_trades and not fills_kept and facts.market is not None:
        parts = _compact_figures(security, events, params, sim, facts.market)
    if parts is None:
        parts = _fill_figures(security, events, params, sim, facts, trades, fills_kept)
    stats, analysis, total = parts.stats, parts.analysis, math.fsum(parts.stats.realized)
    by_date = metrics.daily_columns(parts.daily)
    unrealized = 0.0
    if state.position != 0 and not np.isnan(state.last_price):
        unrealized = (state.last_price - state.entry_price) * state.position
    summary = {
        "security": security,
        "strategy": strategy,
        "trades": len(fills),
        "buy_trades": parts.buys,
        "sell_trades": len(fills) - parts.buys,
        "volume": parts.volume,
        "notional": parts.notional,
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
        "strategy_dates": parts.strategy_dates,
        "first_date": facts.first_date,
        "last_date": facts.last_date,
        "stop_loss_triggers": int(state.stop_loss_triggers),
        **metrics.trade_metrics(stats, by_date["realized_pnl"], parts.drawdown),
        "dropped_nonfinite_price": counts.dropped_nonfinite_price,
        "dropped_bad_size": counts.dropped_bad_size,
    }
    return SecurityResult(
        security=security,
        strategy=strategy,
        params=params.as_dict(),
        trades=trades,
        daily=parts.daily,
        summary=summary,
        stats=stats,
        analytics=analysis.figures,
        markouts=analysis.markouts,
        fill_analytics=analysis.fills,
    )


def _fill_figures(security, events, params, sim, facts, trades, keep_fills) -> FillFigures:
    """The general path: array passes over the fill records, any order of rows and dates."""
    fills = sim.fills
    realized = np.ascontiguousarray(fills.realized_pnl, dtype=np.float64)
    fill_ns = events.timestamp_ns[fills.row]
    stats = metrics.fill_stats(realized)
    daily = metrics.daily_from_fills(fill_ns, realized)
    qty = np.ascontiguousarray(fills.fill_qty, dtype=np.int64)
    # ANALYTICS.md A1-A11: fill quality, quoting, inventory, mark-to-market and fees.
    analysis = analyse(security, events, sim, params, math.fsum(stats.realized),
                       daily["date"].to_numpy(), keep_fills=keep_fills, trades=trades,
                       market=facts.market)  # fmt: skip
    daily["mtm_pnl"], daily["fees"] = analysis.daily_mtm, analysis.daily_fees  # a fresh frame
    return FillFigures(
        stats=stats,
        daily=daily,
        buys=int(np.count_nonzero(fills.side == BUY)),
        volume=int(qty.sum()),
        notional=float((np.ascontiguousarray(fills.fill_price, dtype=np.float64) * qty).sum()),
        strategy_dates=_dates(fill_ns),
        drawdown=metrics.drawdown(np.asarray(fills.pnl, dtype=np.float64)),
        analysis=analysis,
    )


def _compact_figures(security, events, params, sim, market: Market) -> FillFigures | None:
    """The compiled path (engine.results.compact_nb) for a cell that keeps no per-fill table;
    None when its fills are outside the kernel's common case."""
    fills, dates = sim.fills, market.dates
    n, n_dates, minute_rows = len(fills), len(dates.days), dates.minute_rows
    if not n:
        return None
    out = (
        *(np.empty(n_dates, dtype=np.int64), np.empty(n_dates)),  # day, day_sum
        *(np.empty(n_dates, dtype=np.int64), np.empty(n_dates), np.empty(n_dates)),
        np.empty((n + 1, compact_nb.TERMS), order="F"),  # columns contiguous: numpy's sums
        np.zeros((len(MARKOUT_KINDS), 1 + 4 * market.row_mids.shape[1])),
        *(np.empty(MAX_PARTIALS), np.empty(MAX_PARTIALS), np.empty(minute_rows.shape)),
        *(np.zeros(5, dtype=np.int64), np.zeros(4)),
    )
    day, day_sum, day_count, day_fee, day_mtm, terms, sums, gains, losses = out[:9]
    positions, ints, floats = out[9:]
    window = int(sim.state.window_ns)
    n_days, n_gains, n_losses = compact_nb.compact_nb(
        fills.view(np.ndarray),
        np.ascontiguousarray(events.timestamp_ns, dtype=np.int64),
        market.row_mids,
        (float(params.maker_fee_bps), float(params.fee_per_fill)),
        float(params.max_position),
        window,
        (dates.days, dates.last_row, dates.last_mid, minute_rows.ravel()),
        float(dates.final_mid),
        (*out[:9], positions.ravel(), ints, floats),
    )
    if n_days == compact_nb.FALLBACK:
        return None
    gains, losses = gains[:n_gains].copy(), losses[:n_losses].copy()
    stats = FillStats(
        fills=n,
        wins=int(ints[compact_nb.WINS]),
        realized=tuple(exact_partials_nb(np.concatenate((gains, losses))).tolist()),
        gains=tuple(gains.tolist()),
        losses=tuple(losses.tolist()),
    )
    daily = DailyArrays(
        date=(day[:n_days] * NS_PER_DAY).view("datetime64[ns]"),
        realized_pnl=day_sum[:n_days],
        trades=day_count[:n_days],
        mtm_pnl=np.diff(day_mtm[:n_days], prepend=0.0),
        fees=0.0 + day_fee[:n_days],
    )
    max_dd = float(floats[compact_nb.MAX_DRAWDOWN])
    peak = floats[compact_nb.ANY_PEAK] > 0
    base = floats[compact_nb.DRAWDOWN_BASE]
    fees = terms[:n, compact_nb.FEE]
    inventory = {
        "max_abs_position": int(ints[compact_nb.MAX_ABS_POSITION]),
        "avg_abs_position": float(terms[:, compact_nb.HELD_SPAN].sum()) / window
        if window
        else math.nan,
        "time_at_limit": int(ints[compact_nb.TIME_AT_LIMIT]) / window if window else math.nan,
        "inventory_half_life_min": half_life_of(positions),
    }
    analysis = analysis_of(
        security,
        sim,
        sums,
        inventory,
        total_mtm=float(floats[compact_nb.TOTAL_MTM]) if len(events) else 0.0,
        fees=float(fees.sum()),
        realized_pnl=math.fsum(stats.realized),
        daily=(daily.mtm_pnl, daily.fees),
        compact=True,
    )
    return FillFigures(
        stats=stats,
        daily=daily,
        buys=int(ints[compact_nb.BUYS]),
        volume=int(ints[compact_nb.VOLUME]),
        notional=float(terms[:n, compact_nb.NOTIONAL].sum()),
        strategy_dates=n_days,
        drawdown=(max_dd, float(max_dd / base * 100) if peak else 0.0),
        analysis=analysis,
    )
