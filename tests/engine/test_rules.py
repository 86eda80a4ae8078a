"""Hand-made tick tables, one per spec rule, compared against the complete list of fills.

Every expectation was worked out by hand from SPEC §2-§4 (the reasoning is in the comments),
not copied from the engine. Fill tuples are `(time, side, price, qty, realized_pnl, position)`
(see `tick.py`); realized P&L is written as the spec's formula so the double matches exactly.
Unless a test says otherwise: quote_size 100, max_position 1000, min_local_currency 0,
refill_interval_sec 60, and for v2.1 a stop threshold (99 %) that never fires.
"""

from __future__ import annotations

import math

import pytest
from tick import run

ALL = ("v1_baseline", "v2_price_follow_qty_cooldown", "v2_1_stop_loss")
V1 = "v1_baseline"
V2 = "v2_price_follow_qty_cooldown"
V21 = "v2_1_stop_loss"
DAY2 = "2025-04-15"

# Both book sides at 10:00:00: our bid rests at 10.00 behind 500, our ask at 10.05 behind 500.
OPEN = [("10:00:00", "BID", 10.00, 500), ("10:00:00", "ASK", 10.05, 500)]


# --- SPEC §2: the one-level book ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, math.nan])
def test_bid_row_with_no_size_empties_the_bid_side(size):
    """SPEC §2-2: a BID row with volume 0 (or NaN) empties the bid side, so v2 (which follows the
    touch every row, §4.3) does not move its bid to that row's price; the old quote stays (§3.2-9)."""
    rows = [
        *OPEN,  # bid 10.00 (ahead 500), ask 10.05 (ahead 500)
        ("10:00:01", "BID", 10.01, size),  # bid side empty: our bid stays at 10.00, ahead 500
        ("10:00:02", "TRADE", 10.01, 1000),  # 10.01 > 10.00 and < 10.05: nothing
        ("10:00:03", "TRADE", 10.00, 600),  # bid: ahead 500 -> 0, then 100 of ours
    ]
    assert run(V2, rows) == [("10:00:03", "buy", 10.00, 100, 0.0, 100)]


@pytest.mark.parametrize("size", [0, math.nan])
def test_ask_row_with_no_size_empties_the_ask_side(size):
    """SPEC §2-2: same for ASK: the ask side is emptied and our ask stays at its old price."""
    rows = [
        *OPEN,
        ("10:00:01", "ASK", 10.04, size),  # ask side empty: our ask stays at 10.05
        ("10:00:02", "TRADE", 10.04, 1000),  # below our ask: nothing
        ("10:00:03", "TRADE", 10.05, 530),  # ask: ahead 500 -> 0, 30 of ours
    ]
    assert run(V2, rows) == [("10:00:03", "sell", 10.05, 30, 0.0, -30)]


def test_new_date_empties_book_but_quotes_survive_and_stale_quote_fills():
    """SPEC §2-8 and §3.1/§3.2 (quirk 5): the first row of a new date empties the book, while our
    quotes and queue survive; a stale quote from the previous day fills at the next day's print."""
    rows = [
        *OPEN,  # v1: bid 10.00 ahead 500 (timer 10:00:00), ask 10.05 ahead 500
        # v1 refill due (>= 60 s): re-quote bid 10.00 ahead 500, then the print eats 300 -> 200.
        ("14:44:00", "TRADE", 10.00, 300),
        # Day 2: the book is emptied first, so only the ask side exists; the bid side is not
        # touched and our bid keeps 10.00 / ahead 200 / 100. (Had the book kept bid 10.00/500,
        # the due bid would re-join behind 500 and the next print would not reach us.)
        (f"{DAY2} 10:00:00", "ASK", 10.10, 500),
        ("10:00:01", "TRADE", 9.99, 300),  # bid: ahead 200 -> 0, 100 of ours at the print, 9.99
    ]
    assert run(V1, rows) == [(f"{DAY2} 10:00:01", "buy", 9.99, 100, 0.0, 100)]


def test_stale_quote_fills_at_next_open_with_empty_book():
    """SPEC §3.2 quirk 5 / §3.2-9: with both book sides empty after the date change nothing is
    re-quoted, and yesterday's bid fills at today's first in-window print."""
    rows = [
        *OPEN,  # bid 10.00 ahead 500, ask 10.05 ahead 500
        ("14:44:59", "TRADE", 10.02, 10),  # between our quotes: nothing
        (f"{DAY2} 09:30:00", "BID", 9.50, 1000),  # new date: book emptied; out of window
        ("10:00:00", "TRADE", 9.90, 700),  # book empty: no quoting; bid ahead 500 -> 0, 100 ours
    ]
    for strategy in ALL:
        assert run(strategy, rows) == [(f"{DAY2} 10:00:00", "buy", 9.90, 100, 0.0, 100)], strategy


