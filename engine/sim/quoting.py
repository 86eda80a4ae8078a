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
def withdraw_nb(quote, price, ahead):
    """Not enough displayed value or no size: remember the level, rest nothing (SPEC §4.2-3, §4.3-3)."""
    quote.price = price
    quote.ahead_qty = int(ahead)
    quote.our_remaining = 0
    quote.live = False


@njit(cache=True)
def join_back_nb(quote, price, ahead, size):
    """Rest `size` at `price` behind the displayed `ahead` quantity (a new queue position)."""
    quote.price = price
    quote.ahead_qty = int(ahead)
    quote.our_remaining = size
    quote.live = True
