"""Average-cost position and realized P&L (SPEC §3.5, §3.6) and the v2.1 cost basis (SPEC §4.4-1).

Every fill of every kind (quote fill, end-of-day flatten, stop-loss liquidation) goes through
`record_fill_nb`, which also writes the trade record. The operation order below is the spec's, so
realized P&L matches the reference to the last bit of a double.
"""

from numba import njit

from engine.types import BUY, FILL_EOD_FLATTEN, SELL


@njit(cache=True)
def _update_cost_basis_nb(st, old_position, price):
    """SPEC §4.4-1: track |cost| of the open position from old and new position."""
    new = st.position
    old_abs = abs(old_position)
    new_abs = abs(new)
    if old_position == 0:
        st.cost_basis = price * new_abs
    elif new == 0:
        st.cost_basis = 0.0
    elif (old_position > 0) == (new > 0):
        if new_abs > old_abs:
            st.cost_basis += price * (new_abs - old_abs)
        elif new_abs < old_abs:
            st.cost_basis *= new_abs / old_abs
    else:  # sign flip: the remainder was opened at this price
        st.cost_basis = price * new_abs
    st.cost_qty = new_abs


@njit(cache=True)
def record_fill_nb(st, bid, ask, out, row, timestamp, side, price, qty, kind):
    """Book a fill of `qty` at `price` (SPEC §3.5) and append its trade record, with its `kind`
    (ANALYTICS.md A3), to `out`; `bid` and `ask` are our two quote records (a buy restarts the
    bid side's timers)."""
    if qty <= 0:
        return
    old_position = st.position
    realized = 0.0
    remaining = qty
    if side == BUY:
        if st.position < 0:  # close (part of) a short first
            closed = min(remaining, -st.position)
            realized = (st.entry_price - price) * closed
            st.realized += realized
            st.position += closed
            remaining -= closed
        if remaining > 0:
            if st.position == 0:
                st.entry_price = price
                st.position = remaining
            else:
                cost = st.entry_price * st.position + price * remaining
                st.position += remaining
                st.entry_price = cost / st.position
        timer = bid
    else:
        if st.position > 0:  # close (part of) a long first
            closed = min(remaining, st.position)
            realized = (price - st.entry_price) * closed
            st.realized += realized
            st.position -= closed
            remaining -= closed
        if remaining > 0:
            if st.position == 0:
                st.entry_price = price
                st.position = -remaining
            else:
                cost = st.entry_price * abs(st.position) + price * remaining
                st.position -= remaining
                st.entry_price = cost / abs(st.position)
        timer = ask
    _update_cost_basis_nb(st, old_position, price)
    # SPEC §3.5-5: a fill restarts that side's refill timer and cooldown.
    timer.refill_time = timestamp
    timer.last_fill_time = timestamp
    k = st.n_fills
    out[k].row = row
    out[k].side = side
    out[k].kind = kind
    out[k].fill_price = price
    out[k].fill_qty = qty
    out[k].realized_pnl = realized
    out[k].position = st.position
    out[k].pnl = st.realized
    out[k].entry_price = st.entry_price
    out[k].window_ns = st.window_ns
    st.n_fills = k + 1


@njit(cache=True)
def flatten_nb(st, bid, ask, out, row, timestamp, price):
    """Close the whole position at `price` (SPEC §3.6); nothing when flat."""
    if st.position > 0:
        record_fill_nb(
            st, bid, ask, out, row, timestamp, SELL, price, st.position, FILL_EOD_FLATTEN
        )
    elif st.position < 0:
        record_fill_nb(
            st, bid, ask, out, row, timestamp, BUY, price, -st.position, FILL_EOD_FLATTEN
        )
