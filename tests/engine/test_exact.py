"""Exact sums: the compiled partials give math.fsum's result to the last bit, so a portfolio summed
from per-security partials equals one summed over every fill (sweep cells keep no fills)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.results import metrics
from engine.results.exact import exact_partials_nb, segment_fsums_nb

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, max_size=200))
def test_partials_sum_to_fsum(values):
    partials = exact_partials_nb(np.array(values, dtype=np.float64))
    assert math.fsum(partials.tolist()) == math.fsum(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(finite, max_size=50), min_size=1, max_size=6))
def test_fsum_of_pooled_partials_is_fsum_of_everything(groups):
    stats = [metrics.fill_stats(np.array(g, dtype=np.float64)) for g in groups]
    everything = [v for g in groups for v in g]
    assert math.fsum([p for s in stats for p in s.realized]) == math.fsum(everything)
    assert math.fsum([p for s in stats for p in s.gains]) == math.fsum(
        v for v in everything if v > 0
    )
    assert sum(s.wins for s in stats) == sum(v > 0 for v in everything)


def test_segments_and_the_classic_cancellation():
    values = np.array([1e100, 1.0, -1e100, 1e-100, 0.1, 0.2, 0.3], dtype=np.float64)
    sums = segment_fsums_nb(values, np.array([0, 4]), np.array([4, 7]))
    assert sums.tolist() == [math.fsum(values[:4].tolist()), math.fsum([0.1, 0.2, 0.3])]
    assert sums.tolist() == [1.0, 0.6]


# Values built to land on rounding ties and long cancellations, where a plain or Kahan sum fails.
tricky = st.one_of(
    finite,
    st.sampled_from([1.0, -1.0, 2.0**-53, -(2.0**-53), 2.0**-54, 1e16, -1e16, 0.1, -0.0, 0.0]),
    st.integers(-60, 60).map(lambda e: 2.0**e * 1.5),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(tricky, max_size=40), min_size=1, max_size=6))
def test_compiled_fsum_of_each_segment_is_math_fsum_to_the_bit(groups):
    values = np.array([v for g in groups for v in g], dtype=np.float64)
    ends = np.cumsum([len(g) for g in groups])
    starts = ends - np.array([len(g) for g in groups])
    sums = segment_fsums_nb(values, starts, ends)
    for got, group in zip(sums.tolist(), groups, strict=True):
        want = math.fsum(group)
        assert got == want and math.copysign(1, got) == math.copysign(1, want), (group, got)


def test_daily_sums_are_exact_per_date_even_when_rows_step_back():
    day = 86_400 * 10**9
    stamps = np.array([0, 10, day + 5, day - 1, 2 * day], dtype=np.int64)  # steps back
    realized = np.array([0.1, 0.2, 1e16, 0.3, -1.0])
    daily = metrics.daily_from_fills(stamps, realized)
    assert daily["realized_pnl"].tolist() == [math.fsum([0.1, 0.2, 0.3]), 1e16, -1.0]
    assert daily["trades"].tolist() == [3, 1, 1]
