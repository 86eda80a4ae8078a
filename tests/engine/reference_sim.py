"""A slow, independent plain-Python run of SPEC §3-§4 (v1, v2, v2.1) that also records, after
every row, what ANALYTICS.md A7/A8 need: our two quotes' liveness, the position, whether the row
was in the strategy's window, and whether an EOD flatten was pending or done on its date.

Written from the spec, not from engine/sim: dicts and floats, one loop, no numba. The analytics
tests compare its fills with the kernel's, then feed it to `analytics_reference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DAY = 86_400 * 10**9
SECOND = 10**9
WINDOW = (10 * 3600 * SECOND, (14 * 3600 + 45 * 60) * SECOND)
EOD = (14 * 3600 + 55 * 60) * SECOND
KINDS = ("BID", "ASK", "TRADE")


@dataclass
class Quote:
    """One side's order (SPEC §3.1): price None = never placed."""

    price: float | None = None
    ahead: int = 0
    remaining: int = 0
    live: bool = False
    refill_time: int | None = None
    last_fill_time: int | None = None
    placed: int = 0  # A7: transitions to live with size > 0 (new, or another price or size)


@dataclass
class Fill:
    row: int
    side: str  # 'buy' / 'sell'
    kind: str  # 'quote' / 'eod_flatten' / 'stop_loss'
    price: float
    qty: int
    realized: float
    position: int
    pnl: float
    entry: float


@dataclass
class Run:
    """What the reference saw, per fill and per row."""

    fills: list[Fill] = field(default_factory=list)
    live_bid: list[bool] = field(default_factory=list)
    live_ask: list[bool] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    in_window: list[bool] = field(default_factory=list)
    eod_flatten_today: list[bool] = field(default_factory=list)
    placed: int = 0


class Book:
    """Our trading state for one security (SPEC §3.1)."""

    def __init__(self, strategy: str, params: dict):
        self.strategy, self.p = strategy, params
        self.bid, self.ask = None, None  # (price, qty) or None
        self.position, self.entry, self.realized = 0, 0.0, 0.0
        self.cost, self.cost_qty = 0.0, 0
        self.stop = None  # [side, remaining]
        self.quotes = {"buy": Quote(), "sell": Quote()}
        self.out = Run()

    def record(self, row, now, side, price, qty, kind):
        """SPEC §3.5 average cost, §4.4-1 cost basis, §3.5-5 timers."""
        if qty <= 0:
            return
        old, realized, rest = self.position, 0.0, qty
        sign = 1 if side == "buy" else -1
        if self.position * sign < 0:
            closed = min(rest, abs(self.position))
            realized = (
                (self.entry - price) * closed if side == "buy" else (price - self.entry) * closed
            )
            self.realized += realized
            self.position += sign * closed
            rest -= closed
        if rest > 0:
            if self.position == 0:
                self.entry, self.position = price, sign * rest
            else:
                cost = self.entry * abs(self.position) + price * rest
                self.position += sign * rest
                self.entry = cost / abs(self.position)
        new = self.position
        if old == 0:
            self.cost = price * abs(new)
        elif new == 0:
            self.cost = 0.0
        elif (old > 0) == (new > 0):
            if abs(new) > abs(old):
                self.cost += price * (abs(new) - abs(old))
            elif abs(new) < abs(old):
                self.cost *= abs(new) / abs(old)
        else:
            self.cost = price * abs(new)
        self.cost_qty = abs(new)
        quote = self.quotes[side]
        quote.refill_time = quote.last_fill_time = now
        fill = Fill(row, side, kind, price, qty, realized, self.position, self.realized, self.entry)
        self.out.fills.append(fill)

    def flatten(self, row, now, price):
        if self.position > 0:
            self.record(row, now, "sell", price, self.position, "eod_flatten")
        elif self.position < 0:
            self.record(row, now, "buy", price, -self.position, "eod_flatten")

    def place(self, quote: Quote, price, ahead, size, keep_queue=False):
        """Rest `size` (> 0) at `price`; a change of liveness, price or size is a placement."""
        if not (quote.live and quote.price == price and quote.remaining == size):
            quote.placed += 1
        if not keep_queue:
            quote.ahead = int(ahead)
        quote.price, quote.remaining, quote.live = price, size, True

    def withdraw(self, quote: Quote, price, ahead):
        quote.price, quote.ahead, quote.remaining, quote.live = price, int(ahead), 0, False

    def quote_v1(self, now):
        p = self.p
        max_pos = p["max_position"]
        if p.get("max_notional") is not None:
            if self.bid and self.ask:
                mid = (self.bid[0] + self.ask[0]) / 2
            else:
                mid = (self.bid or self.ask)[0]
            if mid > 0:
                max_pos = min(max_pos, int(p["max_notional"] / mid))
        sizes = {
            "buy": max(0, min(p["quote_size_bid"], int(max_pos - self.position)))
            if self.bid
            else 0,
            "sell": max(0, min(p["quote_size_ask"], int(max_pos + self.position)))
            if self.ask
            else 0,
        }
        for side, level in (("buy", self.bid), ("sell", self.ask)):
            quote = self.quotes[side]
            if level is None:
                continue
            due = quote.refill_time is None or (now - quote.refill_time) / SECOND >= p["refill"]
            if not due:
                continue
            price, ahead = level
            if price * ahead >= p["min_local"] and sizes[side] > 0:
                self.place(quote, price, ahead, int(sizes[side]))
                quote.refill_time = now
            else:
                self.withdraw(quote, price, ahead)

    def quote_v2(self, now):
        p = self.p
        sizes = {}
        for side, level, base, room in (
            ("buy", self.bid, p["quote_size_bid"], p["max_position"] - self.position),
            ("sell", self.ask, p["quote_size_ask"], p["max_position"] + self.position),
        ):
            quote = self.quotes[side]
            cooling = (
                quote.last_fill_time is not None
                and (now - quote.last_fill_time) / SECOND < p["refill"]
            )
            size = quote.remaining if cooling else base
            sizes[side] = max(0, int(min(size, room))) if level is not None else 0
        for side, level in (("buy", self.bid), ("sell", self.ask)):
            if level is None:
                continue
            quote, (price, ahead) = self.quotes[side], level
            if price * ahead >= p["min_local"] and sizes[side] > 0:
                same = quote.price is not None and quote.price == price
                self.place(quote, price, ahead, sizes[side], keep_queue=same)
            else:
                self.withdraw(quote, price, ahead)

    def stop_loss(self, row, now) -> bool:
        """SPEC §4.4-2/3; False when steps 9-10 are skipped for this row."""
        if self.bid and self.ask and self.position != 0 and self.stop is None:
            mid = (self.bid[0] + self.ask[0]) / 2.0
            cost = abs(self.cost)
            pct = 0.0
            if cost >= 1e-6:
                unreal = (mid - cost / self.cost_qty) * self.position if self.cost_qty else 0.0
                pct = unreal / cost * 100.0
            if pct < -self.p["stop"]:
                self.stop = ["sell" if self.position > 0 else "buy", abs(self.position)]
        if self.stop is None:
            return True
        level = self.bid if self.stop[0] == "sell" else self.ask
        if level is None:
            return False
        qty = int(min(float(self.stop[1]), level[1]))
        self.record(row, now, self.stop[0], level[0], qty, "stop_loss")
        self.stop[1] -= qty
        if self.stop[1] == 0:
            self.stop = None
            return True
        return False

    def fill(self, row, now, price, volume):
        """SPEC §3.4: ask side first, both read before either fills."""
        hits = [
            side
            for side, hit in (
                ("sell", self.quotes["sell"].live and price >= self.quotes["sell"].price),
                ("buy", self.quotes["buy"].live and price <= self.quotes["buy"].price),
            )
            if hit
        ]
        for side in hits:
            quote = self.quotes[side]
            left = 0 if math.isnan(volume) else int(volume)
            eaten = min(quote.ahead, left)
            quote.ahead -= eaten
            left -= eaten
            if left > 0 and quote.remaining > 0:
                qty = min(quote.remaining, left)
                quote.remaining -= qty
                if quote.remaining == 0:
                    quote.live = False
                self.record(row, now, side, price, qty, "quote")


