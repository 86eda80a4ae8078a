"""The trading day of SPEC §3.2 steps 1-6: date change, end-of-day flatten, the trading window.

`session_step_nb` takes only the state record and scalars, so the per-row call stays cheap (a
kernel helper that takes arrays costs a reference-count round trip on every call, which made the
loop four times slower); the caller performs the flatten it asks for. It also keeps the counters
of ANALYTICS.md A1/A7 with `track_nb` (in-window rows) and `_leave_window_nb` (the others).
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
        st.pair_open = False  # ANALYTICS.md A7 pairs are within one date
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
            st.eod_flatten_day = day  # a flatten is done or pending today (ANALYTICS.md A7)
            _leave_window_nb(st, timestamp)
            if is_trade:
                return FLATTEN
            st.pending_flatten = True
            return SKIP
    # 5. While a flatten is pending every row is skipped; the next trade closes the position.
    if st.pending_flatten:
        _leave_window_nb(st, timestamp)
        if is_trade:
            st.pending_flatten = False
            return FLATTEN
        return SKIP
    # 6. Only rows in [10:00, 14:45) touch the book, quotes and fills.
    if WINDOW_START_NS <= time_of_day < WINDOW_END_NS:
        return IN_WINDOW  # track_nb advances the clock
    _leave_window_nb(st, timestamp)
    return SKIP


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


@njit(cache=True)
def _leave_window_nb(st, timestamp):
    """A row outside the window: it advances the A1 replay clock and starts no A7 pair."""
    st.clock = max(st.clock, timestamp)
    st.pair_open = False


@njit(cache=True)
def track_nb(st, bid, ask, now):
    """ANALYTICS.md A1/A7 at an in-window row, before it is applied: advance the replay clock to
    `now`; the advance weighs the pair (previous row, this row) when the previous row was in the
    window on this date and no EOD flatten is pending or done today, counted with our quotes as
    they stood after the previous row (nothing moves them between two rows). A8's position
    weights come from `window_ns` as each fill saw it (record_fill_nb).

    Branch-free on purpose: whether the clock advances is as unpredictable as the data (many rows
    share a second), and a branch here cost the loop 15% in mispredictions."""
    clock = max(st.clock, now)
    weight = (clock - st.clock) * (st.pair_open & (st.eod_flatten_day != st.last_date))
    st.clock = clock
    st.pair_open = True
    st.window_ns += weight
    st.two_sided_ns += weight * (bid.live & ask.live)
    st.any_side_ns += weight * (bid.live | ask.live)
