"""Small kernels shared by the quote-maintenance rules of the strategies (SPEC §4)."""

from numba import njit

from engine.types import NO_TIME, NS_PER_SECOND


@njit(cache=True)
def seconds_since_nb(now, then):
    """`(now - then).total_seconds()` for ns timestamps; +inf when `then` is unset."""
    if then == NO_TIME:
        return float("inf")
    return (now - then) / NS_PER_SECOND


@njit(cache=True)
def count_placement_nb(quote, price, size):
    """ANALYTICS.md A7 quotes_placed: the side goes live with size > 0 from not live, or from
    live at another price or size (a refill or re-quote counts once; an unchanged quote not)."""
    if size > 0 and not (quote.live and quote.price == price and quote.our_remaining == size):
        quote.placed += 1


@njit(cache=True)
def resize_nb(quote, size):
    """Keep the price and queue place, rest `size` > 0 (SPEC §4.3-3 same price: a refill in
    place); an unchanged live quote is left as it is (and is not a placement, A7)."""
    if quote.live and quote.our_remaining == size:
        return
    quote.placed += 1
    quote.our_remaining = size
    quote.live = True


@njit(cache=True)
def withdraw_nb(quote, price, ahead):
    """Not enough displayed value or no size: remember the level, rest nothing (SPEC §4.2-3, §4.3-3)."""
    quote.price = price
    quote.ahead_qty = int(ahead)
    quote.our_remaining = 0
    quote.live = False


@njit(cache=True)
def join_back_nb(quote, price, ahead, size):
    """Rest `size` at `price` behind the displayed `ahead` quantity (a new queue position)."""
    count_placement_nb(quote, price, size)
    quote.price = price
    quote.ahead_qty = int(ahead)
    quote.our_remaining = size
    quote.live = True
