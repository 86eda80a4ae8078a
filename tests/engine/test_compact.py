"""The compiled summary of a sweep cell (engine.results.compact_nb) gives every figure of the
general path to the bit: summary, exact stats, daily P&L with A9/A11, analytics and markouts;
on real securities, on random books (hypothesis), and it steps aside where it does not apply."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tick
from hypothesis import given
from hypothesis import strategies as st
from test_analytics import DAY_END, V2
from test_analytics_properties import FEES, params
from test_properties import SETTINGS, STRATEGIES, books

from engine.data.source import open_data
from engine.params import resolve_params
from engine.results import metrics
from engine.results.summary import _compact_figures, event_facts, summarise
from engine.runner import backtest_security
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.sweep import expand_grid, run_cells
from engine.types import DailyArrays


def bits(value) -> object:
    """A value compared to the bit: floats by their sign and repr (NaN equal to NaN)."""
    if isinstance(value, float):
        return ("nan",) if math.isnan(value) else (math.copysign(1.0, value), repr(value))
    return value


def assert_identical(compact, general) -> None:
    """Two SecurityResults equal to the bit, in their summary's key order too."""
    assert list(compact.summary) == list(general.summary)
    assert {k: bits(v) for k, v in compact.summary.items()} == {
        k: bits(v) for k, v in general.summary.items()
    }
    assert {k: bits(v) for k, v in compact.analytics.items()} == {
        k: bits(v) for k, v in general.analytics.items()
    }
    assert compact.stats == general.stats
    if not isinstance(compact.daily, DailyArrays):  # the compiled path stepped aside
        pd.testing.assert_frame_equal(compact.daily, general.daily, check_exact=True)
        pd.testing.assert_frame_equal(compact.markouts, general.markouts, check_exact=True)
        return
    daily = metrics.daily_frame_of(compact.daily)
    pd.testing.assert_frame_equal(daily, general.daily, check_exact=True)
    numbers = daily.select_dtypes("number").to_numpy(np.float64)
    expected = general.daily.select_dtypes("number").to_numpy(np.float64)
    assert np.array_equal(np.signbit(numbers), np.signbit(expected))
    all_row = general.markouts.iloc[0].to_dict()
    assert list(compact.markouts) == list(all_row)  # the 'all' row, in the frame's order
    assert {k: bits(v) for k, v in compact.markouts.items()} == {
        k: bits(v if isinstance(v, str) else type(compact.markouts[k])(v))
        for k, v in all_row.items()
    }
    assert compact.trades is None and compact.fill_analytics is None


def both(security, strategy, events, p, counts=None):
    """(compact, general) results of one simulated cell, and whether the compact path ran."""
    facts = event_facts(events, with_market=True)
    sim = simulate(strategy, events, p)
    ran = _compact_figures(security, events, p, sim, facts.market) is not None
    kwargs = dict(keep_trades=False, keep_fills=False, facts=facts)
    compact = summarise(security, strategy, events, p, sim, counts, **kwargs)
    general = summarise(security, strategy, events, p, sim, counts, compact=False, **kwargs)
    return compact, general, ran


@pytest.mark.parametrize("security", ["ADIB", "SPINNEYS", "TALABAT"])
def test_the_compiled_summary_equals_the_general_one_on_real_securities(shared_data, security):
    source = open_data(shared_data / "parquet", securities=[security])
    events, counts = source.load(security)
    cases = [
        ("v1_baseline", {}),
        ("v2_price_follow_qty_cooldown", {"refill_interval_sec": 5, "maker_fee_bps": -0.5}),
        ("v2_1_stop_loss", {"stop_loss_threshold_pct": 0.5, "fee_per_fill": 1.25}),
        ("v2_1_stop_loss", {"quote_size": 200_000, "maker_fee_bps": 2.5, "fee_per_fill": 3.0}),
    ]
    for strategy, overrides in cases:
        p = resolve_params(strategies.get(strategy).Params, security, {}, overrides)
        compact, general, ran = both(security, strategy, events, p, counts)
        assert ran and isinstance(compact.daily, DailyArrays), (strategy, overrides)
        assert compact.summary["trades"] > 100  # a real cell, with many dates of fills
        assert len(compact.daily) > 5
        assert_identical(compact, general)


@SETTINGS
@given(events=books(), strategy=st.sampled_from(STRATEGIES), fees=FEES)
def test_the_compiled_summary_equals_the_general_one_on_random_books(events, strategy, fees):
    compact, general, _ = both("X", strategy, events, params(strategy, **fees))
    assert_identical(compact, general)


def test_the_compiled_summary_steps_aside_where_it_does_not_apply():
    p = tick.params(V2, max_position=100)
    day = DAY_END[:8]  # one date of v2: a buy, then the flatten sell
    next_day = [(f"2025-04-15 {day[0][0].split(' ')[1]}", *day[0][1:]), *day[1:]]
    cases = {
        "no fill": tick.events(*day[:2]),
        "a date coming back": tick.events(*day, *next_day, *day),  # its last row is after
        "ascending dates": tick.events(*day, *next_day),
    }
    ran = {}
    for name, events in cases.items():
        compact, general, ran[name] = both("X", V2, events, p)
        assert_identical(compact, general)
        assert (compact.summary["trades"] > 0) == (name != "no fill")
    assert ran == {"no fill": False, "a date coming back": False, "ascending dates": True}


def test_sweep_cells_without_trades_equal_one_backtest_per_cell(shared_data):
    source = open_data(shared_data / "parquet", securities=["MODON"])
    cells = expand_grid(["v2_1_stop_loss"], {"stop_loss_threshold_pct": (0.5, 2)}).cells
    results = run_cells(source, "MODON", cells, keep_trades=False)
    for cell, result in zip(cells, results, strict=True):
        expected = backtest_security(source, "MODON", cell.strategy, None, cell.params)
        assert result.summary == expected.summary
        assert result.analytics == expected.analytics
        assert result.stats == expected.stats
        daily = metrics.daily_frame_of(result.daily)
        pd.testing.assert_frame_equal(daily, expected.daily, check_exact=True)
        assert result.markouts == expected.markouts.iloc[0].to_dict()
    assert results[0].summary["total_pnl"] != results[1].summary["total_pnl"]
