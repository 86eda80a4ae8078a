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
    if kind == BID:
        if volume > 0:
            st.bid_price = price
            st.bid_qty = volume
        else:
            st.bid_price = 0.0
            st.bid_qty = 0.0
    elif kind == ASK:
        if volume > 0:
            st.ask_price = price
            st.ask_qty = volume
        else:
            st.ask_price = 0.0
            st.ask_qty = 0.0
