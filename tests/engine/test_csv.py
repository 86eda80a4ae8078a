"""`engine.results.csv` writes the very bytes of `DataFrame.to_csv(index=False,
lineterminator="\\n", date_format="%Y-%m-%d %H:%M:%S")`: on every parity fixture's trades, on the
ten securities of the shared Parquet data, on generated tables (every kind of double, timestamps
across the whole datetime64[ns] range, NaN/NaT) and on an empty table (the header only).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parity import CONFIGS, FIXTURES

from engine.data.source import open_data
from engine.params import load_config
from engine.results.csv import (
    float_strings,
    pandas_csv,
    trades_csv_bytes,
    trades_table,
    write_trades,
)
from engine.runner import backtest_security, run_backtest
from engine.types import TRADE_COLUMNS

COLUMNS = [c for c in TRADE_COLUMNS if c != "seq"]  # the `<SECURITY>_trades.csv` columns
HEADER = b"timestamp,side,fill_price,fill_qty,realized_pnl,position,pnl\n"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Doubles where a shortest-repr printer can go wrong: notation thresholds (1e-4, 1e10 where
# Arrow turns scientific, 1e16 where repr does), whole numbers, signed zero, subnormals, the
# extremes, and exact ties between two shortest candidates (2**50 + 0.25 prints ...624.2).
SPECIAL = [
    0.0, -0.0, 1.0, -1.0, 10.0, -152.0, 0.1, 0.30000000000000004, 12.3, 4985.310000000006,
    1e-4, 9.999999999999999e-05, 1e-05, 1.5e-06, 1e-07, 1e9, 9999999999.5, 9999999999.999998,
    1e10, 123456789012345.6, 1e15, 9999999999999998.0, 1e16, 1.2345678901234568e16, 1e22,
    2.0**50 + 0.25, 2.0**50 + 0.75, 2.0**53, 2.0**63, 5e-324, 2.2250738585072014e-308,
    1.7976931348623157e308, -1.7976931348623157e308, math.inf, -math.inf, math.nan,
]  # fmt: skip
FLOATS = st.one_of(
    st.floats(width=64),  # any double: NaN, ±inf, subnormals included
    st.sampled_from(SPECIAL),
    st.integers(-(2**64), 2**64).map(float),  # whole numbers, past 2**53 too
    st.integers(-(10**9), 10**9).map(lambda cents: cents / 100),  # prices and P&L
    st.builds(lambda m, e: m * 10.0**e, st.floats(-10, 10), st.integers(-320, 300)),
)
NS = np.iinfo(np.int64)
TIMESTAMPS = st.one_of(
    st.integers(NS.min + 1, NS.max),  # 1677-09-21 .. 2262-04-11, nanoseconds
    st.integers(-(10**9), 10**9).map(lambda s: s * 10**9),  # whole seconds around 1970
    st.just(NS.min),  # NaT
)


def table(rows: list[tuple], sides: str = "str") -> pd.DataFrame:
    """A trades table with the dtypes `engine.results.summary` gives it."""
    ts, side, price, qty, realized, position, pnl = zip(*rows, strict=True) if rows else [()] * 7
    return pd.DataFrame(
        {
            "timestamp": np.array(ts, dtype=np.int64).view("datetime64[ns]"),
            "side": pd.array(side, dtype=sides),
            "fill_price": np.array(price, dtype=np.float64),
            "fill_qty": np.array(qty, dtype=np.int64),
            "realized_pnl": np.array(realized, dtype=np.float64),
            "position": np.array(position, dtype=np.int64),
            "pnl": np.array(pnl, dtype=np.float64),
        }
    )


SIDES = st.sampled_from(["buy", "sell"])


def trade_rows(sides=SIDES):
    """Lists of trade rows with any doubles, timestamps and 64-bit integers."""
    ints = st.integers(NS.min, NS.max)
    return st.lists(st.tuples(TIMESTAMPS, sides, FLOATS, ints, FLOATS, ints, FLOATS), max_size=30)


def assert_same_bytes(trades: pd.DataFrame, tmp_path) -> None:
    """Both the bytes and the written file equal `to_csv`'s."""
    expected = pandas_csv(trades).encode()
    assert trades_csv_bytes(trades) == expected
    write_trades(trades, tmp_path / "mine.csv")
    pandas_csv(trades, tmp_path / "pandas.csv")
    assert (tmp_path / "mine.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


@pytest.mark.parametrize(
    ("folder", "data_file", "strategy", "security"),
    [f[:4] for f in FIXTURES],
    ids=[f"{f[0]}-{f[3]}" for f in FIXTURES],
)
def test_parity_fixture_trades_print_as_pandas_and_the_reference(
    shared_data, tmp_path, folder, data_file, strategy, security
):
    config = load_config(shared_data / "configs" / CONFIGS[strategy])
    source = open_data(shared_data / data_file, cache_dir=tmp_path / "cache")
    trades = backtest_security(source, security, strategy, config).trades[COLUMNS]
    assert trades_table(trades) is not None  # the fast path, not the pandas fallback
    assert_same_bytes(trades, tmp_path)
    reference = shared_data / "reference" / folder / f"{security}_trades.csv"
    assert trades_csv_bytes(trades) == reference.read_bytes()


@pytest.mark.parametrize("strategy", sorted(CONFIGS))
def test_every_shared_security_prints_as_pandas(shared_data, tmp_path, strategy):
    config = load_config(shared_data / "configs" / CONFIGS[strategy])
    run = run_backtest(shared_data / "parquet", strategy, config=config)
    assert len(run.results) == 10 and not run.failures
    for result in run.results:
        trades = result.trades[COLUMNS]
        assert trades_table(trades) is not None, result.security
        assert trades_csv_bytes(trades) == pandas_csv(trades).encode(), result.security


@SETTINGS
@given(st.lists(FLOATS, max_size=50))
def test_floats_print_as_repr_and_nan_as_null(values):
    expected = [None if v != v else repr(v) for v in values]
    assert float_strings(np.array(values, dtype=np.float64)).to_pylist() == expected


REPEATED = st.sampled_from([0.0, -0.0, math.nan, 1.5, 2.0, 1e-7, 1e20, 3.14159, -2.5e-5])


@SETTINGS
@given(st.lists(REPEATED, max_size=60))
def test_runs_of_equal_values_print_as_repr_and_nan_as_null(values):
    """Printed once per run of equal values (bit for bit: -0.0 is not 0.0), then repeated."""
    expected = [None if v != v else repr(v) for v in values]
    assert float_strings(np.array(values, dtype=np.float64)).to_pylist() == expected


@SETTINGS
@given(trade_rows())
def test_generated_tables_print_as_pandas(tmp_path_factory, rows):
    trades = table(rows)
    assert trades_table(trades) is not None
    assert_same_bytes(trades, tmp_path_factory.mktemp("csv"))


@SETTINGS
@given(trade_rows(st.one_of(st.text(max_size=5), st.none())), st.sampled_from(["str", "object"]))
def test_any_side_text_prints_as_pandas(tmp_path_factory, rows, sides):
    """Text that must be quoted (commas, quotes, line breaks) goes through pandas itself."""
    assert_same_bytes(table(rows, sides), tmp_path_factory.mktemp("csv"))


def test_empty_tables_print_the_header_only(tmp_path):
    for trades in (table([]), pd.DataFrame(columns=COLUMNS)):
        assert trades_csv_bytes(trades) == HEADER
        assert_same_bytes(trades, tmp_path)


def test_other_tables_fall_back_to_pandas(tmp_path):
    rows = [(0, "buy", 1.5, 1, 0.0, 1, math.nan)]
    unusual = [
        table(rows).astype({"fill_price": "float32"}),
        table(rows).astype({"fill_qty": "Int64"}),
        table(rows).assign(timestamp=lambda t: t.timestamp.dt.tz_localize("Asia/Dubai")),
        table(rows).assign(side=True),
        table(rows).rename(columns={"side": "side, buy or sell"}),
        table(rows)[["pnl"]],  # one field per row: NaN prints as ""
    ]
    for trades in unusual:
        assert trades_table(trades) is None
        assert_same_bytes(trades, tmp_path)
