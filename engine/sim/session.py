"""The trading day of SPEC §3.2 steps 1-6: date change, end-of-day flatten, the trading window.

`session_step_nb` takes only the state record and scalars, so the per-row call stays cheap (a
kernel helper that takes arrays costs a reference-count round trip on every call, which made the
loop four times slower); the caller performs the flatten it asks for.
"""

from numba import njit

from engine.sim.book import clear_book_nb
from engine.types import BID, NO_TIME, NS_PER_DAY, NS_PER_SECOND, TRADE

WINDOW_START_NS = 10 * 3600 * NS_PER_SECOND  # 10:00:00, first in-window time (SPEC §3.2-6)
WINDOW_END_NS = (14 * 3600 + 45 * 60) * NS_PER_SECOND  # 14:45:00, excluded
EOD_NS = (14 * 3600 + 55 * 60) * NS_PER_SECOND  # 14:55:00, end-of-day flatten trigger (§3.2-4)

# Most rows fill at most three times: a v2.1 liquidation, then an ask and a bid quote fill.
MAX_FILLS_PER_ROW = 3

# What the session says about a row.
SKIP = 0  # outside the window, or skipped while a flatten is pending
IN_WINDOW = 1  # goes on to the book, the strategy and the fill model (steps 7-10)
FLATTEN = 2  # close the whole position at this trade's price, then skip the row


@njit(cache=True)
def session_step_nb(st, timestamp, kind):
    """Steps 1-6 of SPEC §3.2 for one row: SKIP, IN_WINDOW or FLATTEN."""
    day = timestamp // NS_PER_DAY
    time_of_day = timestamp - day * NS_PER_DAY
    # 1. The first row of a new calendar date empties the book (quotes and orders survive).
    if st.has_prev_row and day != st.last_date:
        clear_book_nb(st)
    st.has_prev_row = True
    st.last_date = day
    # 3. A new date re-arms the end-of-day flatten.
    if st.last_flatten_date != NO_TIME and st.last_flatten_date != day:
        st.closed_at_eod = False
        st.pending_flatten = False
    is_trade = kind == TRADE
    # 4. End of day: flatten on the first trade at/after 14:55, or wait for one (pending).
    if time_of_day >= EOD_NS and not st.closed_at_eod:
        st.closed_at_eod = True
        st.last_flatten_date = day
        if st.position != 0:
            if is_trade:
                return FLATTEN
            st.pending_flatten = True
            return SKIP
    # 5. While a flatten is pending every row is skipped; the next trade closes the position.
    if st.pending_flatten:
        if is_trade:
            st.pending_flatten = False
            return FLATTEN
        return SKIP
    # 6. Only rows in [10:00, 14:45) touch the book, quotes and fills.
    return IN_WINDOW if WINDOW_START_NS <= time_of_day < WINDOW_END_NS else SKIP


@njit(cache=True)
def count_row_nb(st, kind, price):
    """Step 7 counters: in-window rows by type and the last in-window trade price."""
    st.rows_in_window += 1
    if kind == TRADE:
        st.trade_rows += 1
        st.last_price = price
    elif kind == BID:
        st.bid_rows += 1
    else:
        st.ask_rows += 1
