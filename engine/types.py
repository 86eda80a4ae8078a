"""The one schema source of mmflow: event kinds, sides, the event arrays, trade records and results.

Every other module (readers, kernels, metrics, the DuckDB store) takes its column names and types
from here, so a new summary figure is added in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

# Event kinds (SPEC §1.1-4): one small integer per row.
BID = 0
ASK = 1
TRADE = 2
KIND_NAMES = ("BID", "ASK", "TRADE")

# Sides of a fill (SPEC §3.5): a buy raises the position, a sell lowers it.
BUY = 1
SELL = -1

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


class Events(NamedTuple):
    """One security's rows after SPEC §1.3 normalisation, as flat arrays in file order."""

    timestamp_ns: np.ndarray  # int64, naive local time in ns since the epoch
    kind: np.ndarray  # int8, BID / ASK / TRADE
    price: np.ndarray  # float64, > 0
    volume: np.ndarray  # float64, >= 0 or NaN (zero and NaN volumes are kept, SPEC §1.3-3)

    def __len__(self) -> int:  # noqa: D105 - the number of rows
        return len(self.kind)


@dataclass(frozen=True)
class RowCounts:
    """How many rows one security had and why rows were dropped (SPEC §0 "Row counts")."""

    rows_read: int = 0  # data rows below the header (or Parquet rows)
    dropped_bad_timestamp: int = 0  # unparseable or empty Dates
    dropped_bad_price: int = 0  # unparseable or empty Price (text, a boolean)
    dropped_nonpositive_price: int = 0  # Price <= 0 (e.g. the 09:30 `BID 0.0/0` rows)
    rows_kept: int = 0  # rows handed to the engine
    dropped_nonfinite_price: int = 0  # Price inf, -inf, NaN or absurd (engine.data.rules)
    dropped_bad_size: int = 0  # Size text, boolean, non-finite, negative or absurd (empty is kept)

    def __post_init__(self) -> None:
        dropped = (
            self.dropped_bad_timestamp
            + self.dropped_bad_price
            + self.dropped_nonfinite_price
            + self.dropped_nonpositive_price
            + self.dropped_bad_size
        )
        if self.rows_read - dropped != self.rows_kept:
            raise ValueError(f"row counts do not add up: {self}")


# One trade record per fill (SPEC §5.1), in event order, plus our sequence number.
TRADE_COLUMNS = (
    "seq",
    "timestamp",
    "side",
    "fill_price",
    "fill_qty",
    "realized_pnl",
    "position",
    "pnl",
)

# Per-security summary figures: (name, DuckDB type). The store's `security_results` table and the
# `backtest_summary.csv` columns are built from this list, in this order.
SUMMARY_FIELDS: tuple[tuple[str, str], ...] = (
    ("security", "VARCHAR"),
    ("strategy", "VARCHAR"),
    ("trades", "BIGINT"),
    ("buy_trades", "BIGINT"),
    ("sell_trades", "BIGINT"),
    ("volume", "BIGINT"),  # shares traded, sum of fill_qty
    ("notional", "DOUBLE"),  # sum of fill_price * fill_qty
    ("final_position", "BIGINT"),
    ("realized_pnl", "DOUBLE"),  # total realized P&L (SPEC §0: never the last trade's)
    ("unrealized_pnl", "DOUBLE"),  # (last in-window trade price - entry) * position
    ("total_pnl", "DOUBLE"),  # realized + unrealized
    ("last_price", "DOUBLE"),  # last in-window trade price (NaN if none)
    ("rows_read", "BIGINT"),
    ("rows_kept", "BIGINT"),
    ("rows_in_window", "BIGINT"),
    ("bid_rows", "BIGINT"),  # in-window rows by type
    ("ask_rows", "BIGINT"),
    ("trade_rows", "BIGINT"),
    ("dropped_bad_timestamp", "BIGINT"),
    ("dropped_bad_price", "BIGINT"),
    ("dropped_nonpositive_price", "BIGINT"),
    ("market_dates", "BIGINT"),  # dates with at least one TRADE row
    ("strategy_dates", "BIGINT"),  # dates with at least one of our fills
    ("first_date", "DATE"),
    ("last_date", "DATE"),
    ("stop_loss_triggers", "BIGINT"),  # v2.1 only, else 0
    ("avg_pnl_per_trade", "DOUBLE"),
    ("sharpe_ratio", "DOUBLE"),
    ("max_drawdown", "DOUBLE"),
    ("max_drawdown_pct", "DOUBLE"),
    ("calmar_ratio", "DOUBLE"),
    ("win_rate", "DOUBLE"),
    ("profit_factor", "DOUBLE"),
    ("dropped_nonfinite_price", "BIGINT"),  # inf, NaN or absurd (> 1e9) prices
    ("dropped_bad_size", "BIGINT"),  # text, boolean, non-finite, negative or absurd sizes
)
SUMMARY_COLUMNS = tuple(name for name, _ in SUMMARY_FIELDS)

