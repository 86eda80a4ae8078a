"""Compiled kernels of the fill-quality analytics (ANALYTICS.md): the general path over row-sized
arrays (any order of dates), the per-fill values and sums, mark-to-market and the position
samples. The one-pass fast path is `analytics_pass_nb`; the Python layer is
`engine.results.analytics`. Kernels only: arrays in, arrays out, no pandas."""

import numpy as np
from numba import njit

from engine.types import ASK, BID, BUY, NS_PER_DAY


@njit(cache=True)
def market_mid_nb(events, mid, clock, run_start):
    """A1 replay clock into `clock`, A2 the market book's mid after each row into `mid` (NaN
    unless both sides are set) and the first row of each run of one date into `run_start`, for
    `events` = (timestamp, kind, price, volume); returns the number of runs. Oracle:
    `market_mids` of tests/engine/analytics_reference.py."""
    timestamp, kind, price, volume = events
    bid, ask, runs, day_start, day_end = 0.0, 0.0, 0, 0, 0  # 0.0: the side is empty
    latest = timestamp[0] if timestamp.shape[0] else 0
    for i in range(kind.shape[0]):
        now = timestamp[i]
        latest = max(latest, now)
        clock[i] = latest
        if i == 0 or now < day_start or now >= day_end:  # a cheap test before the division
            start = (now // NS_PER_DAY) * NS_PER_DAY
            if i == 0 or start != day_start:  # the date differs from the previous row's (SPEC §2-8)
                bid, ask = 0.0, 0.0
                run_start[runs] = i
                runs += 1
            day_start, day_end = start, start + NS_PER_DAY
        level = price[i] if volume[i] > 0 else 0.0  # SPEC §2 rules 2-3: only a size > 0 sets a side
        bid = level if kind[i] == BID else bid
        ask = level if kind[i] == ASK else ask
        mid[i] = (bid + ask) / 2 if (bid > 0) & (ask > 0) else np.nan
    return runs


@njit(cache=True)
def last_at_or_before_nb(sorted_values, start, target):
    """The last index >= start whose value is <= target in an ascending array, given
    sorted_values[start] <= target: a galloping search from `start`."""
    n = sorted_values.shape[0]
    lo, step = start, 1
    while lo + step < n and sorted_values[lo + step] <= target:
        lo += step
        step *= 2
    hi = min(lo + step, n)  # sorted_values[hi] > target, or hi == n
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if sorted_values[middle] <= target:
            lo = middle
        else:
            hi = middle
    return lo


@njit(cache=True)
def horizon_mids_nb(market, rows, horizons, mids):
    """A4 on the general path, `market` = (timestamp, clock, mid, run_start, run_last): for fills
    at `rows` (ascending) mids[k, 0] = mid at the fill's row and mids[k, 1 + i] = mid at
    j = min(max(last index with clock <= ts_r + horizons[i], r), L_r). Oracle: `fill_rows` of
    tests/engine/analytics_reference.py."""
    timestamp, clock, mid, run_start, run_last = market
    run = 0
    found = np.zeros(horizons.shape[0], dtype=np.int64)  # per horizon: the previous fill's j
    for k in range(rows.shape[0]):
        r = rows[k]
        while run + 1 < run_start.shape[0] and run_start[run + 1] <= r:
            run += 1
        last = run_last[run]
        mids[k, 0] = mid[r]
        for i in range(horizons.shape[0]):
            target = timestamp[r] + horizons[i]
            j = max(found[i], r)  # fills ascend, so targets mostly do: resume the search
            if clock[j] > target:  # the answer is before j (a step back): search from r
                j = r
            if clock[j] <= target:  # else ts_r + h < c_r: the last c_j <= target is < r, so r
                j = last_at_or_before_nb(clock, j, target)
            found[i] = j
            mids[k, 1 + i] = mid[j if j < last else last]


@njit(cache=True)
def fill_values_nb(fills, fee_params, mids, values, fee, sums):
    """A5, A11 and the A6 sums, `fills` = (side, kind, fill_price, fill_qty), `fee_params` =
    (maker_fee_bps, fee_per_fill), mids[k] = fill k's mid_0, then its mid at each horizon:
    values[k] = s * (mids[k] - p) * q (+ 0.0: no -0.0; written when `values` has a row per fill,
    else skipped), fee[k] = p * q * bps / 1e4 + per fill; sums[0] over all fills and
    sums[1 + kind] by kind: fills, notional, then per mid the values, notional and count where
    the mid is defined, then per horizon edge - markout where both are defined. Oracle:
    `fill_rows` and `markouts` of tests/engine/analytics_reference.py."""
    side, kind, price, qty = fills
    h = mids.shape[1]
    keep = values.shape[0] == side.shape[0]
    value = np.empty(h)
    for k in range(side.shape[0]):
        sign = 1.0 if side[k] == BUY else -1.0
        notional = price[k] * qty[k]
        for i in range(h):
            value[i] = sign * (mids[k, i] - price[k]) * qty[k] + 0.0
            if keep:
                values[k, i] = value[i]
        fee[k] = notional * fee_params[0] / 1e4 + fee_params[1]
        for row in (0, 1 + kind[k]):
            sums[row, 0] += 1.0
            sums[row, 1] += notional
            for i in range(h):
                if mids[k, i] == mids[k, i]:  # defined (not NaN)
                    sums[row, 2 + i] += value[i]
                    sums[row, 2 + h + i] += notional
                    sums[row, 2 + 2 * h + i] += 1.0
                    if i > 0 and mids[k, 0] == mids[k, 0]:
                        sums[row, 1 + 3 * h + i] += value[0] - value[i]


@njit(cache=True)
def mtm_nb(mids, fills, fee, rows, out):
    """A9 mtm = realized + position * (mid - average cost) - fees after each of `rows`
    (ascending), where mids[t] is the last defined mid at or before rows[t] (NaN: none) and
    `fills` = (row, pnl, position, entry_price) in event order; a flat or unmarkable position
    adds nothing. Oracle: `mtm_after` of tests/engine/analytics_reference.py."""
    fill_rows, pnl, position, entry = fills
    k, paid = -1, 0.0
    for t in range(rows.shape[0]):
        while k + 1 < fill_rows.shape[0] and fill_rows[k + 1] <= rows[t]:
            k += 1
            paid += fee[k]  # fees accrue fill by fill
        value = 0.0 if k < 0 else pnl[k]
        if k >= 0 and position[k] != 0 and mids[t] == mids[t]:
            value += position[k] * (mids[t] - entry[k])
        out[t] = value - paid


@njit(cache=True)
def carried_mids_nb(mid, rows, out):
    """The last defined mid at or before each of `rows` (NaN if none)."""
    for t in range(rows.shape[0]):
        j = rows[t]
        while j >= 0 and mid[j] != mid[j]:
            j -= 1
        out[t] = mid[j] if j >= 0 else np.nan


@njit(cache=True)
def minute_rows_nb(clock, times, out):
    """For each of `times` (ascending): the last row with clock <= it (-1 if none). Oracle:
    `half_life` of tests/engine/analytics_reference.py (bisect per minute)."""
    j = -1
    for t in range(times.shape[0]):
        if j + 1 < clock.shape[0] and clock[j + 1] <= times[t]:
            j = last_at_or_before_nb(clock, j + 1, times[t])
        out[t] = j


@njit(cache=True)
def positions_after_nb(rows, fill_rows, fill_position, out):
    """The position after each of `rows` (ascending; -1: before the first row), i.e. after the
    last fill at or before it (0 before the first fill)."""
    k = -1
    for t in range(rows.shape[0]):
        while k + 1 < fill_rows.shape[0] and fill_rows[k + 1] <= rows[t]:
            k += 1
        out[t] = fill_position[k] if k >= 0 else 0.0