# --- SPEC §3.2: the trading day -------------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_rows_outside_the_window_touch_nothing(strategy):
    """SPEC §3.2-6: rows outside [10:00, 14:45) never touch the book, quotes or fills."""
    rows = [
        ("09:59:59", "BID", 10.00, 500),  # out of window: not in the book, so no bid quote
        ("10:00:00", "ASK", 10.05, 500),  # ask only: our ask 10.05 ahead 500
        ("10:00:01", "TRADE", 9.90, 1000),  # no bid quote exists: nothing
        ("10:00:02", "BID", 10.00, 500),  # our bid 10.00 ahead 500 / 100
        ("14:44:59", "TRADE", 10.00, 400),  # in window: ahead 500 -> 100 (v1 re-joins first: same)
        ("14:45:00", "TRADE", 9.00, 100_000),  # out of window: no fill, queue untouched
        (f"{DAY2} 09:59:59", "TRADE", 9.00, 100_000),  # out of window: no fill
        ("10:00:00", "TRADE", 9.95, 150),  # book empty; bid ahead 100 -> 0, 50 ours at 9.95
    ]
    assert run(strategy, rows) == [(f"{DAY2} 10:00:00", "buy", 9.95, 50, 0.0, 50)]


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("flatten_volume", [50, 0])
def test_eod_flatten_at_first_trade_from_1455(strategy, flatten_volume):
    """SPEC §3.2-4 / §3.6: the first TRADE at/after 14:55 flattens the whole position at that
    print's price, whatever its size (a size-0 print too, §1.6-4); later prints do nothing."""
    rows = [
        *OPEN,
        ("10:00:01", "TRADE", 10.00, 600),  # bid: ahead 500 -> 0, buy 100 at 10.00
        ("14:50:00", "TRADE", 10.20, 500),  # before 14:55 and out of window: nothing
        ("14:55:00", "TRADE", 10.10, flatten_volume),  # flatten: sell 100 at 10.10
        ("14:55:00", "TRADE", 10.30, 500),  # already closed today
    ]
    assert run(strategy, rows) == [
        ("10:00:01", "buy", 10.00, 100, 0.0, 100),
        ("14:55:00", "sell", 10.10, 100, (10.10 - 10.00) * 100, 0),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_pending_flatten_when_first_row_from_1455_is_not_a_trade(strategy):
    """SPEC §3.2-4/5: the first row at/after 14:55 is a BID, so the flatten is pending; rows are
    skipped until the next trade, which flattens at its price."""
    rows = [
        *OPEN,
        ("10:00:01", "TRADE", 10.00, 600),  # buy 100 at 10.00
        ("14:55:00", "BID", 10.00, 500),  # pending flatten
        ("14:55:01", "ASK", 10.10, 500),  # skipped
        ("14:56:00", "TRADE", 10.07, 10),  # flatten: sell 100 at 10.07
        ("14:57:00", "TRADE", 10.50, 10),  # nothing
    ]
    assert run(strategy, rows) == [
        ("10:00:01", "buy", 10.00, 100, 0.0, 100),
        ("14:56:00", "sell", 10.07, 100, (10.07 - 10.00) * 100, 0),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_overnight_carry_when_no_trade_follows_and_flags_reset_next_day(strategy):
    """SPEC §3.2 consequences (quirk 6) and §3.2-3: a pending flatten with no later trade that day
    carries the position overnight; the next date re-arms the EOD flatten, which fires at 14:55."""
    rows = [
        *OPEN,
        ("10:00:01", "TRADE", 10.00, 600),  # buy 100 at 10.00
        ("14:55:00", "BID", 10.00, 500),  # pending flatten ...
        ("15:00:00", "ASK", 10.05, 500),  # ... but no trade follows: carried overnight
        # Day 2: flags reset. The carried long is quoted again (both sides re-quoted at
        # 10.00 / 10.05); the prints below reach neither quote.
        (f"{DAY2} 10:00:00", "BID", 10.00, 500),
        ("10:00:00", "ASK", 10.05, 500),
        ("10:30:00", "TRADE", 10.02, 10),
        ("14:55:00", "TRADE", 10.03, 20),  # EOD flatten again: sell 100 at 10.03
    ]
    assert run(strategy, rows) == [
        ("2025-04-14 10:00:01", "buy", 10.00, 100, 0.0, 100),
        (f"{DAY2} 14:55:00", "sell", 10.03, 100, (10.03 - 10.00) * 100, 0),
    ]


# --- SPEC §3.4: the reference fill model ----------------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_one_print_fills_both_sides_of_a_crossed_pair_ask_first(strategy):
    """SPEC §3.4-1/2/3 and §2-5: with our bid (10.05) above our ask (10.00) a print between them
    fills both, each side using the full print volume; the sell is recorded before the buy."""
    rows = [
        ("10:00:00", "BID", 10.05, 100),  # crossed book, not repaired: our bid 10.05 ahead 100
        ("10:00:00", "ASK", 10.00, 100),  # our ask 10.00 ahead 100
        # ask: 10.02 >= 10.00, ahead 100 -> 0, sell 50; bid: 10.02 <= 10.05, ahead 100 -> 0,
        # buy 50, closing the short at (10.02 - 10.02) * 50.
        ("10:00:01", "TRADE", 10.02, 150),
    ]
    assert run(strategy, rows) == [
        ("10:00:01", "sell", 10.02, 50, 0.0, -50),
        ("10:00:01", "buy", 10.02, 50, (10.02 - 10.02) * 50, 0),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_fill_price_is_the_print_price_not_our_quote(strategy):
    """SPEC §3.4-3: a print through our level fills us at the print's (better) price."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),
        ("10:00:00", "ASK", 10.05, 100),
        ("10:00:01", "TRADE", 9.90, 150),  # through our bid: ahead 100 -> 0, buy 50 at 9.90
        ("10:00:02", "TRADE", 10.20, 130),  # through our ask: ahead 100 -> 0, sell 30 at 10.20
    ]
    assert run(strategy, rows) == [
        ("10:00:01", "buy", 9.90, 50, 0.0, 50),
        ("10:00:02", "sell", 10.20, 30, (10.20 - 9.90) * 30, 20),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_queue_ahead_is_consumed_first_and_partial_fill_stays_live(strategy):
    """SPEC §3.4-1: prints eat `ahead_qty` before our size; a partial fill stays live with the
    remaining size (v1: timer restarted by the fill; v2: cooldown keeps the remainder in place)."""
    rows = [
        ("10:00:00", "BID", 10.00, 300),  # our bid 10.00 ahead 300 / 100
        ("10:00:00", "ASK", 10.05, 300),
        ("10:00:01", "TRADE", 10.00, 250),  # ahead 300 -> 50
        ("10:00:02", "TRADE", 10.00, 80),  # ahead 50 -> 0, buy 30; 70 left
        ("10:00:03", "TRADE", 10.00, 50),  # buy 50; 20 left
        ("10:00:04", "TRADE", 10.00, 500),  # buy only our last 20; side done
        ("10:00:05", "TRADE", 10.00, 500),  # nothing live on the bid
    ]
    assert run(strategy, rows) == [
        ("10:00:02", "buy", 10.00, 30, 0.0, 30),
        ("10:00:03", "buy", 10.00, 50, 0.0, 80),
        ("10:00:04", "buy", 10.00, 20, 0.0, 100),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_volume_zero_print_changes_nothing(strategy):
    """SPEC §3.4-3: a volume-0 print through our quote neither fills nor moves the queue."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),
        ("10:00:00", "ASK", 10.05, 100),
        ("10:00:01", "TRADE", 9.00, 0),  # nothing
        ("10:00:02", "TRADE", 11.00, 0),  # nothing
        ("10:00:03", "TRADE", 10.00, 150),  # ahead still 100 -> 0, buy 50
    ]
    assert run(strategy, rows) == [("10:00:03", "buy", 10.00, 50, 0.0, 50)]


# --- SPEC §3.5: average-cost accounting -----------------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_extending_a_long_averages_the_entry(strategy):
    """SPEC §3.5-1/3: extending at two prices gives the weighted-average entry; opening and
    extending fills realize 0.0; a reduction realizes (p - entry) * q against that average."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),  # our bid 10.00 ahead 100 / 100
        ("10:00:00", "ASK", 10.50, 100),  # our ask 10.50 ahead 100
        ("10:00:01", "TRADE", 10.00, 150),  # buy 50 at 10.00; 50 left on the bid
        ("10:00:02", "TRADE", 9.80, 100),  # buy 50 at 9.80: entry (10.00*50 + 9.80*50) / 100
        ("10:00:03", "TRADE", 10.60, 130),  # ask: ahead 100 -> 0, sell 30 at 10.60
    ]
    entry = (10.00 * 50 + 9.80 * 50) / 100
    assert run(strategy, rows) == [
        ("10:00:01", "buy", 10.00, 50, 0.0, 50),
        ("10:00:02", "buy", 9.80, 50, 0.0, 100),
        ("10:00:03", "sell", 10.60, 30, (10.60 - entry) * 30, 70),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_flip_closes_first_then_opens_the_remainder_at_the_print(strategy):
    """SPEC §3.5-2/3: a sell larger than the long closes it (realized (p - entry) * closed) and
    opens the rest short at p; fill_qty is the original quantity."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),  # quote_size 250: our bid 10.00 ahead 100 / 250
        ("10:00:00", "ASK", 10.05, 100),  # our ask 10.05 ahead 100 / 250
        ("10:00:01", "TRADE", 10.00, 200),  # buy 100 at 10.00; 150 left on the bid
        # ask: ahead 100 -> 0, sell 250 at 10.10: close 100 long, open 150 short at 10.10.
        ("10:00:02", "TRADE", 10.10, 350),
        # bid (150 left, ahead 0): buy 40 at 10.00 against the short's entry 10.10.
        ("10:00:03", "TRADE", 10.00, 40),
    ]
    assert run(strategy, rows, quote_size=250) == [
        ("10:00:01", "buy", 10.00, 100, 0.0, 100),
        ("10:00:02", "sell", 10.10, 250, (10.10 - 10.00) * 100, -150),
        ("10:00:03", "buy", 10.00, 40, (10.10 - 10.00) * 40, -110),
    ]


# --- SPEC §4.2: v1_baseline ---------------------------------------------------------------


def test_v1_quote_sticks_while_refill_not_due():
    """SPEC §4.2: while the refill is not due the quote keeps its old price, queue and size even
    when the book moves."""
    rows = [
        *OPEN,  # our bid 10.00 ahead 500, timer 10:00:00
        ("10:00:30", "BID", 10.02, 50),  # 30 s < 60: bid sticks at 10.00
        ("10:00:40", "TRADE", 10.01, 1000),  # above our stuck 10.00 bid: nothing
        ("10:00:50", "TRADE", 10.00, 550),  # old queue: ahead 500 -> 0, buy 50
    ]
    assert run(V1, rows) == [("10:00:50", "buy", 10.00, 50, 0.0, 50)]


def test_v1_refill_due_exactly_at_the_interval():
    """SPEC §4.2: the refill is due iff now - refill_time >= refill_interval_sec: at 59 s the
    quote sticks, at 60 s it re-quotes at the touch, and the same print can fill it (§3.2)."""
    rows = [
        *OPEN,  # our bid 10.00 ahead 500, timer 10:00:00
        ("10:00:59", "BID", 10.02, 200),  # 59 s: not due, sticks at 10.00
        ("10:00:59", "TRADE", 10.02, 250),  # above 10.00: nothing
        # 60 s: due, re-quote at 10.02 ahead 200 / 100; then ahead 200 -> 0, buy 50.
        ("10:01:00", "TRADE", 10.02, 250),
    ]
    assert run(V1, rows) == [("10:01:00", "buy", 10.02, 50, 0.0, 50)]


def test_v1_not_ok_withdraws_without_resetting_the_timer():
    """SPEC §4.2-3: price * displayed < min_local_currency withdraws the quote (no fill at the old
    price) and does not reset the timer, so the side re-quotes on the very next ok row."""
    rows = [
        ("10:00:00", "BID", 10.00, 300),  # 3000 >= 2000: our bid 10.00 ahead 300, timer 10:00:00
        ("10:00:00", "ASK", 10.05, 300),
        ("10:01:00", "BID", 10.01, 100),  # due; 1001 < 2000: withdrawn, timer stays 10:00:00
        ("10:01:00", "TRADE", 10.00, 1000),  # bid not live (still not ok): nothing
        # 65 s after 10:00:00: due; 2502.5 >= 2000: re-quote 10.01 ahead 250 / 100.
        # (Had the withdrawal reset the timer at 10:01:00, 5 s would not be due.)
        ("10:01:05", "BID", 10.01, 250),
        ("10:01:06", "TRADE", 10.01, 300),  # ahead 250 -> 0, buy 50
    ]
    assert run(V1, rows, min_local_currency_before_quote=2000) == [
        ("10:01:06", "buy", 10.01, 50, 0.0, 50),
    ]


def test_v1_fill_resets_the_refill_timer():
    """SPEC §3.5-5 / §4.2: a fill restarts the side's timer: a partially filled quote stays for a
    full interval from the fill, and a filled side is silent until the interval has elapsed."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),  # our bid 10.00 ahead 100 / 100, timer 10:00:00
        ("10:00:00", "ASK", 10.05, 100),
        ("10:00:50", "TRADE", 10.00, 130),  # ahead 100 -> 0, buy 30; timer 10:00:50
        ("10:01:10", "BID", 10.02, 100),  # 20 s since the fill: sticks at 10.00 (70 left)
        ("10:01:20", "TRADE", 10.00, 10),  # buy 10 (ahead 0); timer 10:01:20
        ("10:01:21", "TRADE", 10.00, 100),  # buy the last 60; timer 10:01:21, side not live
        ("10:02:20", "TRADE", 10.02, 500),  # 59 s: not due, nothing live
        # 60 s: due; re-quote 10.02 ahead 100, size min(100, 1000 - 100); ahead -> 0, buy 100.
        ("10:02:21", "TRADE", 10.02, 500),
    ]
    assert run(V1, rows) == [
        ("10:00:50", "buy", 10.00, 30, 0.0, 30),
        ("10:01:20", "buy", 10.00, 10, 0.0, 40),
        ("10:01:21", "buy", 10.00, 60, 0.0, 100),
        ("10:02:21", "buy", 10.02, 100, 0.0, 200),
    ]


def test_v1_max_notional_caps_the_size():
    """SPEC §3.3: max_pos = min(max_position, int(max_notional / mid)); mid is the one existing
    side when only one exists. max_notional 1,000,000: ask alone at 10.01 -> 99,900 shares;
    both sides (mid 10.00) -> 100,000 shares."""
    rows = [
        ("10:00:00", "ASK", 10.01, 500_000),  # ask 10.01 ahead 500,000 / min(150,000, 99,900)
        ("10:00:00", "BID", 9.99, 500_000),  # mid 10.00: bid 9.99 ahead 500,000 / 100,000
        ("10:00:01", "TRADE", 9.99, 1_000_000),  # ahead -> 0, buy 100,000
        ("10:00:02", "TRADE", 10.01, 1_000_000),  # ahead -> 0, sell 99,900
    ]
    got = run(V1, rows, quote_size=150_000, max_position=2_000_000, max_notional=1_000_000)
    assert got == [
        ("10:00:01", "buy", 9.99, 100_000, 0.0, 100_000),
        ("10:00:02", "sell", 10.01, 99_900, (10.01 - 9.99) * 99_900, 100),
    ]


def test_v1_max_position_caps_the_size_by_position():
    """SPEC §3.3: bid size = min(quote_size, int(max_pos - position)), ask size =
    min(quote_size, int(max_pos + position)); a size of 0 is not ok and withdraws (§4.2-3)."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),  # bid 10.00 ahead 100 / min(100, 150)
        ("10:00:00", "ASK", 10.05, 100),  # ask 10.05 ahead 100 / 100
        ("10:00:01", "TRADE", 10.00, 300),  # buy 100; bid timer 10:00:01
        ("10:01:01", "TRADE", 10.00, 300),  # due: bid size 150 - 100 = 50, ahead 100; buy 50
        ("10:02:01", "TRADE", 10.00, 300),  # due: bid size 0 -> withdrawn; no fill
        # (ask re-quoted at 10:01:01 and 10:02:01 with min(100, 150 + position) = 100, ahead 100)
        ("10:02:02", "TRADE", 10.10, 300),  # ask: ahead 100 -> 0, sell 100 at 10.10
    ]
    assert run(V1, rows, max_position=150) == [
        ("10:00:01", "buy", 10.00, 100, 0.0, 100),
        ("10:01:01", "buy", 10.00, 50, 0.0, 150),
        ("10:02:02", "sell", 10.10, 100, (10.10 - 10.00) * 100, 50),
    ]