# The figures a person looks at first, in tables and artifacts.
KEY_FIGURES = (
    "security",
    "trades",
    "volume",
    "final_position",
    "realized_pnl",
    "total_pnl",
    "sharpe_ratio",
    "max_drawdown",
    "win_rate",
)

DAILY_COLUMNS = ("date", "realized_pnl", "cumulative_pnl", "trades")
# ANALYTICS.md A9/A11 per date with fills: the change of the mark-to-market P&L since the previous
# date of the daily table, and the fees paid that date (after DAILY_COLUMNS in the store).
DAILY_ANALYTICS_COLUMNS = ("mtm_pnl", "fees")

# ---- Fill quality (ANALYTICS.md) ---------------------------------------------------------------

# A3: what made a fill, as a small integer in the fill record and as a word in tables.
FILL_QUOTE = 0
FILL_EOD_FLATTEN = 1
FILL_STOP_LOSS = 2
FILL_KIND_NAMES = ("quote", "eod_flatten", "stop_loss")
HORIZONS_SEC = (1, 5, 30, 60, 300)  # A4


def _per_horizon(prefix: str, type_: str, zero: bool = False) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}_{h}", type_) for h in (((0,) if zero else ()) + HORIZONS_SEC))


# One row per fill (A3-A5, A11): `<SECURITY>_fills.csv` has exactly these columns, in this order.
FILL_ANALYTICS_COLUMNS = (
    "seq",
    "row",
    "kind",
    "timestamp",
    "side",
    "fill_price",
    "fill_qty",
    "fee",
    *(name for name, _ in _per_horizon("mid", "DOUBLE", zero=True)),
    "edge",
    *(name for name, _ in _per_horizon("markout", "DOUBLE")),
)

# A6 over a set of fills (all of them, or one kind): sums over the fills where the value is defined.
MARKOUT_FIELDS: tuple[tuple[str, str], ...] = (
    ("edge_total", "DOUBLE"),
    ("edge_bps", "DOUBLE"),
    *_per_horizon("markout_total", "DOUBLE"),
    *_per_horizon("markout_bps", "DOUBLE"),
    *_per_horizon("adverse_selection", "DOUBLE"),
    ("undefined_mid_0", "BIGINT"),
    *_per_horizon("undefined_mid", "BIGINT"),
)
# The store's per-kind table adds the counts and the bps denominators, so that figures of several
# securities or runs can be pooled exactly: notional_mid_h = sum(p * q) over fills with mid_h.
MARKOUT_KIND_FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "VARCHAR"),  # 'all', 'quote', 'eod_flatten' or 'stop_loss'
    ("fills", "BIGINT"),
    ("notional", "DOUBLE"),
    *MARKOUT_FIELDS,
    *_per_horizon("notional_mid", "DOUBLE", zero=True),
)
MARKOUT_KIND_COLUMNS = tuple(name for name, _ in MARKOUT_KIND_FIELDS)

