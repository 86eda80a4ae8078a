"""Fill models. `reference` is SPEC §3.4 exactly: prints fill us at the print price, ask side
first, both sides fillable by one print, the queue ahead of us decremented by every print at or
through our price, and the book never depleted by our fills."""

from numba import njit

from engine.sim.accounting import record_fill_nb
from engine.types import BUY, FILL_QUOTE, SELL


@njit(cache=True)
def _fill_side_nb(st, bid, ask, out, row, timestamp, side, price, volume):
    """Queue logic for one live side: the print first eats `ahead_qty`, then our remaining size."""
    quote = bid if side == BUY else ask
    print_left = int(volume) if volume == volume else 0  # a NaN size fills nothing
    consumed_ahead = min(quote.ahead_qty, print_left)
    quote.ahead_qty -= consumed_ahead
    print_left -= consumed_ahead
    if print_left > 0 and quote.our_remaining > 0:
        qty = min(quote.our_remaining, print_left)
        quote.our_remaining -= qty
        if quote.our_remaining == 0:
            quote.live = False
        record_fill_nb(st, bid, ask, out, row, timestamp, side, price, qty, FILL_QUOTE)


@njit(cache=True)
def reaches_quote_nb(bid, ask, price):
    """Whether a print at `price` is at or through one of our live quotes (cheap pre-check)."""
    return (ask.live and price >= ask.price) or (bid.live and price <= bid.price)


@njit(cache=True)
def reference_fill_nb(st, bid, ask, out, row, timestamp, price, volume):
    """SPEC §3.4: a TRADE print of `volume` at `price` against our live quotes (ask side first)."""
    ask_hit = ask.live and price >= ask.price
    bid_hit = bid.live and price <= bid.price  # read before the ask side fills (SPEC §3.4)
    if ask_hit:
        _fill_side_nb(st, bid, ask, out, row, timestamp, SELL, price, volume)
    if bid_hit:
        _fill_side_nb(st, bid, ask, out, row, timestamp, BUY, price, volume)