# --- SPEC §4.3: v2_price_follow_qty_cooldown ------------------------------------------------


@pytest.mark.parametrize("strategy", [V2, V21])
def test_v2_follows_the_touch_every_row(strategy):
    """SPEC §4.3: no placement timer; a new touch price moves the quote on the same row."""
    rows = [
        *OPEN,  # our bid 10.00 ahead 500
        ("10:00:01", "BID", 10.01, 200),  # new price: bid 10.01 ahead 200 / 100
        ("10:00:02", "TRADE", 10.01, 250),  # ahead 200 -> 0, buy 50 (a stuck 10.00 bid would not)
    ]
    assert run(strategy, rows, refill_interval_sec=30) == [("10:00:02", "buy", 10.01, 50, 0.0, 50)]


@pytest.mark.parametrize("strategy", [V2, V21])
def test_v2_same_price_keeps_the_queue_new_price_resets_it(strategy):
    """SPEC §4.3-3: at the same price only our size is updated and `ahead_qty` (with earlier
    prints' decrements) is kept; a new price re-joins at the back of the displayed size."""
    rows = [
        ("10:00:00", "BID", 10.00, 300),  # our bid 10.00 ahead 300 / 100
        ("10:00:00", "ASK", 10.05, 300),
        ("10:00:01", "TRADE", 10.00, 200),  # ahead 300 -> 100
        ("10:00:02", "BID", 10.00, 500),  # same price: ahead stays 100 (not 500)
        ("10:00:03", "TRADE", 10.00, 150),  # ahead 100 -> 0, buy 50; 50 left, cooldown
        ("10:00:04", "BID", 9.99, 400),  # new price: 9.99 ahead 400 / 50 (cooldown size)
        ("10:00:05", "TRADE", 9.99, 420),  # ahead 400 -> 0, buy 20
    ]
    assert run(strategy, rows, refill_interval_sec=30) == [
        ("10:00:03", "buy", 10.00, 50, 0.0, 50),
        ("10:00:05", "buy", 9.99, 20, 0.0, 70),
    ]


