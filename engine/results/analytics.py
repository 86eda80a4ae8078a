"""Fill quality, quoting activity, inventory, mark-to-market P&L and fees of one security
(ANALYTICS.md A1-A11), computed after the kernel from its fill records and counters.

Nothing here changes a fill. `engine.results.market` gives every fill's mids (A1, A2, A4) and
what A8 and A9 need per date. Then one compiled pass over the fills (A5, A6, A11),
the kernel's counters (A7, A8), each date's mark-to-market (A9), A10 and A11. Where ANALYTICS.md
leaves room the choice is marked "Decision" and cites its rule. `analytics_portfolio` pools the
securities of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.results.analytics_nb import (
    fill_values_nb,
    mtm_nb,
    positions_after_nb,
)
from engine.results.market import Dates, Market, market_marks
from engine.sim.backtest import Simulation
from engine.types import (
    ANALYTICS_COLUMNS,
    BUY,
    FILL_ANALYTICS_COLUMNS,
    FILL_KIND_NAMES,
    FILL_QUOTE,
    HORIZONS_SEC,
    MARKOUT_KIND_COLUMNS,
    NS_PER_DAY,
    NS_PER_SECOND,
    Events,
)

MARKOUT_KINDS = ("all", *FILL_KIND_NAMES)  # the rows of a security's markouts frame
_SUFFIXES = ("0", *(str(h) for h in HORIZONS_SEC))  # column 0 of the (fills, 6) arrays: mid_0
_KIND_NAMES = pd.array(FILL_KIND_NAMES, dtype="str")  # `take` from these: 7x faster than
_SIDE_NAMES = pd.array(["sell", "buy"], dtype="str")  # building strings per fill


class AnalyticsError(ArithmeticError):
    """An analytics identity (A10) does not hold: a bug, never bad input."""


@dataclass(frozen=True)
class FillMarks:
    """A4/A5/A11 per fill, in event order, and the A6 sums; (fills, 6) arrays hold mid_0 or the
    edge, then each horizon's (`values` is column-major and empty when the fills are not kept,
    so each column is a contiguous array of the fill frame)."""

    row: np.ndarray  # the fill records' fields, contiguous
    side: np.ndarray
    kind: np.ndarray  # A3 kinds (FILL_QUOTE, ...)
    price: np.ndarray
    qty: np.ndarray
    mids: np.ndarray  # mid_0 (A2 at the fill's row), then mid_h (A4)
    values: np.ndarray  # edge, then markout_h (A5)
    fee: np.ndarray  # A11
    sums: np.ndarray  # A6: one row per MARKOUT_KINDS (see fill_values_nb)


# The kernels' dtypes of the fill record fields (engine.types.FILL_DTYPE) they read.
_FIELD_DTYPES = {"row": np.int64, "side": np.int8, "kind": np.int8, "fill_price": np.float64,
                 "fill_qty": np.int64, "pnl": np.float64, "position": np.int64,
                 "entry_price": np.float64, "window_ns": np.int64}  # fmt: skip


def fill_columns(fills: np.recarray, *names: str) -> tuple[np.ndarray, ...]:
    """The named fields of the fill records as contiguous arrays of the kernels' dtypes."""
    return tuple(np.ascontiguousarray(fills[n], dtype=_FIELD_DTYPES[n]) for n in names)


def fill_marks(fills: np.recarray, mids: np.ndarray, fee_params: tuple, keep: bool = True):
    """The FillMarks of a simulation's fill records, their A4 mids and the (maker_fee_bps,
    fee_per_fill); the per-fill values only when `keep`."""
    row, side, kind, price, qty = fill_columns(
        fills, "row", "side", "kind", "fill_price", "fill_qty"
    )
    values = np.empty((len(price) if keep else 0, mids.shape[1]), order="F")
    fee, sums = np.empty(len(price)), np.zeros((len(MARKOUT_KINDS), 1 + 4 * mids.shape[1]))
    fee_params = (float(fee_params[0]), float(fee_params[1]))
    fill_values_nb((side, kind, price, qty), fee_params, mids, values, fee, sums)
    return FillMarks(row, side, kind, price, qty, mids, values, fee, sums)


