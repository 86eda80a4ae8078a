"""The one-level order book of SPEC §2, kept inside the kernel state record."""

from numba import njit

from engine.types import ASK, BID


@njit(cache=True)
def clear_book_nb(st):
    """Empty both sides (SPEC §2-8: first row of a new calendar date)."""
    st.bid_price = 0.0
    st.bid_qty = 0.0
    st.ask_price = 0.0
    st.ask_qty = 0.0


@njit(cache=True)
def apply_row_nb(st, kind, price, volume):
    """Apply one row: a BID/ASK snapshot replaces its side, empty when volume is not > 0 (SPEC §2-2/3)."""
    if volume > 0:
        side_price, side_qty = price, volume
    else:
        side_price, side_qty = 0.0, 0.0
    if kind == BID:
        st.bid_price, st.bid_qty = side_price, side_qty
    elif kind == ASK:
        st.ask_price, st.ask_qty = side_price, side_qty
