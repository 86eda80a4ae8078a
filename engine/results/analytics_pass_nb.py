"""The compiled one-pass fast path of the fill-quality analytics (ANALYTICS.md A1, A2, A4, A8, A9):
one walk over a security's rows keeps the market book and the replay clock, answers each fill's
horizon requests as the clock passes them, samples the position minutes and notes each date's
last row and mid. No row-sized array is written. It holds when every date is one run of rows
and the dates ascend (our data); otherwise it says so and `engine.results.analytics` takes the
general path (`analytics_nb`), which gives the same answers for any order of rows.
"""

import numpy as np
from numba import njit

from engine.types import ASK, BID, NS_PER_DAY, TRADE

assert (BID, ASK, TRADE) == (0, 1, 2)  # `book` is indexed by the kind

NO_DUE = np.iinfo(np.int64).max  # no request pending


@njit(cache=True, inline="always")  # called per row or fill: no call overhead
def _insert_nb(pending, h, head, tail, due_of, k, due):
    """Queue request `k` (due at `due`) of horizon `h` in due order: at the tail unless the row
    stepped back. (Indexes the 2-D array: a row view would cost a reference count per call.)"""
    at = tail
    while at > head and due_of[pending[h, at - 1]] > due:
        pending[h, at] = pending[h, at - 1]
        at -= 1
    pending[h, at] = k


@njit(cache=True, inline="always")  # called per row or fill: no call overhead
def _next_due_nb(pending, head, tail, fill_time, horizons):
    """The earliest due time of the queued requests of every horizon (NO_DUE: none)."""
    due = NO_DUE
    for h in range(horizons.shape[0]):
        if head[h] < tail[h]:
            due = min(due, fill_time[pending[h, head[h]]] + horizons[h])
    return due


@njit(cache=True, inline="always")  # called per row or fill: no call overhead
def _answer_nb(pending, head, tail, fill_time, horizons, clock, mid, mids):
    """A4: requests due before `clock` are answered by the previous row's `mid` (every later row
    has a later clock); with clock NO_DUE, all of them (the date's last row, A4's L)."""
    for h in range(horizons.shape[0]):
        while head[h] < tail[h] and clock > fill_time[pending[h, head[h]]] + horizons[h]:
            mids[pending[h, head[h]], 1 + h] = mid
            head[h] += 1


