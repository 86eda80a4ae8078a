"""Run one strategy over one security's events: arrays in, fill records and trades out.

This is the Python edge of the compiled kernels (SPEC §3-§4): it validates and converts inputs,
drives the kernel (growing its output when it fills up) and turns the fill records into the
trade table of SPEC §5.1. Summaries and metrics are `engine.results`' business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.params import MarketMakingParams
from engine.sim import strategies
from engine.sim.session import MAX_FILLS_PER_ROW
from engine.types import (
    BUY,
    FILL_DTYPE,
    TRADE,
    TRADE_COLUMNS,
    Events,
    new_state,
)

# `take` from the two strings: the same str column as building one string per fill, 5x faster.
_SIDE_NAMES = pd.array(["sell", "buy"], dtype="str")


@dataclass
class Simulation:
    """The raw kernel output: fill records (row index into the events), the final state and the
    final quote records (index BID and ASK; their `placed` counts ANALYTICS.md A7)."""

    fills: np.recarray
    state: np.record
    quotes: np.recarray | None = None


def simulate(
    strategy: str, events: Events, params: MarketMakingParams, *, capacity: int | None = None
) -> Simulation:
    """Run the compiled strategy loop over all rows (SPEC §3.2), in file order."""
    run_nb = strategies.get(strategy).run_nb
    timestamp = np.ascontiguousarray(events.timestamp_ns, dtype=np.int64)
    kind = np.ascontiguousarray(events.kind, dtype=np.int8)
    price = np.ascontiguousarray(events.price, dtype=np.float64)
    # A NaN size is "no size": `volume > 0` is false, so it empties a book side exactly as 0
    # does (SPEC §2-2), and a NaN print fills nothing (engine/sim/fills.py).
    volume = np.ascontiguousarray(events.volume, dtype=np.float64)
    state, quotes = new_state()
    if capacity is None:  # room for most runs; the kernel stops and resumes when it fills up
        capacity = 1024 + int(np.count_nonzero(kind == TRADE)) // 2
    out = np.empty(capacity, dtype=FILL_DTYPE).view(np.recarray)
    row, n = 0, len(kind)
    kernel_params = params.kernel()
    while True:
        row = run_nb(timestamp, kind, price, volume, kernel_params, state, quotes, out, row)
        if row >= n:
            break
        bigger = np.empty(2 * len(out) + MAX_FILLS_PER_ROW, dtype=FILL_DTYPE).view(np.recarray)
        bigger[: len(out)] = out
        out = bigger
    return Simulation(fills=out[: state[0].n_fills], state=state[0], quotes=quotes)


def trades_frame(events: Events, fills: np.recarray) -> pd.DataFrame:
    """Fill records as the trade table of SPEC §5.1, in event order, with a sequence number."""
    return pd.DataFrame(
        {
            "seq": np.arange(1, len(fills) + 1, dtype=np.int64),
            "timestamp": events.timestamp_ns[fills.row].view("datetime64[ns]"),
            "side": _SIDE_NAMES.take((np.asarray(fills.side) == BUY).astype(np.intp)),
            "fill_price": fills.fill_price.astype(np.float64),
            "fill_qty": fills.fill_qty.astype(np.int64),
            "realized_pnl": fills.realized_pnl.astype(np.float64),
            "position": fills.position.astype(np.int64),
            "pnl": fills.pnl.astype(np.float64),
        },
        columns=list(TRADE_COLUMNS),
    )
