"""The compiled summary of a sweep cell: one walk over a simulation's fill records gives what
`engine.results.summary.summarise` computes by about forty array passes when no trade table is
kept (SPEC §5.3, ANALYTICS.md A5-A11), with every figure equal to the bit:

- exact sums stay exact: the gains' and losses' partials are grown fill by fill as
  `exact_partials_nb` grows them, and each date's realized P&L is `math.fsum` of its fills;
- sequential sums (the A6 sums, a date's fees, the fees paid in A9) add in fill order, as the
  general kernels do; of the A6 rows a cell keeps the 'all' row and, of each kind, what the
  figures need (its fills and edge total);
- numpy's pairwise sums (notional, total fees, A8's weighted position) are left to numpy: the
  kernel writes the terms (`terms`) and the caller sums them.

It answers only the common case: finite P&L, fill dates ascending, each date's last row after
the previous date's. Otherwise it returns FALLBACK and the caller takes the general path.
Kernels only: arrays in, arrays and numbers out. Oracle: `summarise` with `compact=False`.
"""

import numpy as np
from numba import njit

from engine.results.exact import MAX_PARTIALS, add_partial_nb, rounded_nb
from engine.types import BUY, NS_PER_DAY

FALLBACK = -1  # the fills are outside the common case: use the general path
# terms[:, column]: the per-fill terms numpy sums pairwise
NOTIONAL, FEE, HELD_SPAN = 0, 1, 2
TERMS = 3
# The kernel's scalar results, by index.
WINS, BUYS, VOLUME, MAX_ABS_POSITION, TIME_AT_LIMIT = range(5)  # integers
MAX_DRAWDOWN, DRAWDOWN_BASE, ANY_PEAK, TOTAL_MTM = range(4)  # floats


