"""The one schema source of mmflow: event kinds, sides, the event arrays, trade records and results.

Every other module (readers, kernels, metrics, the DuckDB store) takes its column names and types
from here, so a new summary figure is added in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class FillStats:
    """One security's fills condensed: counts, and the exact partials of the realized P&L sums
    (all fills, gains, losses), from which portfolio sums are exact without the fills."""

    fills: int = 0
    wins: int = 0  # fills with realized P&L > 0
    realized: tuple[float, ...] = ()
    gains: tuple[float, ...] = ()
    losses: tuple[float, ...] = ()


@dataclass
class SecurityResult:
    """Everything one backtest of one security produced; plain data, cheap to pickle to a worker.
    `trades` is None for a compact result (a sweep cell whose trades are not kept)."""

    security: str
    strategy: str
    params: dict  # the resolved parameters used for this security
    trades: pd.DataFrame | None  # TRADE_COLUMNS, event order
    daily: pd.DataFrame  # DAILY_COLUMNS, one row per date with fills
    summary: dict  # keys: SUMMARY_COLUMNS
    stats: FillStats = FillStats()


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
    ],
    align=True,
)

# Our quote and resting order on one side (SPEC §3.1): index BID (our buy) and ASK (our sell).
QUOTE_DTYPE = np.dtype(
    [
        ("live", "b1"),  # quote_price is not None
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
        ("fill_price", "f8"),
        ("fill_qty", "i8"),
        ("realized_pnl", "f8"),
        ("position", "i8"),
        ("pnl", "f8"),
    ],
    align=True,
)


def new_state() -> tuple[np.recarray, np.recarray]:
    """A fresh (state, quotes) pair: flat, no quotes, no timers, empty book (SPEC §3.1)."""
    state = np.zeros(1, dtype=STATE_DTYPE).view(np.recarray)
    state.last_flatten_date = NO_TIME
    state.last_price = np.nan
    quotes = np.zeros(2, dtype=QUOTE_DTYPE).view(np.recarray)
    quotes.refill_time = NO_TIME
    quotes.last_fill_time = NO_TIME
    return state, quotes