def simulate(strategy: str, events, params: dict) -> Run:
    """SPEC §3.2 over every row in file order; the fills and the per-row A7/A8 record."""
    book = Book(strategy, params)
    day_prev, closed, last_flatten, pending, eod_day = None, False, None, False, None
    ts, kinds = events.timestamp_ns.tolist(), [KINDS[k] for k in events.kind.tolist()]
    prices, volumes = events.price.tolist(), events.volume.tolist()
    for row in range(len(ts)):
        now, kind, price, volume = ts[row], kinds[row], prices[row], volumes[row]
        day, tod = now // DAY, now % DAY
        if day_prev is not None and day != day_prev:
            book.bid = book.ask = None
        day_prev = day
        if last_flatten is not None and last_flatten != day:
            closed = pending = False
        in_window = False
        if tod >= EOD and not closed:
            closed, last_flatten = True, day
            if book.position != 0:
                eod_day = day
                if kind == "TRADE":
                    book.flatten(row, now, price)
                else:
                    pending = True
                _after_row(book, in_window, eod_day == day)
                continue
        if pending:
            if kind == "TRADE":
                pending = False
                book.flatten(row, now, price)
        elif WINDOW[0] <= tod < WINDOW[1]:
            in_window = True
            _in_window_row(book, row, now, kind, price, volume)
        _after_row(book, in_window, eod_day == day)
    book.out.placed = sum(q.placed for q in book.quotes.values())
    return book.out


def _in_window_row(book: Book, row, now, kind, price, volume):
    """Steps 7-10 of SPEC §3.2."""
    if kind in ("BID", "ASK"):
        level = (price, volume) if volume > 0 else None
        if kind == "BID":
            book.bid = level
        else:
            book.ask = level
    if book.strategy == "v2_1_stop_loss" and not book.stop_loss(row, now):
        return
    if book.bid or book.ask:
        (book.quote_v1 if book.strategy == "v1_baseline" else book.quote_v2)(now)
    if kind == "TRADE":
        book.fill(row, now, price, volume)


def _after_row(book: Book, in_window: bool, eod_today: bool):
    out = book.out
    out.live_bid.append(book.quotes["buy"].live)
    out.live_ask.append(book.quotes["sell"].live)
    out.position.append(book.position)
    out.in_window.append(in_window)
    out.eod_flatten_today.append(eod_today)


def params_of(params) -> dict:
    """A strategy's Params as the reference's dict."""
    k = params.kernel()
    return {
        "quote_size_bid": k.quote_size_bid,
        "quote_size_ask": k.quote_size_ask,
        "refill": k.refill_interval_sec,
        "max_position": k.max_position,
        "max_notional": None if np.isnan(k.max_notional) else k.max_notional,
        "min_local": k.min_local_currency_before_quote,
        "stop": k.stop_loss_threshold_pct,
    }