@pytest.mark.parametrize("strategy", [V2, V21])
@pytest.mark.parametrize(
    ("stamp", "qty"),
    [
        ("10:00:39", 70),  # 29 s < 30: in cooldown, only the unfilled 70 rests
        ("10:00:40", 100),  # 30 s: cooldown over, refilled in place to 100 (ahead still 0)
    ],
)
def test_v2_cooldown_keeps_only_unfilled_size_then_refills_in_place(strategy, stamp, qty):
    """SPEC §4.3-1/2/3: in cooldown (`now - last_fill < refill_interval_sec`, strict) the side
    keeps only its unfilled size; afterwards it refills to quote_size at the same queue place."""
    rows = [
        ("10:00:00", "BID", 10.00, 300),  # our bid 10.00 ahead 300 / 100
        ("10:00:00", "ASK", 10.05, 300),
        ("10:00:10", "TRADE", 10.00, 330),  # ahead 300 -> 0, buy 30; 70 left, last fill 10:00:10
        ("10:00:39", "BID", 10.00, 300),  # in cooldown: same price, size 70, ahead kept at 0
        (stamp, "TRADE", 10.00, 100),  # ahead 0: buy our whole resting size
    ]
    assert run(strategy, rows, refill_interval_sec=30) == [
        ("10:00:10", "buy", 10.00, 30, 0.0, 30),
        (stamp, "buy", 10.00, qty, 0.0, 30 + qty),
    ]


