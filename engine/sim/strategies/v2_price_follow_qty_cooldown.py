"""v2_price_follow_qty_cooldown (SPEC §4.3): follow the touch on every in-window row; after a fill
the side keeps only its unfilled size until `refill_interval_sec` has passed (the cooldown), then
refills in place, keeping its queue position while the price is unchanged."""

from dataclasses import dataclass

from numba import njit

from engine.params import MarketMakingParams
from engine.sim.accounting import flatten_nb
from engine.sim.book import apply_row_nb
from engine.sim.fills import reaches_quote_nb, reference_fill_nb
from engine.sim.quoting import join_back_nb, resize_nb, seconds_since_nb, withdraw_nb
from engine.sim.session import (
    FLATTEN,
    IN_WINDOW,
    MAX_FILLS_PER_ROW,
    count_row_nb,
    session_step_nb,
    track_nb,
)
from engine.types import ASK, BID, TRADE

NAME = "v2_price_follow_qty_cooldown"


@dataclass(frozen=True, kw_only=True)
class Params(MarketMakingParams):
    """v2 accepts max_notional but ignores it, as the reference does (SPEC §0, quirk 3)."""


@njit(cache=True)
def _side_size_nb(quote, quote_size, room, params, now):
    """SPEC §4.3-2: full size, or in cooldown only what is left unfilled; capped by `room`."""
    base = quote_size
    if seconds_since_nb(now, quote.last_fill_time) < params.refill_interval_sec:
        base = float(quote.our_remaining)
    return max(0, int(min(base, room)))


@njit(cache=True)
def _follow_nb(quote, price, ahead, size, params):
    """SPEC §4.3-3: a new price joins the back of the queue; the same price keeps its place."""
    if price * ahead >= params.min_local_currency_before_quote and size > 0:
        if quote.price == 0.0 or quote.price != price:
            join_back_nb(quote, price, ahead, size)
        else:
            resize_nb(quote, size)
    else:
        withdraw_nb(quote, price, ahead)


@njit(cache=True)
def quote_nb(st, bid, ask, params, now):
    """Step 9 of SPEC §3.2 for v2 (and v2.1); both sizes are computed before either side moves."""
    has_bid = st.bid_price > 0
    has_ask = st.ask_price > 0
    if not (has_bid or has_ask):
        return
    room_long = params.max_position - st.position
    room_short = params.max_position + st.position
    bid_size = _side_size_nb(bid, params.quote_size_bid, room_long, params, now) if has_bid else 0
    ask_size = _side_size_nb(ask, params.quote_size_ask, room_short, params, now) if has_ask else 0
    if has_bid:
        _follow_nb(bid, st.bid_price, st.bid_qty, bid_size, params)
    if has_ask:
        _follow_nb(ask, st.ask_price, st.ask_qty, ask_size, params)


@njit(cache=True)
def run_nb(timestamp, kind, price, volume, params, state, quotes, out, start):
    """SPEC §3.2 with v2 quoting over rows [start, n); returns where to resume (n when done)."""
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
