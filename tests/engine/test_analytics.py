"""ANALYTICS.md by hand: tiny tick tables whose every mid, markout, weight and fee was computed on
paper from the rules (A1-A11 cited per test). Prices are binary-exact (halves and quarters), so
most expected values are exact doubles.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tick
from helpers import bare_run

from engine.results.analytics import AnalyticsError, check_decomposition
from engine.results.files import write_outputs
from engine.runner import run_security
from engine.types import ANALYTICS_COLUMNS, FILL_ANALYTICS_COLUMNS, Events

V2 = "v2_price_follow_qty_cooldown"
V21 = "v2_1_stop_loss"
NAN = math.nan

# One day of v2 (quote_size 100, max_position 100) and a few rows of the next day:
DAY_END = [
    ("2025-04-14 10:00:00", "BID", 10.0, 500),  # r0: our bid 10.0 ahead 500; mid undefined
    ("10:00:00", "ASK", 10.5, 500),  # r1: mid 10.25; our ask 10.5
    ("10:00:05", "TRADE", 10.0, 600),  # r2: buy 100 at 10.0 (quote); mid_0 10.25
    ("10:00:04", "BID", 10.25, 300),  # r3: one second back: the clock stays at 10:00:05
    ("10:00:06", "ASK", 10.5, 0),  # r4: the ask side empties: mid undefined
    ("10:00:40", "ASK", 11.0, 200),  # r5: mid 10.625; our ask moves to 11.0
    ("14:44:00", "BID", 10.5, 100),  # r6: mid 10.75
    ("23:58:00", "TRADE", 10.75, 0),  # r7: the first trade after 14:55: flatten, sell 100
    ("2025-04-15 00:01:00", "BID", 20.0, 100),  # r8, r9: inside 300 s of r7, but another date
    ("00:01:00", "ASK", 21.0, 100),
]


def result(strategy: str, rows, **overrides):
    evs = tick.events(*rows)
    return run_security("TEST", strategy, evs, tick.params(strategy, **overrides))


def mids_and_values(frame: pd.DataFrame, columns) -> list[list[float]]:
    return frame[list(columns)].to_numpy(np.float64).tolist()


def assert_rows(got: list[list[float]], expected: list[list[float]]) -> None:
    np.testing.assert_array_equal(np.array(got), np.array(expected))


def test_mids_at_horizons_backward_step_undefined_mid_and_day_end():
    """A1 the clock ignores the step back; A2 an emptied side leaves the mid undefined (no carry,
    A4); A4 j = last c_j <= ts_r + h, never before r, never past the date's last row."""
    r = result(V2, DAY_END, max_position=100)
    fills = r.fill_analytics
    assert fills[["seq", "row", "kind", "side"]].values.tolist() == [
        [1, 2, "quote", "buy"],
        [2, 7, "eod_flatten", "sell"],
    ]
    mids = ("mid_0", "mid_1", "mid_5", "mid_30", "mid_60", "mid_300")
    assert_rows(
        mids_and_values(fills, mids),
        [
            # 10:00:06/10/35 -> r4 (empty ask); 10:01:05 and 10:05:05 -> r5
            [10.25, NAN, NAN, NAN, 10.625, 10.625],
            # every horizon runs past 23:58; the last row of 2025-04-14 is r7 (mid 10.75)
            [10.75, 10.75, 10.75, 10.75, 10.75, 10.75],
        ],
    )
    values = ("edge", "markout_1", "markout_5", "markout_30", "markout_60", "markout_300")
    assert_rows(  # A5: s * (mid - p) * q
        mids_and_values(fills, values),
        [[25.0, NAN, NAN, NAN, 62.5, 62.5], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
    )


def test_markout_summary_sums_defined_values_and_counts_undefined_ones():
    """A6: sums over the fills where the value is defined, bps on their notional, adverse
    selection where both are defined, undefined mids counted, per kind and overall."""
    r = result(V2, DAY_END, max_position=100)
    a = r.analytics
    assert (a["fills"], a["quote_fills"], a["eod_flatten_fills"], a["stop_loss_fills"]) == (
        2,
        1,
        1,
        0,
    )
    assert a["edge_total"] == 25.0
    assert a["edge_bps"] == 1e4 * 25.0 / (1000.0 + 1075.0)
    assert (a["markout_total_1"], a["markout_bps_1"], a["undefined_mid_1"]) == (0.0, 0.0, 1)
    assert a["markout_bps_60"] == 1e4 * 62.5 / 2075.0
    assert a["adverse_selection_1"] == 0.0  # only the flatten has both mids
    assert a["adverse_selection_60"] == (25.0 - 62.5) + 0.0
    assert a["undefined_mid_0"] == 0
    by_kind = r.markouts.set_index("kind")
    assert list(by_kind.index) == ["all", "quote", "eod_flatten", "stop_loss"]
    assert by_kind.loc["quote", "edge_bps"] == 1e4 * 25.0 / 1000.0
    assert math.isnan(by_kind.loc["quote", "markout_bps_30"])  # no defined value: NaN
    assert by_kind.loc["stop_loss", "fills"] == 0 and math.isnan(
        by_kind.loc["stop_loss", "edge_bps"]
    )


def test_quotes_placed_uptime_and_inventory_weights():
    """A7: placements r0 (bid), r1 (ask), r5 (ask re-priced); pairs of in-window rows weigh
    c[i+1] - c[i]: (r1, r2) 5 s two-sided, (r3, r4) 1 s, (r4, r5) 34 s and (r5, r6) 17,000 s
    one-sided; the step back weighs 0 and r7 is outside the window. A8: |position| 100 (the
    limit) on the last three pairs."""
    a = result(V2, DAY_END, max_position=100).analytics
    assert (a["quotes_placed"], a["fill_ratio"]) == (3, 1 / 3)
    window = 5 + 1 + 34 + 17_000
    assert a["window_seconds"] == window
    assert (a["uptime_two_sided"], a["uptime_any"]) == (5 / window, 1.0)
    assert a["max_abs_position"] == 100
    assert a["avg_abs_position"] == 100 * (1 + 34 + 17_000) / window
    assert a["time_at_limit"] == (1 + 34 + 17_000) / window
    # 10:00 flat, then 100 until 14:44; flat all of the next date: phi = 1, no half-life.
    assert math.isnan(a["inventory_half_life_min"])


def test_a_rebate_mark_to_market_and_the_decomposition():
    """A11 fee = p * q * bps / 1e4 + per fill (a negative bps is a rebate); A9 the date's mtm;
    A10 total_mtm = spread_capture + inventory_pnl - fees."""
    r = result(V2, DAY_END, max_position=100, maker_fee_bps=-2.0, fee_per_fill=0.5)
    fees = [1000.0 * -2.0 / 1e4 + 0.5, 1075.0 * -2.0 / 1e4 + 0.5]  # 0.3 and 0.285
    assert r.fill_analytics["fee"].tolist() == fees
    a = r.analytics
    assert a["fees"] == math.fsum(fees)
    assert a["realized_pnl"] == 75.0 and a["net_pnl"] == 75.0 - math.fsum(fees)
    assert a["total_mtm"] == 75.0 - (fees[0] + fees[1])  # flat at the end
    assert a["spread_capture"] == 25.0
    assert a["inventory_pnl"] == a["total_mtm"] - 25.0 + a["fees"]
    assert r.daily[["mtm_pnl", "fees"]].values.tolist() == [[a["total_mtm"], fees[0] + fees[1]]]
    assert r.trades["realized_pnl"].tolist() == [0.0, 75.0]  # fees never change a fill


def test_a_stop_loss_liquidation_is_its_own_kind():
    """A3: the liquidation's row is the in-window BID/ASK row that executed it; its edge is
    against the mid of that row (A4/A5), and the decomposition puts it in inventory P&L (A10)."""
    rows = [
        ("10:00:00", "BID", 10.0, 1000),
        ("10:00:00", "ASK", 10.5, 1000),
        ("10:00:01", "TRADE", 10.0, 1100),  # r2: buy 100 at 10.0; mid 10.25
        ("10:00:02", "BID", 9.5, 400),  # r3: mid 10.0, pct 0: no trigger
        ("10:00:03", "ASK", 9.75, 400),  # r4: mid 9.625, pct -3.75: sell 100 at the bid 9.5
    ]
    r = result(V21, rows, stop_loss_threshold_pct=2.0, refill_interval_sec=30)
    fills = r.fill_analytics
    assert fills[["row", "kind", "side", "fill_price"]].values.tolist() == [
        [2, "quote", "buy", 10.0],
        [4, "stop_loss", "sell", 9.5],
    ]
    values = ("edge", "markout_1", "markout_5", "markout_30", "markout_60", "markout_300")
    assert_rows(
        mids_and_values(fills, values),
        [[25.0, 0.0, -37.5, -37.5, -37.5, -37.5], [-12.5] * 6],  # r4 is the last row
    )
    a = r.analytics
    assert (a["quote_fills"], a["stop_loss_fills"], a["total_mtm"]) == (1, 1, -50.0)
    assert (a["spread_capture"], a["inventory_pnl"]) == (25.0, -75.0)
    assert r.markouts.set_index("kind").loc["stop_loss", "edge_bps"] == 1e4 * -12.5 / 950.0


def test_mtm_marks_an_overnight_position_at_the_last_defined_mid():
    """A9: a position carried over the night is marked at the last defined mid of its date (the
    ask emptied on the last row: the mid carries); the daily table holds only dates with fills,
    so the next date's move lands on the next date with fills (decision, see analytics.py)."""
    rows = [
        ("2025-04-14 10:00:00", "BID", 10.0, 500),
        ("10:00:00", "ASK", 10.5, 500),
        ("10:00:05", "TRADE", 10.0, 600),  # buy 100 at 10.0
        ("14:30:00", "ASK", 11.0, 100),  # mid 10.5
        ("14:40:00", "ASK", 11.0, 0),  # mid undefined: carry 10.5
        ("2025-04-15 10:00:00", "BID", 12.0, 100),  # no trade after 14:55 yesterday: carried
        ("10:00:00", "ASK", 12.5, 100),
    ]
    r = result(V2, rows)
    assert r.summary["final_position"] == 100
    assert r.daily["mtm_pnl"].tolist() == [100 * (10.5 - 10.0)]
    assert r.analytics["total_mtm"] == 100 * (12.25 - 10.0)  # after the last row


def test_no_fills_gives_empty_sums_and_nan_ratios():
    """A6: a ratio whose sums are empty is NaN; nothing quoted: no placements, no uptime."""
    r = result(V2, [("10:00:00", "TRADE", 10.0, 100)])
    a = r.analytics
    assert a["fills"] == 0 and a["edge_total"] == 0.0 and math.isnan(a["edge_bps"])
    assert math.isnan(a["fill_ratio"]) and math.isnan(a["uptime_two_sided"])
    assert a["total_mtm"] == 0.0 and a["fees"] == 0.0 and a["max_abs_position"] == 0
    assert r.fill_analytics.empty and list(r.fill_analytics.columns) == list(FILL_ANALYTICS_COLUMNS)


def test_the_decomposition_check_refuses_a_broken_identity():
    check_decomposition(10.0, 4.0, 7.0, 1.0)
    with pytest.raises(AnalyticsError, match="A10"):
        check_decomposition(10.0, 4.0, 8.0, 1.0)
    with pytest.raises(AnalyticsError):
        check_decomposition(NAN, 4.0, 7.0, 1.0)


def test_fills_and_analytics_csv(tmp_path):
    """`<SECURITY>_fills.csv`: exactly the documented columns, event order, shortest
    round-trip floats, NaN as an empty field; `analytics_summary.csv`: ANALYTICS_COLUMNS."""
    r = result(V2, DAY_END, max_position=100)
    run = bare_run("r", V2).finish([r], [])
    write_outputs(run, tmp_path)
    assert (tmp_path / "TEST_fills.csv").read_text().splitlines() == [
        ",".join(FILL_ANALYTICS_COLUMNS),
        "1,2,quote,2025-04-14 10:00:05,buy,10.0,100,0.0,10.25,,,,10.625,10.625,25.0,,,,62.5,62.5",
        "2,7,eod_flatten,2025-04-14 23:58:00,sell,10.75,100,0.0,"
        + ",".join(["10.75"] * 6 + ["0.0"] * 6),
    ]
    summary = pd.read_csv(tmp_path / "analytics_summary.csv")
    assert list(summary.columns) == list(ANALYTICS_COLUMNS)
    assert summary["security"].tolist() == ["TEST"]


def test_empty_events():
    empty = Events(*(np.array([], dtype=t) for t in ("int64", "int8", "float64", "float64")))
    r = run_security("E", V2, empty, tick.params(V2))
    assert r.analytics["fills"] == 0 and r.analytics["window_seconds"] == 0.0


def test_the_one_pass_kernel_runs_as_plain_python():
    """STYLE "Numba": the one-pass kernel compiled equals its plain-Python self; its A4 mids,
    A8 minute samples and A9 date ends are those of the hand-made table (the general path's
    kernels are checked against the oracle on dates out of order, below)."""
    from engine.results.analytics_pass_nb import fused_pass_nb
    from engine.results.market import HORIZONS_NS, MINUTE_NS
    from engine.sim.session import WINDOW_END_NS, WINDOW_START_NS

    evs = tick.events(*DAY_END)
    arrays = (evs.timestamp_ns, evs.kind, evs.price, evs.volume)
    window = (WINDOW_START_NS, WINDOW_END_NS, MINUTE_NS)
    out = []
    for kernel in (fused_pass_nb, fused_pass_nb.py_func):
        mids = np.full((2, 6), -9.0, order="F")
        minutes = np.full(4 * 285, -9, dtype=np.int64)
        rows, last_mid = np.full(4, -9, dtype=np.int64), np.full(4, -9.0)
        dates = kernel(arrays, np.array([2, 7]), HORIZONS_NS, window, mids, minutes, rows, last_mid)
        out.append((dates, mids, minutes[: 285 * dates], rows[:dates], last_mid[:dates]))
    for compiled, plain in zip(*out, strict=True):
        np.testing.assert_array_equal(compiled, plain)
    dates, mids, minutes, rows, last_mid = out[0]
    assert_rows(mids.tolist(), [[10.25, NAN, NAN, NAN, 10.625, 10.625], [10.75] * 6])
    assert (dates, rows.tolist(), last_mid.tolist()) == (2, [7, 9], [10.75, 20.5])
    # A8 samples: 10:00 -> r1 (both 10:00:00 rows), 10:01 .. 14:43 -> r5, 14:44 -> r6; then the
    # next date: every minute after its last row r9.
    assert minutes.tolist() == [1] + [5] * 283 + [6] + [9] * 285


def test_dates_out_of_order_take_the_general_path():
    """A1/A4/A8 with a date that comes back after another: the market pass cannot sample the
    minutes in one go, the result still equals the oracle (horizons stop at each date's last
    row, which is after the other date's rows)."""
    import analytics_reference
    import reference_sim

    rows = [
        ("2025-04-15 10:00:00", "BID", 10.0, 500),
        ("10:00:00", "ASK", 10.5, 500),
        ("10:00:05", "TRADE", 10.0, 600),  # buy 100
        ("2025-04-14 10:00:10", "BID", 9.0, 500),  # an earlier date in between
        ("10:00:10", "ASK", 9.5, 500),
        ("2025-04-15 10:00:20", "ASK", 11.0, 500),  # back to 2025-04-15
        ("10:00:30", "TRADE", 11.0, 700),  # sell
    ]
    evs = tick.events(*rows)
    p = tick.params(V2)
    r = run_security("X", V2, evs, p)
    oracle = reference_sim.simulate(V2, evs, reference_sim.params_of(p))
    fills, _, figures, _ = analytics_reference.analytics(evs, oracle, p)
    for column in ("mid_0", "mid_1", "mid_30", "mid_300", "edge", "markout_300"):
        expected = np.array([f[column] for f in fills], dtype=np.float64)
        np.testing.assert_array_equal(r.fill_analytics[column].to_numpy(), expected, column)
    for name in ("inventory_half_life_min", "uptime_two_sided", "total_mtm", "avg_abs_position"):
        a, b = r.analytics[name], figures[name]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12), name
