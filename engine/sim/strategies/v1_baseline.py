"""v1_baseline (SPEC §4.2): quote the touch on both sides and keep each quote for
`refill_interval_sec`; a fill restarts that side's timer. Sizes respect max_position and
max_notional (SPEC §3.3)."""

from dataclasses import dataclass

from numba import njit

from engine.params import MarketMakingParams
from engine.sim.accounting import flatten_nb
from engine.sim.book import apply_row_nb
from engine.sim.fills import reaches_quote_nb, reference_fill_nb
from engine.sim.quoting import join_back_nb, seconds_since_nb, withdraw_nb
from engine.sim.session import (
    FLATTEN,
    IN_WINDOW,
    MAX_FILLS_PER_ROW,
    count_row_nb,
    session_step_nb,
    track_nb,
)
from engine.types import ASK, BID, TRADE

NAME = "v1_baseline"


@dataclass(frozen=True, kw_only=True)
class Params(MarketMakingParams):
    """v1 uses every common parameter, including max_notional."""


@njit(cache=True)
def _max_position_nb(st, params):
    """SPEC §3.3: the share cap, tightened by max_notional at the mid (or the one existing side)."""
    max_pos = params.max_position
    if params.max_notional == params.max_notional:  # not NaN: max_notional is set
        if st.bid_price > 0 and st.ask_price > 0:
            mid = (st.bid_price + st.ask_price) / 2
        elif st.bid_price > 0:
            mid = st.bid_price
        else:
            mid = st.ask_price
        if mid > 0:
            max_pos = min(max_pos, float(int(params.max_notional / mid)))
    return max_pos


@njit(cache=True)
def _refresh_side_nb(quote, price, ahead, size, params, now):
    """SPEC §4.2 1-3: when the refill is due, re-quote at the touch or withdraw."""
    if seconds_since_nb(now, quote.refill_time) < params.refill_interval_sec:
        return  # not due: the quote sticks at its old price, queue and size
    if price * ahead >= params.min_local_currency_before_quote and size > 0:
        join_back_nb(quote, price, ahead, int(size))
        quote.refill_time = now
    else:
        withdraw_nb(quote, price, ahead)  # the timer is not reset: re-examined every row


@njit(cache=True)
def quote_nb(st, bid, ask, params, now):
    """Step 9 of SPEC §3.2 for v1; sides with an empty book side are left untouched."""
    has_bid = st.bid_price > 0
    has_ask = st.ask_price > 0
    if not (has_bid or has_ask):
        return
    max_pos = _max_position_nb(st, params)
    bid_size = (
        max(0.0, min(params.quote_size_bid, float(int(max_pos - st.position)))) if has_bid else 0.0
    )
    ask_size = (
        max(0.0, min(params.quote_size_ask, float(int(max_pos + st.position)))) if has_ask else 0.0
    )
    if has_bid:
        _refresh_side_nb(bid, st.bid_price, st.bid_qty, bid_size, params, now)
    if has_ask:
        _refresh_side_nb(ask, st.ask_price, st.ask_qty, ask_size, params, now)


@njit(cache=True)
def run_nb(timestamp, kind, price, volume, params, state, quotes, out, start):
    """SPEC §3.2 with v1 quoting over rows [start, n); returns where to resume (n when done)."""
    st, bid, ask = state[0], quotes[BID], quotes[ASK]
    for row in range(start, kind.shape[0]):
        if st.n_fills + MAX_FILLS_PER_ROW > out.shape[0]:
            return row  # output full: the caller grows it and resumes here
        now = timestamp[row]
        step = session_step_nb(st, now, kind[row])
        if step == FLATTEN:
            flatten_nb(st, bid, ask, out, row, now, price[row])
        if step != IN_WINDOW:
            continue
        track_nb(st, bid, ask, now)  # ANALYTICS.md A1/A7 counters
        apply_row_nb(st, kind[row], price[row], volume[row])
        count_row_nb(st, kind[row], price[row])
        quote_nb(st, bid, ask, params, now)
        if kind[row] == TRADE and reaches_quote_nb(bid, ask, price[row]):
            reference_fill_nb(st, bid, ask, out, row, now, price[row], volume[row])
    return kind.shape[0]
