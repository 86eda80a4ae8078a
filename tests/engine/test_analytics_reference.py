"""The fast analytics path (engine/results/analytics.py and the kernels' counters) equals a slow,
independent plain-Python implementation (reference_sim.py + analytics_reference.py) on the shared
SPINNEYS and MODON data, for every strategy with its shipped config and fees switched on.

Per-fill values (mids, edge, markouts, fees) are the same doubles; sums agree to rounding (the
oracle uses math.fsum, the fast path numpy); counts are equal.
"""

from __future__ import annotations

import math

import analytics_reference
import numpy as np
import pytest
import reference_sim

from engine.data.source import open_data
from engine.params import load_config, resolve_params
from engine.runner import run_security
from engine.sim import strategies
from engine.types import ANALYTICS_FIELDS, FILL_KIND_NAMES, MARKOUT_KIND_COLUMNS, NS_PER_DAY

CONFIGS = {
    "v1_baseline": "v1_baseline_config.json",
    "v2_price_follow_qty_cooldown": "v2_price_follow_qty_cooldown_config.json",
    "v2_1_stop_loss": "v2_1_stop_loss_config.json",
}
FEES = {"maker_fee_bps": 0.5, "fee_per_fill": 0.25}
CASES = [(strategy, security) for security in ("SPINNEYS", "MODON") for strategy in CONFIGS]
PER_FILL = ("row", "fee", "mid_0", "mid_1", "mid_5", "mid_30", "mid_60", "mid_300", "edge")
PER_FILL += tuple(f"markout_{h}" for h in (1, 5, 30, 60, 300))


def same(a, b) -> bool:
    """Equal counts; floats equal to rounding (sums in another order), NaN equal to NaN."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, int | np.integer) and isinstance(b, int | np.integer):
        return int(a) == int(b)
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@pytest.fixture(scope="module")
def source(shared_data):
    return open_data(shared_data / "parquet", securities=["SPINNEYS", "MODON"])


@pytest.mark.parametrize(("strategy", "security"), CASES)
def test_fast_path_equals_the_independent_reference(shared_data, source, strategy, security):
    config = load_config(shared_data / "configs" / CONFIGS[strategy])
    params = resolve_params(strategies.get(strategy).Params, security, config, FEES)
    events, counts = source.load(security)
    result = run_security(security, strategy, events, params, counts)
    reference = reference_sim.simulate(strategy, events, reference_sim.params_of(params))

    # The oracle's own run of SPEC §3-§4 has the kernel's fills (A3: row and kind too).
    fills = result.fill_analytics
    trades = result.trades
    got = list(zip(fills["row"], fills["side"], fills["kind"], trades["fill_price"],
                   trades["fill_qty"], trades["realized_pnl"], trades["position"], strict=True))  # fmt: skip
    expected = [(f.row, f.side, f.kind, f.price, f.qty, f.realized, f.position)
                for f in reference.fills]  # fmt: skip
    assert got == expected
    assert set(fills["kind"]) <= set(FILL_KIND_NAMES)

    rows, by_kind, figures, daily = analytics_reference.analytics(events, reference, params)
    for column in PER_FILL:  # A4, A5, A11: the very same doubles
        np.testing.assert_array_equal(
            fills[column].to_numpy(), np.array([r[column] for r in rows]), err_msg=column
        )
    for _, row in result.markouts.iterrows():  # A6 by kind, and over all fills
        for column in MARKOUT_KIND_COLUMNS[1:]:
            assert same(row[column], by_kind[row["kind"]][column]), (row["kind"], column)
    for name, _ in ANALYTICS_FIELDS[1:]:  # A6 (all fills), A7-A11
        expected_value = figures[name] if name in figures else by_kind["all"].get(name)
        if name.endswith("_fills"):
            expected_value = by_kind[name.removesuffix("_fills")]["fills"]
        assert same(result.analytics[name], expected_value), name
    days = result.daily["date"].to_numpy("datetime64[ns]").view(np.int64) // NS_PER_DAY
    assert list(days) == sorted(daily)
    for day, mtm, fee in zip(days, result.daily["mtm_pnl"], result.daily["fees"], strict=True):
        assert same(mtm, daily[day][0]) and same(fee, daily[day][1]), day  # A9, A11


def test_the_cases_exercise_every_fill_kind_and_fees(shared_data, source):
    """The comparison above means something: v2.1 on MODON has quote fills, EOD flattens and
    stop-loss liquidations, and every fill pays a fee."""
    config = load_config(shared_data / "configs" / CONFIGS["v2_1_stop_loss"])
    params = resolve_params(strategies.get("v2_1_stop_loss").Params, "MODON", config, FEES)
    events, counts = source.load("MODON")
    result = run_security("MODON", "v2_1_stop_loss", events, params, counts)
    kinds = result.fill_analytics["kind"].value_counts()
    assert set(kinds.index) == set(FILL_KIND_NAMES)
    assert (result.fill_analytics["fee"] > 0).all()
