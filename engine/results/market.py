"""A security's market over its rows (ANALYTICS.md A1, A2, A4, and what A8 and A9 need of each
date): the replay clock, the market book's mid after each row, the mids each fill sees at its
horizons, and each date's last row, mid and minute rows.

`market_marks` answers them for one simulation: by one compiled pass over the rows
(`analytics_pass_nb`), or the general path over row-sized arrays (`analytics_nb`) where the dates
are not ascending runs of rows. A sweep computes the `Market` once per security (`market_of`), and
each of its cells looks its fills' mids up with no pass over the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.results.analytics_nb import (
    carried_mids_nb,
    horizon_mids_nb,
    market_mid_nb,
    minute_rows_nb,
)
from engine.results.analytics_pass_nb import fused_pass_nb
from engine.sim.session import WINDOW_END_NS, WINDOW_START_NS
from engine.types import HORIZONS_SEC, NS_PER_DAY, NS_PER_SECOND, Events

HORIZONS_NS = np.array(HORIZONS_SEC, dtype=np.int64) * NS_PER_SECOND
MINUTE_NS = 60 * NS_PER_SECOND
MINUTES = np.arange(WINDOW_START_NS, WINDOW_END_NS, MINUTE_NS)  # A8: whole minutes of the window
MAX_FAST_DATES = 4096  # dates the one-pass path holds (beyond: the general path)


@dataclass(frozen=True)
class Dates:
    """What A8 and A9 need of each date of a security's rows, dates ascending."""

    days: np.ndarray  # days since the epoch
    last_row: np.ndarray  # the date's last row
    last_mid: np.ndarray  # the last defined mid at or before it (NaN: none yet)
    minute_rows: np.ndarray  # (dates, MINUTES): the last row at or before each on the clock
    final_mid: float  # the last defined mid at or before the last row of all


@dataclass(frozen=True)
class Market:
    """A security's market over its rows, the same for every strategy and parameter set: the
    A4 mids a fill at each row would get (the mid after the row, A2, then at each horizon on the
    replay clock, A1) and the `Dates` (A8, A9). A sweep computes it once per security; each cell
    then looks its fills' mids up, with no pass over the rows and no search."""

    row_mids: np.ndarray  # (rows, 1 + len(HORIZONS_SEC)): the mids of a fill at row r
    dates: Dates


def _event_arrays(events: Events) -> tuple:
    return (
        np.ascontiguousarray(events.timestamp_ns, dtype=np.int64),
        np.ascontiguousarray(events.kind, dtype=np.int8),
        np.ascontiguousarray(events.price, dtype=np.float64),
        np.ascontiguousarray(events.volume, dtype=np.float64),
    )


def market_marks(events: Events, rows: np.ndarray) -> tuple[np.ndarray, Dates]:
    """(mids, Dates): A4 mids of the fills at `rows` (fills x (0, *HORIZONS_SEC), column-major)
    and the dates, by the one-pass path, or the general one when the dates are not ascending
    runs of rows."""
    mids = np.empty((len(rows), 1 + len(HORIZONS_SEC)), order="F")
    arrays = _event_arrays(events)
    minute_rows = np.empty((MAX_FAST_DATES, len(MINUTES)), dtype=np.int64)
    last_row, last_mid = np.empty(MAX_FAST_DATES, dtype=np.int64), np.empty(MAX_FAST_DATES)
    window = (WINDOW_START_NS, WINDOW_END_NS, MINUTE_NS)
    dates = fused_pass_nb(
        arrays, rows, HORIZONS_NS, window, mids, minute_rows.ravel(), last_row, last_mid
    )
    if dates < 0:
        return _general_marks(arrays, rows, mids)
    days = arrays[0][last_row[:dates]] // NS_PER_DAY
    final = float(last_mid[dates - 1]) if dates else math.nan
    return mids, Dates(days, last_row[:dates], last_mid[:dates], minute_rows[:dates], final)


def _general_marks(arrays: tuple, rows: np.ndarray, mids: np.ndarray) -> tuple[np.ndarray, Dates]:
    """market_marks for rows in any order of dates, over row-sized arrays of mids and clock."""
    market, dates = _market_arrays(arrays)
    horizon_mids_nb(market, rows, HORIZONS_NS, mids)
    return mids, dates


def market_of(events: Events) -> Market:
    """The `Market` of a security's events: A4 for a fill at every row at once. The replay clock
    never decreases, so the last row with clock <= ts_r + h is a binary search, then clamped to
    [r, L_r] as horizon_mids_nb does per fill."""
    (timestamp, clock, mid, run_start, run_last), dates = _market_arrays(_event_arrays(events))
    n = len(timestamp)
    rows = np.arange(n)
    last = np.repeat(run_last, np.diff(np.r_[run_start, n])) if n else rows
    row_mids = np.empty((n, 1 + len(HORIZONS_NS)))
    row_mids[:, 0] = mid
    for i, horizon in enumerate(HORIZONS_NS, start=1):
        j = np.searchsorted(clock, timestamp + horizon, side="right") - 1
        row_mids[:, i] = mid[np.minimum(np.maximum(j, rows), last)]
    return Market(row_mids, dates)


def _market_arrays(arrays: tuple) -> tuple[tuple, Dates]:
    """((timestamp, clock, mid, run_start, run_last): horizon_mids_nb's `market`, Dates)."""
    timestamp, n = arrays[0], len(arrays[0])
    mid, clock, run_start = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    runs = market_mid_nb(arrays, mid, clock, run_start)
    run_start = run_start[:runs]
    days, which = np.unique(timestamp[run_start] // NS_PER_DAY, return_inverse=True)
    last_row = np.full(len(days), -1, dtype=np.int64)
    np.maximum.at(last_row, which, np.r_[run_start[1:], n] - 1)  # A4's L: a date's last row
    grid = days[:, None] * NS_PER_DAY + MINUTES[None, :]  # ascending: days ascend
    minute_rows = np.empty(grid.shape, dtype=np.int64)
    minute_rows_nb(clock, grid.ravel(), minute_rows.ravel())
    ends = np.r_[last_row, n - 1] if n else np.array([], dtype=np.int64)
    carried = np.empty(len(ends))
    carried_mids_nb(mid, ends, carried)
    final = float(carried[-1]) if n else math.nan
    dates = Dates(days, last_row, carried[:-1], minute_rows, final)
    return (timestamp, clock, mid, run_start, last_row[which]), dates