# Per-security fill quality, inventory and fees (A6 over all fills, A7-A11): the store's
# `security_analytics` table and the `analytics_summary.csv` columns, in this order.
ANALYTICS_FIELDS: tuple[tuple[str, str], ...] = (
    ("security", "VARCHAR"),
    ("fills", "BIGINT"),
    ("quote_fills", "BIGINT"),
    ("eod_flatten_fills", "BIGINT"),
    ("stop_loss_fills", "BIGINT"),
    ("notional", "DOUBLE"),  # sum of fill_price * fill_qty
    *MARKOUT_FIELDS,
    ("quotes_placed", "BIGINT"),  # A7
    ("fill_ratio", "DOUBLE"),
    ("uptime_two_sided", "DOUBLE"),
    ("uptime_any", "DOUBLE"),
    ("window_seconds", "DOUBLE"),  # the A7 pairs' total weight: the basis of uptime and A8 means
    ("max_abs_position", "BIGINT"),  # A8
    ("avg_abs_position", "DOUBLE"),
    ("time_at_limit", "DOUBLE"),
    ("inventory_half_life_min", "DOUBLE"),
    ("total_mtm", "DOUBLE"),  # A9/A10: realized + unrealized at the mid - fees, after the last row
    ("spread_capture", "DOUBLE"),
    ("inventory_pnl", "DOUBLE"),
    ("fees", "DOUBLE"),  # A11
    ("realized_pnl", "DOUBLE"),
    ("net_pnl", "DOUBLE"),
)
ANALYTICS_COLUMNS = tuple(name for name, _ in ANALYTICS_FIELDS)


@dataclass(frozen=True)
class FillStats:
    """One security's fills condensed: counts, and the exact partials of the realized P&L sums
    (all fills, gains, losses), from which portfolio sums are exact without the fills."""

    fills: int = 0
    wins: int = 0  # fills with realized P&L > 0
    realized: tuple[float, ...] = ()
    gains: tuple[float, ...] = ()
    losses: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class DailyArrays:
    """A compact result's daily P&L, one element per date with fills (DAILY_COLUMNS but the
    running total, and DAILY_ANALYTICS_COLUMNS): a sweep cell ships and pools these arrays, not
    a frame (`engine.results.metrics.daily_frame_of` makes the frame)."""

    date: np.ndarray  # datetime64[ns], the day starts, ascending
    realized_pnl: np.ndarray
    trades: np.ndarray  # int64
    mtm_pnl: np.ndarray
    fees: np.ndarray

    def __len__(self) -> int:
        return len(self.date)


@dataclass
class SecurityResult:
    """Everything one backtest of one security produced; plain data, cheap to pickle to a worker.
    A compact result (a sweep cell whose trades are not kept) has `trades` None, its daily P&L
    as `DailyArrays` and, of its markouts, the 'all' row as a dict."""

    security: str
    strategy: str
    params: dict  # the resolved parameters used for this security
    trades: pd.DataFrame | None  # TRADE_COLUMNS, event order
    daily: pd.DataFrame | DailyArrays  # DAILY_COLUMNS, one row per date with fills
    summary: dict  # keys: SUMMARY_COLUMNS
    stats: FillStats = FillStats()
    # ANALYTICS.md: A6-A11 figures (ANALYTICS_COLUMNS), A6 per kind (MARKOUT_KIND_COLUMNS, 'all'
    # first; a compact result: the 'all' row) and one row per fill (FILL_ANALYTICS_COLUMNS, None
    # when trades are not kept); empty for runs stored before analytics existed.
    analytics: dict = field(default_factory=dict)
    markouts: pd.DataFrame | dict | None = None
    fill_analytics: pd.DataFrame | None = None


@dataclass(frozen=True)
class Failure:
    """A security that could not be backtested, with the reason a user can act on."""

    security: str
    error_type: str
    message: str
    attempts: int = 1


# --- Kernel records (numba reads and writes these through attribute access) -------------------

