"""Properties of the fill-quality analytics over random books (hypothesis; the books of
test_properties.py: 1-3 dates, zero sizes, steps back, rows around the window edges).

The fast path equals the plain-Python oracle; edge - markout is adverse selection; the A10
decomposition holds and a flat book's mark-to-market is its net P&L; fees at 0 change nothing.
"""

from __future__ import annotations

import math

import analytics_reference
import numpy as np
import pandas as pd
import reference_sim
from hypothesis import given
from hypothesis import strategies as st
from test_properties import SETTINGS, STRATEGIES, books

from engine.results.market import _general_marks, market_marks, market_of
from engine.runner import run_security
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import HORIZONS_SEC

FEES = st.fixed_dictionaries(
    {
        "maker_fee_bps": st.sampled_from([-1.5, 0.0, 0.25, 3.0]),
        "fee_per_fill": st.sampled_from([0.0, 0.5, 2.0]),
    }
)


def params(strategy: str, **extra):
    values = {"quote_size": 300, "max_position": 600, "min_local_currency_before_quote": 0}
    values["refill_interval_sec"] = 30
    if strategy == "v2_1_stop_loss":
        values["stop_loss_threshold_pct"] = 0.5
    return strategies.get(strategy).Params(**values, **extra)


def close(a, b) -> bool:
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def identical(a: dict, b: dict) -> bool:
    """Equal dicts, NaN equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)


@SETTINGS
@given(events=books(), strategy=st.sampled_from(STRATEGIES), fees=FEES)
def test_fast_path_equals_the_oracle_on_random_books(events, strategy, fees):
    p = params(strategy, **fees)
    result = run_security("X", strategy, events, p)
    oracle = reference_sim.simulate(strategy, events, reference_sim.params_of(p))
    assert result.fill_analytics["row"].tolist() == [f.row for f in oracle.fills]
    rows, by_kind, figures, _ = analytics_reference.analytics(events, oracle, p)
    for column in ("fee", "mid_0", "mid_300", "edge", "markout_1", "markout_60"):
        expected = np.array([r[column] for r in rows], dtype=np.float64)
        np.testing.assert_array_equal(result.fill_analytics[column].to_numpy(), expected)
    for name, value in figures.items():
        assert close(result.analytics[name], value), name
    for name in ("edge_total", "markout_bps_5", "adverse_selection_300", "undefined_mid_60"):
        assert close(result.analytics[name], by_kind["all"][name]), name


@SETTINGS
@given(events=books(), strategy=st.sampled_from(STRATEGIES))
def test_edge_minus_markout_is_adverse_selection(events, strategy):
    result = run_security("X", strategy, events, params(strategy))
    fills, a = result.fill_analytics, result.analytics
    for h in HORIZONS_SEC:
        both = fills["mid_0"].notna() & fills[f"mid_{h}"].notna()
        per_fill = fills["edge"] - fills[f"markout_{h}"]
        side = np.where(fills["side"] == "buy", 1.0, -1.0)
        moved = side * (fills["mid_0"] - fills[f"mid_{h}"]) * fills["fill_qty"]
        np.testing.assert_allclose(per_fill[both], moved[both], rtol=1e-12, atol=1e-9)
        edge, markout = fills.loc[both, "edge"].sum(), fills.loc[both, f"markout_{h}"].sum()
        assert close(a[f"adverse_selection_{h}"], edge - markout)


@SETTINGS
@given(events=books(), strategy=st.sampled_from(STRATEGIES), fees=FEES)
def test_the_decomposition_holds_and_a_flat_book_marks_to_its_net_pnl(events, strategy, fees):
    result = run_security("X", strategy, events, params(strategy, **fees))
    a = result.analytics
    assert close(a["total_mtm"], a["spread_capture"] + a["inventory_pnl"] - a["fees"])
    assert close(a["net_pnl"], a["realized_pnl"] - a["fees"])
    if result.summary["final_position"] == 0:  # nothing left to mark: mtm is realized - fees
        assert close(a["total_mtm"], a["net_pnl"])
        if len(result.daily):  # the daily mtm adds up (no position after the last fill date)
            assert close(math.fsum(result.daily["mtm_pnl"]), a["total_mtm"])


@SETTINGS
@given(events=books(), strategy=st.sampled_from(STRATEGIES), fees=FEES)
def test_fees_change_nothing_but_fees_and_net_figures(events, strategy, fees):
    free = run_security("X", strategy, events, params(strategy))
    paid = run_security("X", strategy, events, params(strategy, **fees))
    pd.testing.assert_frame_equal(free.trades, paid.trades)
    assert identical(free.summary, paid.summary)
    assert (free.fill_analytics["fee"] == 0.0).all() and free.analytics["fees"] == 0.0
    assert free.analytics["net_pnl"] == free.analytics["realized_pnl"]
    pd.testing.assert_frame_equal(
        free.fill_analytics.drop(columns="fee"), paid.fill_analytics.drop(columns="fee")
    )
    pd.testing.assert_frame_equal(free.markouts, paid.markouts)
    changed = ("fees", "net_pnl", "total_mtm", "inventory_pnl")
    keep = [name for name in free.analytics if name not in changed]
    assert identical({k: free.analytics[k] for k in keep}, {k: paid.analytics[k] for k in keep})
    pd.testing.assert_frame_equal(
        free.daily.drop(columns=["mtm_pnl", "fees"]), paid.daily.drop(columns=["mtm_pnl", "fees"])
    )


@SETTINGS
@given(events=books(), strategy=st.sampled_from(STRATEGIES))
def test_the_one_pass_and_the_general_path_agree(events, strategy):
    """The fast path (one pass, ascending dates) and the general path (any order of dates) give
    the same A4 mids and per-date figures wherever both apply."""
    sim = simulate(strategy, events, params(strategy))
    rows = np.ascontiguousarray(sim.fills["row"], dtype=np.int64)
    fast_mids, fast = market_marks(events, rows)
    arrays = (events.timestamp_ns, events.kind, events.price, events.volume)
    general_mids, general = _general_marks(arrays, rows, np.empty(fast_mids.shape, order="F"))
    np.testing.assert_array_equal(fast_mids, general_mids)
    market = market_of(events)  # a sweep's: every row's mids, looked up per fill
    np.testing.assert_array_equal(fast_mids, market.row_mids[rows])
    for name in ("days", "last_row", "last_mid", "minute_rows"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)
        np.testing.assert_array_equal(getattr(fast, name), getattr(market.dates, name))
    assert fast.final_mid == general.final_mid or (fast.final_mid != fast.final_mid)
    assert market.dates.final_mid == general.final_mid or general.final_mid != general.final_mid