@pytest.mark.parametrize("strategy", [V2, V21])
def test_v2_ignores_max_notional(strategy):
    """SPEC §0 / §3.3 / quirk 3: v2 and v2.1 size by quote_size and max_position only."""
    rows = [
        ("10:00:00", "ASK", 10.01, 500_000),  # ask 10.01 ahead 500,000 / 150,000 (no cap)
        ("10:00:00", "BID", 9.99, 500_000),  # bid 9.99 ahead 500,000 / 150,000
        ("10:00:01", "TRADE", 9.99, 1_000_000),  # buy 150,000
        ("10:00:02", "TRADE", 10.01, 1_000_000),  # sell 150,000 (room 2,000,000 + 150,000)
    ]
    got = run(strategy, rows, quote_size=150_000, max_position=2_000_000, max_notional=1_000_000)
    assert got == [
        ("10:00:01", "buy", 9.99, 150_000, 0.0, 150_000),
        ("10:00:02", "sell", 10.01, 150_000, (10.01 - 9.99) * 150_000, 0),
    ]


def test_v2_max_position_caps_the_size_by_position():
    """SPEC §4.3-2: bid size = min(base, max_position - position), ask = min(base,
    max_position + position)."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),  # bid 10.00 ahead 100 / min(100, 150)
        ("10:00:00", "ASK", 10.05, 100),
        ("10:00:01", "TRADE", 10.00, 300),  # buy 100
        # 30 s later: bid size min(100, 150 - 100) = 50, same price, ahead 0: buy 50.
        ("10:00:31", "TRADE", 10.00, 300),
        ("10:01:02", "TRADE", 10.00, 300),  # bid size min(100, 0) = 0: withdrawn, nothing
    ]
    assert run(V2, rows, max_position=150, refill_interval_sec=30) == [
        ("10:00:01", "buy", 10.00, 100, 0.0, 100),
        ("10:00:31", "buy", 10.00, 50, 0.0, 150),
    ]


# --- SPEC §4.4: v2_1_stop_loss --------------------------------------------------------------

# Long 100 at 10.00 (cost 1000), then the book moves to bid 9.50 / ask 10.00: mid 9.75,
# unrealized (9.75 - 10.00) * 100 = -25, pct = -25 / 1000 * 100.0 = -2.5 exactly.
STOP_SETUP = [
    ("10:00:00", "BID", 10.00, 1000),  # our bid 10.00 ahead 1000
    ("10:00:00", "ASK", 10.05, 1000),
    ("10:00:01", "TRADE", 10.00, 1100),  # buy 100 at 10.00
    ("10:00:02", "ASK", 10.00, 1000),  # mid 10.00: no trigger; our ask moves to 10.00
]


@pytest.mark.parametrize(("threshold", "triggers"), [(2.5, False), (2.4, True)])
def test_v21_mid_price_trigger_is_strict(threshold, triggers):
    """SPEC §4.4-2: trigger iff pct < -stop_loss_threshold_pct (strict): -2.5 does not trigger a
    2.5 % stop but triggers 2.4 %; the liquidation then sells at the bid on the same row (§4.4-3)."""
    rows = [*STOP_SETUP, ("10:00:03", "BID", 9.50, 400)]
    expected = [("10:00:01", "buy", 10.00, 100, 0.0, 100)]
    if triggers:  # sell min(100, 400) at the bid 9.50
        expected.append(("10:00:03", "sell", 9.50, 100, (9.50 - 10.00) * 100, 0))
    assert run(V21, rows, stop_loss_threshold_pct=threshold, refill_interval_sec=30) == expected


def test_v21_liquidation_limited_by_displayed_size_over_several_rows():
    """SPEC §4.4-3/4: the liquidation takes at most the displayed bid size per row, the book is not
    depleted (the next row takes the same size again), quoting and fills are skipped while it is
    pending (a print through our live ask does not fill), and the row that completes it resumes
    quoting."""
    rows = [
        ("10:00:00", "BID", 10.00, 1000),  # quote_size 300: our bid 10.00 ahead 1000 / 300
        ("10:00:00", "ASK", 10.05, 1000),
        ("10:00:01", "TRADE", 10.00, 1300),  # buy 300 at 10.00 (cost 3000)
        ("10:00:02", "ASK", 10.00, 1000),  # mid 10.00; our ask 10.00 ahead 1000 / 300
        # mid 9.75: pct = (9.75 - 10) * 300 / 3000 * 100 = -2.5 < -2: pending sell 300;
        # sell min(300, 120) at the bid; 180 left, rest of the row skipped.
        ("10:00:03", "BID", 9.50, 120),
        ("10:00:04", "TRADE", 10.00, 5000),  # book not depleted: sell 120 more; ask not filled
        ("10:00:05", "BID", 9.40, 50),  # sell 50 at 9.40; 10 left
        # Sell the last 10 at 9.40: pending cleared, so quoting and the fill check run on this
        # same row: our ask (cooldown, 300 unfilled, same price) kept its place behind 1000
        # (the skipped 10:00:04 print did not eat it): ahead 1000 -> 0, sell 100 at 10.00.
        ("10:00:06", "TRADE", 10.00, 1100),
    ]
    assert run(V21, rows, quote_size=300, stop_loss_threshold_pct=2.0, refill_interval_sec=30) == [
        ("10:00:01", "buy", 10.00, 300, 0.0, 300),
        ("10:00:03", "sell", 9.50, 120, (9.50 - 10.00) * 120, 180),
        ("10:00:04", "sell", 9.50, 120, (9.50 - 10.00) * 120, 60),
        ("10:00:05", "sell", 9.40, 50, (9.40 - 10.00) * 50, 10),
        ("10:00:06", "sell", 9.40, 10, (9.40 - 10.00) * 10, 0),
        ("10:00:06", "sell", 10.00, 100, 0.0, -100),
    ]


def test_v21_trigger_uses_the_cost_basis_average():
    """SPEC §4.4-1/2: the stop compares the mid with |cost| / cost_qty, the average of the whole
    position (cost grows by p * added shares), not with the first or the last fill price."""
    rows = [
        ("10:00:00", "BID", 10.00, 100),  # our bid 10.00 ahead 100 / 100
        ("10:00:00", "ASK", 11.00, 100),
        ("10:00:01", "TRADE", 10.00, 150),  # buy 50 at 10.00: cost 500, qty 50
        ("10:00:02", "BID", 9.00, 100),  # mid 10.00: no trigger; bid 9.00 ahead 100 / 50
        ("10:00:03", "TRADE", 9.00, 150),  # buy 50 at 9.00: cost 950, qty 100, average 9.50
        # mid 9.375: (9.375 - 9.50) * 100 / 950 * 100 = -1.32 %: no trigger
        # (against the first price 10.00 it would be -6.25 %).
        ("10:00:04", "ASK", 9.75, 100),
        # mid 9.275: (9.275 - 9.50) * 100 / 950 * 100 = -2.37 %: trigger, sell 100 at 8.80.
        ("10:00:05", "BID", 8.80, 100),
    ]
    entry = (10.00 * 50 + 9.00 * 50) / 100
    assert run(V21, rows, stop_loss_threshold_pct=2.0, refill_interval_sec=30) == [
        ("10:00:01", "buy", 10.00, 50, 0.0, 50),
        ("10:00:03", "buy", 9.00, 50, 0.0, 100),
        ("10:00:05", "sell", 8.80, 100, (8.80 - entry) * 100, 0),
    ]


def test_v21_pending_liquidation_survives_eod_and_opens_a_position():
    """SPEC §4.4-5 (quirk 7): a liquidation still pending at the EOD flatten is not cleared; the
    next day it executes from flat and opens a position in the liquidation direction."""
    rows = [
        ("10:00:00", "BID", 10.00, 1000),  # quote_size 300
        ("10:00:00", "ASK", 10.05, 1000),
        ("10:00:01", "TRADE", 10.00, 1300),  # buy 300 at 10.00
        ("10:00:02", "ASK", 10.00, 1000),  # mid 10.00
        ("10:00:03", "BID", 9.50, 100),  # -2.5 %: pending sell 300; sell 100 at 9.50; 200 left
        ("14:55:00", "TRADE", 9.60, 500),  # EOD flatten: sell 200 at 9.60; pending stays (200)
        (f"{DAY2} 09:59:00", "BID", 9.70, 500),  # new date, out of window
        ("10:00:00", "ASK", 9.80, 500),  # pending, but the bid side is empty: nothing, and
        ("10:00:00", "TRADE", 9.80, 1000),  # quoting and fills stay skipped (no ask at 9.80)
        ("10:00:01", "BID", 9.70, 150),  # sell 150 at 9.70 from flat: opens short, 50 left
        ("10:00:02", "BID", 9.70, 150),  # sell the last 50: short 200, pending cleared
    ]
    assert run(V21, rows, quote_size=300, stop_loss_threshold_pct=2.0, refill_interval_sec=30) == [
        ("2025-04-14 10:00:01", "buy", 10.00, 300, 0.0, 300),
        ("2025-04-14 10:00:03", "sell", 9.50, 100, (9.50 - 10.00) * 100, 200),
        ("2025-04-14 14:55:00", "sell", 9.60, 200, (9.60 - 10.00) * 200, 0),
        (f"{DAY2} 10:00:01", "sell", 9.70, 150, 0.0, -150),
        (f"{DAY2} 10:00:02", "sell", 9.70, 50, 0.0, -200),
    ]


@pytest.mark.parametrize("strategy", ALL)
def test_stale_quote_after_flatten_can_exceed_max_position(strategy):
    """SPEC §3.3 + §3.6 + quirk 5 (§3.2): sizes are capped against the position *at quote time*.
    A bid placed while short may exceed max_position when quote_size > max_position; the EOD
    flatten leaves it live and it fills from flat the next day, beyond max_position."""
    rows = [
        ("10:00:00", "ASK", 10.05, 500),  # ask size min(150, 100 + 0) = 100, ahead 500
        ("10:00:01", "TRADE", 10.05, 600),  # sell 100: short 100
        ("10:00:02", "BID", 10.00, 500),  # bid size min(150, 100 - (-100)) = 150, ahead 500
        ("14:55:00", "TRADE", 10.02, 10),  # flatten: buy 100 at 10.02; our bid (150) survives
        # Day 2, book empty: the stale bid fills 150 from flat (ahead 500 -> 0 first).
        (f"{DAY2} 10:00:00", "TRADE", 9.99, 700),
    ]
    assert run(strategy, rows, quote_size=150, max_position=100) == [
        ("2025-04-14 10:00:01", "sell", 10.05, 100, 0.0, -100),
        ("2025-04-14 14:55:00", "buy", 10.02, 100, (10.05 - 10.02) * 100, 0),
        (f"{DAY2} 10:00:00", "buy", 9.99, 150, 0.0, 150),
    ]