# Scalar state of one security's simulation (SPEC §3.1). Times are ns since the epoch; NO_TIME
# marks "unset". Book sides hold one level (SPEC §2); price 0.0 means the side is empty.
NO_TIME = np.iinfo(np.int64).min
STATE_DTYPE = np.dtype(
    [
        ("position", "i8"),
        ("entry_price", "f8"),
        ("realized", "f8"),
        ("bid_price", "f8"),
        ("bid_qty", "f8"),
        ("ask_price", "f8"),
        ("ask_qty", "f8"),
        ("has_prev_row", "b1"),
        ("last_date", "i8"),
        ("closed_at_eod", "b1"),
        ("last_flatten_date", "i8"),  # NO_TIME when unset
        ("pending_flatten", "b1"),
        ("rows_in_window", "i8"),
        ("bid_rows", "i8"),
        ("ask_rows", "i8"),
        ("trade_rows", "i8"),
        ("last_price", "f8"),  # last in-window trade price, NaN before the first
        ("cost_basis", "f8"),  # v2.1 (SPEC §4.4-1)
        ("cost_qty", "i8"),
        ("stop_side", "i1"),  # v2.1 pending liquidation: BUY / SELL, 0 when none
        ("stop_remaining", "i8"),
        ("stop_loss_triggers", "i8"),
        ("n_fills", "i8"),  # fills written to the output so far
        # ANALYTICS.md A1/A7/A8 counters (the kernel only counts; engine.results.analytics reads)
        ("clock", "i8"),  # A1 replay clock: the latest timestamp so far (0 before row 0)
        ("eod_flatten_day", "i8"),  # day of the last EOD flatten pending or done (NO_TIME)
        ("pair_open", "b1"),  # the previous row was in the window (an A7 pair may start)
        ("window_ns", "i8"),  # A7 pairs: total weight c[i+1] - c[i]
        ("two_sided_ns", "i8"),  # ... with both our quotes live after row i
        ("any_side_ns", "i8"),  # ... with at least one quote live
    ],
    align=True,
)

# Our quote and resting order on one side (SPEC §3.1): index BID (our buy) and ASK (our sell).
QUOTE_DTYPE = np.dtype(
    [
        ("live", "b1"),  # quote_price is not None
        ("placed", "i4"),  # A7 quotes_placed of this side (in the padding: the record stays 48 B)
        ("price", "f8"),  # order price; 0.0 = never placed (None)
        ("ahead_qty", "i8"),
        ("our_remaining", "i8"),
        ("refill_time", "i8"),  # v1 timer, NO_TIME when unset
        ("last_fill_time", "i8"),  # v2-family cooldown, NO_TIME when unset
    ],
    align=True,
)

# One fill as written by the kernel; the timestamp is looked up from `row` outside the kernel.
FILL_DTYPE = np.dtype(
    [
        ("row", "i8"),
        ("side", "i1"),
        ("kind", "i1"),  # A3: FILL_QUOTE, FILL_EOD_FLATTEN or FILL_STOP_LOSS
        ("fill_price", "f8"),
        ("fill_qty", "i8"),
        ("realized_pnl", "f8"),
        ("position", "i8"),
        ("pnl", "f8"),
        ("entry_price", "f8"),  # SPEC §3.5 average cost after the fill (A9's average_cost)
        ("window_ns", "i8"),  # the state's A7 window_ns when the fill was booked (A8 weights)
    ],
    align=True,
)


def new_state() -> tuple[np.recarray, np.recarray]:
    """A fresh (state, quotes) pair: flat, no quotes, no timers, empty book (SPEC §3.1)."""
    state = np.zeros(1, dtype=STATE_DTYPE).view(np.recarray)
    state.last_flatten_date = NO_TIME
    state.last_price = np.nan
    state.eod_flatten_day = NO_TIME
    quotes = np.zeros(2, dtype=QUOTE_DTYPE).view(np.recarray)
    quotes.refill_time = NO_TIME
    quotes.last_fill_time = NO_TIME
    return state, quotes