@njit(cache=True)
def fused_pass_nb(events, fill_rows, horizons, window, mids, minute_rows, date_rows, date_mids):
    """One pass over `events` (timestamp, kind, price, volume). Fills at `fill_rows` (ascending):
    mids[k, 0] = mid after the fill's row r, mids[k, 1 + h] = mid after the last row with clock
    <= ts_r + horizons[h], never before r nor after the date's last row (A4). Per date d (in row
    order): its last row `date_rows[d]`, the last defined mid at or before it `date_mids[d]`
    (A9), and for each minute of `window` = (first, end, step) ns of the day the last row at or
    before it on the clock, `minute_rows[d * minutes + t]` (A8). Returns the number of dates, or
    -1 when a date is not one run after the previous date (or there are more dates than
    `date_rows` holds): then nothing is valid. Oracle: tests/engine/analytics_reference.py."""
    timestamp, kind, price, volume = events
    n, hn, m = kind.shape[0], horizons.shape[0], fill_rows.shape[0]
    pending = np.empty((hn, m), dtype=np.int64)  # per horizon: fills waiting, in due order
    head, tail = np.zeros(hn, dtype=np.int64), np.zeros(hn, dtype=np.int64)
    fill_time, due = np.empty(m, dtype=np.int64), NO_DUE
    per_day = (window[1] - window[0] + window[2] - 1) // window[2]
    dates, day_start, day_end = 0, 0, 0
    clock, wake = (timestamp[0] if n else 0), NO_DUE  # wake: the next due request or minute
    previous, carried, k, sampled, minute = np.nan, np.nan, 0, per_day, NO_DUE
    next_fill, i = (fill_rows[0] if m else n), 0
    book = np.zeros(3)  # bid, ask, and a slot the TRADE rows write to (no branch on the kind)
    while i < n:
        while i < next_fill:  # the common row: no new date, nothing due, no fill (a tight loop)
            now = timestamp[i]
            if now < day_start or now >= day_end or now > wake:  # (clock <= wake here)
                break
            clock = max(clock, now)
            mid = _book_nb(book, kind[i], price[i], volume[i])
            carried, previous, i = (mid if mid == mid else carried), mid, i + 1
        if i == n:
            break
        now = timestamp[i]
        clock = max(clock, now)  # A1 (branch-free: steps back come in no pattern)
        if now < day_start or now >= day_end:  # a cheap test before the division
            start = (now // NS_PER_DAY) * NS_PER_DAY
            if dates == 0 or start != day_start:  # a new date: close the last one at row i - 1
                if (dates and start < day_start) or dates == date_rows.shape[0]:
                    return -1
                if dates:
                    _answer_nb(pending, head, tail, fill_time, horizons, NO_DUE, previous, mids)
                    _close_date_nb(dates - 1, i - 1, carried, sampled, date_rows, date_mids,
                                   minute_rows[(dates - 1) * per_day : dates * per_day])  # fmt: skip
                book[:], dates, sampled, minute = 0.0, dates + 1, 0, start + window[0]
                due, wake = NO_DUE, start + window[0]
            day_start, day_end = start, start + NS_PER_DAY
        if clock > wake:  # requests or minutes now past: the previous row answers them
            if clock > due:
                _answer_nb(pending, head, tail, fill_time, horizons, clock, previous, mids)
                due = _next_due_nb(pending, head, tail, fill_time, horizons)
            while sampled < per_day and clock > minute:
                minute_rows[(dates - 1) * per_day + sampled] = i - 1
                sampled, minute = sampled + 1, minute + window[2]
            wake = min(due, minute if sampled < per_day else NO_DUE)
        mid = _book_nb(book, kind[i], price[i], volume[i])
        carried = mid if mid == mid else carried
        while k < m and fill_rows[k] == i:
            mids[k, 0], fill_time[k] = mid, now
            for h in range(hn):
                if clock > now + horizons[h]:  # ts_r + h is before the clock: row r answers
                    mids[k, 1 + h] = mid
                else:
                    _insert_nb(pending, h, head[h], tail[h], fill_time, k, now)
                    tail[h] += 1
                    due = min(due, now + horizons[h])
            k += 1
        next_fill, wake = (fill_rows[k] if k < m else n), min(wake, due)
        previous, i = mid, i + 1
    _answer_nb(pending, head, tail, fill_time, horizons, NO_DUE, previous, mids)
    if dates:
        _close_date_nb(dates - 1, n - 1, carried, sampled, date_rows, date_mids,
                       minute_rows[(dates - 1) * per_day : dates * per_day])  # fmt: skip
    return dates


@njit(cache=True, inline="always")  # called per row or fill: no call overhead
def _book_nb(book, kind, price, volume):
    """SPEC §2 rules 2-3 for one row: book[kind] takes the level (0.0: empty; a TRADE row writes
    to book[2], which nothing reads), with no branch on the kind; the mid after it (A2)."""
    book[kind] = price if volume > 0 else 0.0  # only a size > 0 sets a side
    bid, ask = book[BID], book[ASK]
    return (bid + ask) / 2 if (bid > 0) & (ask > 0) else np.nan


@njit(cache=True)
def _close_date_nb(date, last_row, carried, sampled, date_rows, date_mids, minutes):
    """A date's last row and mid; its minutes not yet past are the last row's."""
    date_rows[date], date_mids[date] = last_row, carried
    for t in range(sampled, minutes.shape[0]):
        minutes[t] = last_row
