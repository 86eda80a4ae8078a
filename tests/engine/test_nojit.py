"""Compiled kernels equal the same code run as plain Python (STYLE "Numba": every kernel runs
unchanged with NUMBA_DISABLE_JIT=1).

One subprocess with NUMBA_DISABLE_JIT=1 runs every strategy on a hand-made table and on the first
30,000 rows of the shared SPINNEYS Parquet file; its fills and final state must equal the
in-process compiled run field for field, exactly.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tick

from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import KIND_NAMES, Events

REPO = Path(__file__).resolve().parents[2]
SPINNEYS = REPO.parent / "shared" / "data" / "parquet" / "spinneys.parquet"
STRATEGIES = ("v1_baseline", "v2_price_follow_qty_cooldown", "v2_1_stop_loss")

# SPINNEYS in the shipped configs (SPEC §4.1): v1 at 180 s, v2/v2.1 at 30 s, stop 2 %.
SPINNEYS_PARAMS = {
    "quote_size": 9_700,
    "max_position": 19_400,
    "max_notional": 1_500_000,
    "min_local_currency_before_quote": 1_940,
}

# A two-day table that reaches most branches: quotes on both sides, a crossed print, a v2.1
# stop-loss whose liquidation is still pending at the EOD flatten (SPEC §4.4-5), a pending
# flatten (§3.2-4), stale quotes on the next day and an overnight carry.
HAND_ROWS = [
    ("2025-04-14 09:59:00", "BID", 10.00, 800),
    ("10:00:00", "BID", 10.00, 1000),
    ("10:00:00", "ASK", 10.05, 1000),
    ("10:00:01", "TRADE", 10.00, 1300),
    ("10:00:02", "ASK", 10.00, 1000),
    ("10:00:03", "BID", 9.50, 100),
    ("10:00:04", "TRADE", 9.90, 500),
    ("10:01:30", "BID", 9.95, 0),
    ("10:02:00", "ASK", 10.10, 700),
    ("14:44:59", "TRADE", 10.20, 900),
    ("14:55:00", "TRADE", 9.60, 500),
    ("2025-04-15 10:00:00", "ASK", 9.80, 500),
    ("10:00:01", "BID", 9.70, 150),
    ("10:00:02", "TRADE", 9.75, 400),
    ("10:00:02", "BID", 9.70, 150),
    ("10:03:00", "TRADE", 9.60, 2000),
    ("10:04:00", "ASK", 9.65, 3000),
    ("10:04:01", "TRADE", 9.70, 2500),
    ("14:55:00", "ASK", 9.70, 100),
    ("15:00:00", "BID", 9.60, 100),
]

CHILD = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    from engine.sim import strategies
    from engine.sim.backtest import simulate
    from engine.types import Events

    def as_array(records):
        return np.array(records, dtype=records.dtype)

    with open(sys.argv[1], "rb") as handle:
        jobs = pickle.load(handle)
    results = {}
    for (strategy, case), (arrays, params) in jobs.items():
        assert not hasattr(strategies.get(strategy).run_nb, "py_func"), "JIT is not disabled"
        sim = simulate(strategy, Events(*arrays), params)
        results[strategy, case] = (as_array(sim.fills), as_array(sim.state))
    with open(sys.argv[2], "wb") as handle:
        pickle.dump(results, handle)
    """
)


def spinneys_events(n_rows: int) -> Events:
    """The first `n_rows` Parquet rows, normalised as SPEC §1.3 (no NaT/NaN, price > 0)."""
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(SPINNEYS).slice(0, n_rows).to_pandas()
    kind = table["type"].str.strip().str.upper().map({name: i for i, name in enumerate(KIND_NAMES)})
    keep = table["timestamp"].notna() & (table["price"] > 0) & kind.notna()  # NaN price: False
    table, kind = table[keep], kind[keep]
    return Events(
        timestamp_ns=table["timestamp"].to_numpy("datetime64[ns]").astype(np.int64),
        kind=kind.to_numpy(np.int8),
        price=table["price"].to_numpy(np.float64),
        volume=table["volume"].to_numpy(np.float64),
    )


def jobs() -> dict:
    """(strategy, case) -> (event arrays, params) for every strategy on both tables."""
    cases = {"hand": (tick.events(*HAND_ROWS), dict(quote_size=300, refill_interval_sec=30))}
    if SPINNEYS.exists():
        cases["spinneys_30k"] = (spinneys_events(30_000), dict(SPINNEYS_PARAMS))
    out = {}
    for strategy in STRATEGIES:
        for case, (evs, values) in cases.items():
            values = dict(values)
            if case == "spinneys_30k":
                values["refill_interval_sec"] = 180 if strategy == "v1_baseline" else 30
            if strategy == "v2_1_stop_loss":
                values["stop_loss_threshold_pct"] = 2.0
            out[strategy, case] = (tuple(evs), tick.params(strategy, **values))
    return out


def assert_records_equal(got, expected, what: str) -> None:
    """Every field equal, exactly (NaN equals NaN)."""
    assert got.dtype.names == expected.dtype.names, what
    for name in expected.dtype.names:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{what}: {name}")


def as_array(records) -> np.ndarray:
    """A plain structured array (or 0-d array for one record) of the given records."""
    return np.array(records, dtype=records.dtype)


@pytest.fixture(scope="module")
def plain_python_runs(tmp_path_factory):
    """(jobs, results): every job run once in one NUMBA_DISABLE_JIT=1 subprocess."""
    if not hasattr(strategies.get(STRATEGIES[0]).run_nb, "py_func"):
        pytest.skip("this session runs without the JIT; nothing to compare")
    work = jobs()
    folder = tmp_path_factory.mktemp("nojit")
    job_file, result_file = folder / "jobs.pkl", folder / "results.pkl"
    job_file.write_bytes(pickle.dumps(work))
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    subprocess.run(
        [sys.executable, "-c", CHILD, str(job_file), str(result_file)],
        env=env,
        cwd=REPO,
        check=True,
        timeout=600,
    )
    results = pickle.loads(result_file.read_bytes())
    assert results.keys() == work.keys()
    return work, results


def assert_same_as_compiled(plain_python_runs, case: str) -> None:
    work, results = plain_python_runs
    for strategy in STRATEGIES:
        arrays, params = work[strategy, case]
        sim = simulate(strategy, Events(*arrays), params)
        plain_fills, plain_state = results[strategy, case]
        what = f"{strategy}/{case}"
        assert len(sim.fills) > 0, f"{what}: no fills, nothing compared"
        assert_records_equal(plain_fills, as_array(sim.fills), f"{what} fills")
        assert_records_equal(plain_state, as_array(sim.state), f"{what} state")


def test_hand_made_table_compiled_equals_plain_python(plain_python_runs):
    """STYLE "Numba": compiled and plain-Python runs give identical fills and final state."""
    assert_same_as_compiled(plain_python_runs, "hand")


@pytest.mark.skipif(not SPINNEYS.exists(), reason=f"{SPINNEYS} is absent")
def test_spinneys_30k_rows_compiled_equals_plain_python(plain_python_runs):
    """The same on 30,000 real rows (SPINNEYS, shipped parameters)."""
    assert_same_as_compiled(plain_python_runs, "spinneys_30k")