@njit(cache=True)
def compact_nb(fills, timestamp, row_mids, fee_params, limit, window, dates, final_mid, out):
    """One cell's figures from its fill records (engine.types.FILL_DTYPE, at least one) and its
    security's `Market` (row_mids; dates = (days, last_row, last_mid, minute_rows flat)).

    Writes `out` = (day (dates), day_sum, day_count, day_fee, day_mtm,
    terms (fills + 1, TERMS), sums (A6 rows: all of row 0, the 'all' row; of each kind's row the
    fills and the edge total alone), gains, losses (MAX_PARTIALS), minute_position, ints, floats)
    and returns (fill dates, gains partials, losses partials), or FALLBACK."""
    day, day_sum, day_count, day_fee, day_mtm, terms, sums, gains, losses = out[:9]
    minute_position, ints, floats = out[9:]
    date_days, date_last_row, date_last_mid, minute_rows = dates
    n, h = fills.shape[0], row_mids.shape[1]
    ints[:] = 0
    value, partials = np.empty(h), np.empty(MAX_PARTIALS)
    # Gather first, in a loop of loads only: the rows' mids and stamps are rarely in cache after
    # a simulation, and this way the CPU waits for many of them at once.
    mids, stamp = np.empty((n, h)), np.empty(n, dtype=np.int64)
    for k in range(n):
        r = fills[k]["row"]
        stamp[k] = timestamp[r]
        for i in range(h):
            mids[k, i] = row_mids[r, i]
    n_gains, n_losses, n_day, days, start, previous = 0, 0, 0, 0, 0, 0
    runmax, max_dd, base, peak, paid = 0.0, 0.0, 0.0, 0.0, 0.0
    for k in range(n):
        fill = fills[k]
        r, price, qty = fill["row"], fill["fill_price"], fill["fill_qty"]
        # SPEC §5.3: exact realized sums, wins, per-date P&L and counts
        gain = fill["realized_pnl"]
        if not np.isfinite(gain) or not np.isfinite(fill["pnl"]):
            return FALLBACK, 0, 0
        this_day = stamp[k] // NS_PER_DAY
        if k == 0 or this_day != day[days - 1]:
            if k > 0:
                if this_day < day[days - 1]:
                    return FALLBACK, 0, 0
                day_count[days - 1] = k - start
                day_sum[days - 1] = rounded_nb(partials, n_day)
            if days == day.shape[0]:
                return FALLBACK, 0, 0
            day[days], day_fee[days], start, n_day = this_day, 0.0, k, 0
            days += 1
        if gain > 0:
            n_gains = add_partial_nb(gains, n_gains, gain)
            ints[WINS] += 1
        elif gain < 0:
            n_losses = add_partial_nb(losses, n_losses, gain)
        if gain != 0:  # the date's fsum: a zero changes no partial's exact sum
            n_day = add_partial_nb(partials, n_day, gain)
        # summary counts, notional terms, the drawdown of the running P&L (metrics.drawdown)
        if fill["side"] == BUY:
            ints[BUYS] += 1
        ints[VOLUME] += qty
        notional = price * qty
        terms[k, NOTIONAL] = notional
        pnl = fill["pnl"]
        runmax = pnl if k == 0 else max(runmax, pnl)  # np.maximum.accumulate
        below, level = pnl - runmax, 1.0 if runmax == 0 else runmax
        max_dd, base = (below, level) if k == 0 else (min(max_dd, below), max(base, level))
        if runmax > 0:
            peak = 1.0
        # A5, A6, A11: as analytics_nb.fill_values_nb, with the mids looked up by row
        sign = 1.0 if fill["side"] == BUY else -1.0
        kind = fill["kind"]
        for i in range(h):
            value[i] = sign * (mids[k, i] - price) * qty + 0.0
        fee = notional * fee_params[0] / 1e4 + fee_params[1]
        terms[k, FEE] = fee
        paid += fee
        day_fee[days - 1] += fee
        sums[0, 0] += 1.0
        sums[0, 1] += notional
        for i in range(h):
            mid = mids[k, i]
            if mid == mid:  # defined (not NaN)
                sums[0, 2 + i] += value[i]
                sums[0, 2 + h + i] += notional
                sums[0, 2 + 2 * h + i] += 1.0
                if i > 0 and mids[k, 0] == mids[k, 0]:
                    sums[0, 1 + 3 * h + i] += value[0] - value[i]
        # of a kind, a cell keeps its fills and edge total (A7's quote fills, A10's capture)
        sums[1 + kind, 0] += 1.0
        if mids[k, 0] == mids[k, 0]:
            sums[1 + kind, 2] += value[0]
        # A8: the position held over each span (before this fill), and the last fill of a row
        held = abs(fills[k - 1]["position"]) if k > 0 else 0
        span = fill["window_ns"] - (fills[k - 1]["window_ns"] if k > 0 else 0)
        terms[k, HELD_SPAN] = float(held) * float(span)
        if held >= limit:
            ints[TIME_AT_LIMIT] += span
        if k > 0 and r != previous:
            ints[MAX_ABS_POSITION] = max(ints[MAX_ABS_POSITION], held)
        previous = r
    last = fills[n - 1]
    day_count[days - 1] = n - start
    day_sum[days - 1] = rounded_nb(partials, n_day)
    held, span = abs(last["position"]), window - last["window_ns"]
    terms[n, HELD_SPAN] = float(held) * float(span)
    terms[n, NOTIONAL], terms[n, FEE] = 0.0, 0.0
    if held >= limit:
        ints[TIME_AT_LIMIT] += span
    ints[MAX_ABS_POSITION] = max(ints[MAX_ABS_POSITION], held)
    # A9: mtm after each fill date's last row (the date's last defined mid), then after all rows
    w, k, paid_so_far, last_mark = 0, -1, 0.0, -1
    for d in range(days):
        while w < date_days.shape[0] and date_days[w] < day[d]:
            w += 1
        if w == date_days.shape[0] or date_last_row[w] < last_mark:
            return FALLBACK, 0, 0
        mark = last_mark = date_last_row[w]
        while k + 1 < n and fills[k + 1]["row"] <= mark:
            k += 1
            paid_so_far += terms[k, FEE]
        day_mtm[d] = _mtm(fills, k, date_last_mid[w]) - paid_so_far
    floats[TOTAL_MTM] = _mtm(fills, n - 1, final_mid) - paid
    # A8 half-life: the position after each whole minute's row (0 before the first fill)
    k = -1
    for t in range(minute_rows.shape[0]):
        while k + 1 < n and fills[k + 1]["row"] <= minute_rows[t]:
            k += 1
        minute_position[t] = fills[k]["position"] if k >= 0 else 0.0
    floats[MAX_DRAWDOWN], floats[DRAWDOWN_BASE], floats[ANY_PEAK] = max_dd, base, peak
    return days, n_gains, n_losses


@njit(cache=True, inline="always")
def _mtm(fills, k, mid):
    """A9 realized + unrealized after fill k (-1: none), marked at `mid` (NaN: not marked)."""
    if k < 0:
        return 0.0
    value = fills[k]["pnl"]
    if fills[k]["position"] != 0 and mid == mid:
        value += fills[k]["position"] * (mid - fills[k]["entry_price"])
    return value