def markout_rows(sums: np.ndarray) -> list[dict]:
    """A6 for all fills and for each kind (MARKOUT_KINDS) from their sums (`FillMarks.sums`):
    one dict of MARKOUT_KIND_COLUMNS each, with the fills' count, notional and the bps
    denominators."""
    return [_markout_row(kind, sums[i]) for i, kind in enumerate(MARKOUT_KINDS)]


def _markout_row(kind: str, sums: np.ndarray) -> dict:
    """One A6 row from its sums: fills, notional, 6 totals, 6 denominators, 6 counts, 5 adverse."""
    fills, h = int(sums[0]), len(_SUFFIXES)
    totals, notional, counts = sums[2 : 2 + h], sums[2 + h : 2 + 2 * h], sums[2 + 2 * h : 2 + 3 * h]
    with np.errstate(invalid="ignore", divide="ignore"):
        bps = np.where(counts > 0, 1e4 * totals / notional, np.nan)  # empty sums: NaN
    out = {"kind": kind, "fills": fills, "notional": float(sums[1])}
    out["edge_total"], out["edge_bps"] = float(totals[0]), float(bps[0])
    for i, suffix in enumerate(_SUFFIXES[1:], start=1):
        out[f"markout_total_{suffix}"] = float(totals[i])
    for i, suffix in enumerate(_SUFFIXES[1:], start=1):
        out[f"markout_bps_{suffix}"] = float(bps[i])
    for i, suffix in enumerate(_SUFFIXES[1:]):
        out[f"adverse_selection_{suffix}"] = float(sums[2 + 3 * h + i])
    for i, suffix in enumerate(_SUFFIXES):
        out[f"undefined_mid_{suffix}"] = fills - int(counts[i])
    for i, suffix in enumerate(_SUFFIXES):
        out[f"notional_mid_{suffix}"] = float(notional[i])
    return out


def quoting_activity(sim: Simulation, quote_fills: int) -> dict:
    """A7 from the kernel's counters: placements, fill ratio, uptime and its basis."""
    state, window = sim.state, int(sim.state.window_ns)
    placed = int(np.asarray(sim.quotes.placed).sum()) if sim.quotes is not None else 0
    return {
        "quotes_placed": placed,
        "fill_ratio": quote_fills / placed if placed else math.nan,
        "uptime_two_sided": int(state.two_sided_ns) / window if window else math.nan,
        "uptime_any": int(state.any_side_ns) / window if window else math.nan,
        "window_seconds": window / NS_PER_SECOND,
    }


def inventory(dates: Dates, sim: Simulation, max_position: float) -> dict:
    """A8: the largest position after a row, and its A7-weighted mean and time at the limit.

    The kernel stamps each fill with the A7 weight accumulated so far (`window_ns`), so the spans
    between fills carry one position each: the position before the fill (0 before the first)."""
    fills, window = sim.fills, int(sim.state.window_ns)
    position, row, marks = fill_columns(fills, "position", "row", "window_ns")
    last_of_row = np.append(row[1:] != row[:-1], True)[: len(row)]  # p_i: a row's last fill
    held = np.abs(np.concatenate(([0], position)))
    spans = np.diff(np.concatenate(([0], marks, [window])))
    return {
        "max_abs_position": int(np.abs(position[last_of_row]).max(initial=0)),
        "avg_abs_position": float((held * spans.astype(np.float64)).sum()) / window
        if window
        else math.nan,
        "time_at_limit": int(spans[held >= max_position].sum()) / window if window else math.nan,
        "inventory_half_life_min": half_life_minutes(dates, fills),
    }


def half_life_minutes(dates: Dates, fills: np.recarray) -> float:
    """A8: p sampled at every whole minute of [10:00, 14:45) on each date (the position after
    the last row at or before it on the replay clock), p[k+1] = phi * p[k] fitted by least squares
    within dates, pooled; ln 0.5 / ln phi for 0 < phi < 1, else NaN."""
    p = np.empty(dates.minute_rows.shape)
    held = np.ascontiguousarray(fills["position"], dtype=np.float64)
    (rows,) = fill_columns(fills, "row")
    positions_after_nb(dates.minute_rows.ravel(), rows, held, p.ravel())
    return half_life_of(p)


def half_life_of(p: np.ndarray) -> float:
    """A8's half-life from the positions sampled each minute (dates x minutes)."""
    denominator = float((p[:, :-1] * p[:, :-1]).sum())
    phi = float((p[:, :-1] * p[:, 1:]).sum()) / denominator if denominator > 0 else math.nan
    return math.log(0.5) / math.log(phi) if 0 < phi < 1 else math.nan


