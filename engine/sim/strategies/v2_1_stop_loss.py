"""v2_1_stop_loss (SPEC §4.4): v2 plus a mid-price stop-loss that liquidates the position at the
touch, limited by the displayed size, before quoting resumes."""

from dataclasses import dataclass

from numba import njit

from engine.params import MarketMakingParams
from engine.sim.accounting import flatten_nb, record_fill_nb
from engine.sim.book import apply_row_nb
from engine.sim.fills import reaches_quote_nb, reference_fill_nb
from engine.sim.session import (
    FLATTEN,
    IN_WINDOW,
    MAX_FILLS_PER_ROW,
    count_row_nb,
    session_step_nb,
    track_nb,
)
from engine.sim.strategies.v2_price_follow_qty_cooldown import quote_nb
from engine.types import ASK, BID, BUY, FILL_STOP_LOSS, SELL, TRADE

NAME = "v2_1_stop_loss"


@dataclass(frozen=True, kw_only=True)
class Params(MarketMakingParams):
    """v2 parameters plus the stop threshold in percent of the position's cost."""

    stop_loss_threshold_pct: float = 2.0


@njit(cache=True)
def check_trigger_nb(st, params):
    """SPEC §4.4-2: trigger when the mid-marked loss exceeds the threshold % of the cost basis."""
    if not (st.bid_price > 0 and st.ask_price > 0) or st.position == 0 or st.stop_side != 0:
        return
    mid = (st.bid_price + st.ask_price) / 2.0
    cost = abs(st.cost_basis)
    if cost < 1e-6:
        pct = 0.0
    else:
        unrealized = 0.0
        if st.cost_qty != 0:
            unrealized = (mid - cost / st.cost_qty) * st.position
        pct = unrealized / cost * 100.0
    if pct < -params.stop_loss_threshold_pct:
        st.stop_side = SELL if st.position > 0 else BUY
        st.stop_remaining = abs(st.position)
        st.stop_loss_triggers += 1


@njit(cache=True)
def liquidate_nb(st, bid, ask, out, row, now):
    """SPEC §4.4-3 while a liquidation is pending; False when quoting and fills are skipped."""
    if st.stop_side == SELL:  # hit the bid, at most its displayed size
        touch, available = st.bid_price, st.bid_qty
    else:
        touch, available = st.ask_price, st.ask_qty
    if touch <= 0 or available <= 0:
        return False
    qty = int(min(float(st.stop_remaining), available))
    record_fill_nb(st, bid, ask, out, row, now, st.stop_side, touch, qty, FILL_STOP_LOSS)
    st.stop_remaining -= qty
    if st.stop_remaining == 0:
        st.stop_side = 0
        return True
    return False


@njit(cache=True)
def run_nb(timestamp, kind, price, volume, params, state, quotes, out, start):
    """SPEC §3.2 with v2 quoting and the v2.1 stop over rows [start, n); returns where to resume."""
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
        check_trigger_nb(st, params)  # SPEC §4.4: between steps 8 and 9
        if st.stop_side != 0 and not liquidate_nb(st, bid, ask, out, row, now):
            continue
        quote_nb(st, bid, ask, params, now)
        if kind[row] == TRADE and reaches_quote_nb(bid, ask, price[row]):
            reference_fill_nb(st, bid, ask, out, row, now, price[row], volume[row])
    return kind.shape[0]
