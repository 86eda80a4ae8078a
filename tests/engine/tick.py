"""Readable tick tables for the hand-made engine tests.

`events(...)` builds `Events` from rows such as `("2025-04-14 10:00:01", "BID", 10.00, 5000)`;
a row may give only the time (`"10:00:02"`), which then takes the date of the row before it
(2025-04-14 for the first row). `fills(sim, evs)` turns the kernel's fill records into tuples
`(time, "buy"/"sell", price, qty, realized_pnl, position)` for whole-list comparisons; `time` is
`"HH:MM:SS"` when every event is on one date, else `"YYYY-MM-DD HH:MM:SS"`.

pytest (rootdir-relative, default `prepend` import mode, no `__init__.py`) puts this folder on
`sys.path`, so tests import it as `import tick`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import KIND_NAMES, NS_PER_DAY, SELL, Events

DEFAULT_DATE = "2025-04-14"

# Small, round parameters for hand calculations; each test overrides what it pins.
BASE_PARAMS = {
    "quote_size": 100,
    "max_position": 1000,
    "min_local_currency_before_quote": 0,
    "refill_interval_sec": 60,
}


def events(*rows: tuple) -> Events:
    """Events from `(timestamp, kind, price, volume)` tuples, in the given (file) order."""
    stamps, kinds, prices, volumes = [], [], [], []
    date = DEFAULT_DATE
    for stamp, kind, price, volume in rows:
        if " " in stamp:
            date = stamp.split(" ")[0]
        else:
            stamp = f"{date} {stamp}"
        stamps.append(pd.Timestamp(stamp).value)
        kinds.append(KIND_NAMES.index(kind))
        prices.append(price)
        volumes.append(volume)
    return Events(
        timestamp_ns=np.array(stamps, dtype=np.int64),
        kind=np.array(kinds, dtype=np.int8),
        price=np.array(prices, dtype=np.float64),
        volume=np.array(volumes, dtype=np.float64),
    )


def fills(sim, evs: Events) -> list[tuple]:
    """The fills of a simulation as `(time, side, price, qty, realized, position)` tuples."""
    one_day = np.unique(evs.timestamp_ns // NS_PER_DAY).size <= 1
    pattern = "%H:%M:%S" if one_day else "%Y-%m-%d %H:%M:%S"
    out = []
    for f in sim.fills:
        stamp = pd.Timestamp(int(evs.timestamp_ns[f.row])).strftime(pattern)
        side = "sell" if f.side == SELL else "buy"
        out.append(
            (
                stamp,
                side,
                float(f.fill_price),
                int(f.fill_qty),
                float(f.realized_pnl),
                int(f.position),
            )
        )
    return out


def params(strategy: str, **overrides):
    """`BASE_PARAMS` plus overrides; v2.1 gets a stop that never fires unless a test sets one."""
    values = dict(BASE_PARAMS)
    if strategy == "v2_1_stop_loss":
        values["stop_loss_threshold_pct"] = 99.0
    values.update(overrides)
    return strategies.get(strategy).Params(**values)


def run(strategy: str, rows: list[tuple] | tuple, **overrides) -> list[tuple]:
    """Simulate `strategy` on the rows with `params(strategy, **overrides)`; the fill tuples."""
    evs = events(*rows)
    return fills(simulate(strategy, evs, params(strategy, **overrides)), evs)