def mtm_at(fills: np.recarray, fee: np.ndarray, rows: np.ndarray, mids: np.ndarray) -> np.ndarray:
    """A9 `mtm_i = realized_i + unrealized_i - fees_i` after each of `rows`, `mids` being the
    last defined mid at or before each.

    Decision (A9): that mid is the same date's when the date has one; a position with no defined
    mid yet is marked at its average cost (unrealized 0), so mtm is always defined. A flat
    position has no unrealized P&L."""
    order = np.argsort(rows, kind="stable")  # ascending already unless dates come out of order
    arrays = fill_columns(fills, "row", "pnl", "position", "entry_price")
    out = np.empty(len(rows))
    rows_sorted = np.ascontiguousarray(rows[order], dtype=np.int64)
    mtm_nb(np.ascontiguousarray(mids[order], dtype=np.float64), arrays, fee, rows_sorted, out)
    result = np.empty(len(rows))
    result[order] = out
    return result


def daily_figures(
    dates: Dates, timestamp: np.ndarray, fills, fee, daily_dates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mtm_pnl, fees) per date of a daily table (ascending datetime64[ns] day starts, the dates
    of the fills).

    Decision (A9): the daily table holds the dates with fills; `mtm_pnl` is the change of mtm
    from the last row of the previous date *of the table* to the last row of this date, so its
    running sum is the mtm curve. A move on a date without fills (possible only with a position
    held overnight) lands on the next date with fills."""
    days = daily_dates.astype("datetime64[ns]").view(np.int64) // NS_PER_DAY
    which = np.searchsorted(dates.days, days)
    mtm = mtm_at(fills, fee, dates.last_row[which], dates.last_mid[which])
    fees = np.zeros(len(days))
    if len(fee):
        fees += np.bincount(
            np.searchsorted(days, timestamp[fills.row] // NS_PER_DAY),
            weights=fee,
            minlength=len(days),
        )
    return np.diff(mtm, prepend=0.0), fees


@dataclass(frozen=True)
class Analysis:
    """Everything ANALYTICS.md asks of one security."""

    figures: dict  # ANALYTICS_COLUMNS: A6 over all fills, A7-A11
    markouts: pd.DataFrame | dict  # MARKOUT_KIND_COLUMNS, a row per MARKOUT_KINDS (or 'all')
    fills: pd.DataFrame | None  # FILL_ANALYTICS_COLUMNS, event order (None: not kept)
    daily_mtm: np.ndarray  # A9 mtm_pnl per date of the daily table
    daily_fees: np.ndarray  # A11 fees per date of the daily table


def analyse(
    security: str,
    events: Events,
    sim: Simulation,
    params,
    realized_pnl: float,
    daily_dates: np.ndarray,
    *,
    keep_fills: bool = True,
    trades: pd.DataFrame | None = None,
    market: Market | None = None,
) -> Analysis:
    """A1-A11 for one simulated security (`realized_pnl`: its exact total; `daily_dates`: the
    dates of its daily table; `trades`: its trade table, whose columns the fill table shares;
    `market`: the events' `Market`, when a sweep computed it once for many cells)."""
    (fill_rows,) = fill_columns(sim.fills, "row")
    if market is not None:  # a sweep: the mids of every row, computed once per security
        mids, dates = np.take(market.row_mids, fill_rows, axis=0), market.dates  # 4x a[rows]
    else:
        mids, dates = market_marks(events, fill_rows)
    fees = (params.maker_fee_bps, params.fee_per_fill)
    marks = fill_marks(sim.fills, mids, fees, keep=keep_fills)
    n, last, final = len(events), np.array([len(events) - 1]), np.array([dates.final_mid])
    timestamp = np.asarray(events.timestamp_ns)
    return analysis_of(
        security,
        sim,
        marks.sums,
        inventory(dates, sim, float(params.max_position)),
        total_mtm=float(mtm_at(sim.fills, marks.fee, last, final)[0]) if n else 0.0,
        fees=float(marks.fee.sum()),
        realized_pnl=realized_pnl,
        daily=daily_figures(dates, timestamp, sim.fills, marks.fee, daily_dates),
        fills=fill_frame(timestamp, marks, trades) if keep_fills else None,
    )


def analysis_of(
    security: str,
    sim: Simulation,
    sums: np.ndarray,
    inventory: dict,
    *,
    total_mtm: float,
    fees: float,
    realized_pnl: float,
    daily: tuple[np.ndarray, np.ndarray],
    fills: pd.DataFrame | None = None,
    compact: bool = False,
) -> Analysis:
    """The `Analysis` from its parts: the A6 sums, A8's figures, A9's total mtm, the total fees
    (A11), the exact realized P&L, the daily (mtm_pnl, fees) and the fill table if kept; a
    `compact` one keeps the markouts' 'all' row alone, as a dict (a sweep cell's)."""
    rows = markout_rows(sums)
    counts = {f"{kind}_fills": row["fills"] for kind, row in zip(MARKOUT_KINDS, rows, strict=True)}
    figures = {
        "security": security,
        **rows[0],
        **counts,
        **quoting_activity(sim, counts["quote_fills"]),
        **inventory,
        **pnl_figures(total_mtm, fees, rows, realized_pnl),
    }
    return Analysis(
        figures={name: figures[name] for name in ANALYTICS_COLUMNS},
        markouts=rows[0] if compact else pd.DataFrame(rows, columns=list(MARKOUT_KIND_COLUMNS)),
        fills=fills,
        daily_mtm=daily[0],
        daily_fees=daily[1],
    )


def pnl_figures(total_mtm: float, fees: float, rows: list[dict], realized: float) -> dict:
    """A9 total_mtm, its A10 decomposition (checked) and A11, given the total fees and the A6
    rows (`markout_rows`)."""
    spread_capture = rows[1 + FILL_QUOTE]["edge_total"]  # A10: edge_total over quote fills
    inventory_pnl = total_mtm - spread_capture + fees  # A10: the rest
    check_decomposition(total_mtm, spread_capture, inventory_pnl, fees)
    return {
        "total_mtm": total_mtm,
        "spread_capture": spread_capture,
        "inventory_pnl": inventory_pnl,
        "fees": fees,
        "realized_pnl": realized,
        "net_pnl": realized - fees,  # A11
    }


def check_decomposition(total_mtm, spread_capture, inventory_pnl, fees) -> None:
    """A10: total_mtm = spread_capture + inventory_pnl - fees, to rounding; AnalyticsError if not
    (a NaN anywhere fails too)."""
    residual = total_mtm - (spread_capture + inventory_pnl - fees)
    scale = max(1.0, abs(total_mtm), abs(spread_capture), abs(inventory_pnl), abs(fees))
    if not abs(residual) <= 1e-9 * scale:
        raise AnalyticsError(
            f"A10 identity fails: total_mtm {total_mtm!r} != spread_capture {spread_capture!r} "
            f"+ inventory_pnl {inventory_pnl!r} - fees {fees!r}"
        )


def fill_frame(timestamp: np.ndarray, marks: FillMarks, trades=None) -> pd.DataFrame:
    """One row per fill in event order: FILL_ANALYTICS_COLUMNS (`<SECURITY>_fills.csv`); the
    columns are the marks' own arrays and, when given, the trade table's (no copies)."""
    shared = trades is not None and len(trades) == len(marks.row)
    columns = {
        "seq": trades["seq"].to_numpy() if shared else np.arange(1, len(marks.row) + 1),
        "row": marks.row,
        "kind": _KIND_NAMES.take(marks.kind.astype(np.intp)),
        "timestamp": trades["timestamp"].array
        if shared
        else timestamp[marks.row].astype(np.int64).view("datetime64[ns]"),
        "side": trades["side"].array
        if shared
        else _SIDE_NAMES.take((marks.side == BUY).astype(np.intp)),
        "fill_price": marks.price,
        "fill_qty": marks.qty,
        "fee": marks.fee,
    }
    for i, suffix in enumerate(_SUFFIXES):
        columns[f"mid_{suffix}"] = marks.mids[:, i]
    columns["edge"] = marks.values[:, 0]
    for i, h in enumerate(HORIZONS_SEC, start=1):
        columns[f"markout_{h}"] = marks.values[:, i]
    return pd.DataFrame(columns, columns=list(FILL_ANALYTICS_COLUMNS), copy=False)
