"""Fast, exact CSV text for trade tables: the very bytes of
`DataFrame.to_csv(index=False, lineterminator="\\n", date_format="%Y-%m-%d %H:%M:%S")`,
about six times faster.

pandas prints each float through NumPy's shortest round-trip repr (about 300 ns a value).
Arrow's float→string cast finds the same shortest digits (double-conversion, about 40 ns) but
prints some in another notation: "10" for 10.0, "1e+10", "0.00001", "1e-7". Inside the window
where both print positional digits (1e-4 <= |x| < 1e10, and zero) the only difference is the
".0" of whole numbers, which is appended here; every other float (NaN, ±inf, tiny, huge: rare in
trade tables) is formatted by `repr` itself. Anything this module does not handle exactly (other
dtypes, strings that need quoting, a one-column table) is written by `to_csv` itself.
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Characters that make Python's csv writer quote a field (QUOTE_MINIMAL); such tables go to pandas.
NEEDS_QUOTING = r'[,"\r\n]'
WRITE_OPTIONS = pa_csv.WriteOptions(
    quoting_style="none", quoting_header="none", eol="\n", batch_size=1 << 16
)
# Arrow prints floats positionally for 1e-6 <= |x| < 1e10; repr for 1e-4 <= |x| < 1e16.
POSITIONAL_LOW, POSITIONAL_HIGH = 1e-4, 1e10
UNITS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}  # pandas' datetime units
NAT = np.iinfo(np.int64).min


def float_strings(values: np.ndarray) -> pa.Array:
    """Each float64 as `repr(float)` prints it, NaN as null: equals `values.astype(str)`.
    Prices, mids and fees repeat from fill to fill: each run of equal values is printed once."""
    if len(values) < 2:
        return _float_strings(values)
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)  # -0.0 is not 0.0
    starts = np.r_[True, bits[1:] != bits[:-1]]
    if np.count_nonzero(starts) * 2 > len(values):  # mostly distinct: print every value
        return _float_strings(values)
    return _float_strings(values[starts]).take(pa.array(np.cumsum(starts) - 1))


def _float_strings(values: np.ndarray) -> pa.Array:
    text = pc.cast(pa.array(values), pa.string())
    magnitude = np.abs(values)
    positional = (magnitude < POSITIONAL_HIGH) & ((magnitude >= POSITIONAL_LOW) | (values == 0))
    whole = positional & (values == np.trunc(values))
    if whole.any():
        mask = pa.array(whole)
        text = pc.replace_with_mask(
            text, mask, pc.binary_join_element_wise(text.filter(mask), ".0", "")
        )
    if not positional.all():
        rest = values[~positional].tolist()
        printed = pa.array([None if v != v else repr(v) for v in rest], pa.string())
        text = pc.replace_with_mask(text, pa.array(~positional), printed)
    return text


def timestamp_strings(values: np.ndarray) -> pa.Array | None:
    """Naive datetimes as DATE_FORMAT prints them (sub-seconds dropped), NaT as null."""
    unit, count = np.datetime_data(values.dtype)
    if unit not in UNITS_PER_SECOND or count != 1:
        return None
    ticks = values.view(np.int64)
    # Floor division by hand: NumPy's own ns → s cast wraps around in the range's first second.
    seconds = ticks // UNITS_PER_SECOND[unit]
    stamps = pa.array(seconds, type=pa.timestamp("s"), mask=ticks == NAT)
    return pc.cast(stamps, pa.string())


@functools.cache
def arrow_agrees() -> bool:
    """Whether this pyarrow prints the probe floats as `repr` after `float_strings`' fix-ups
    (a guard against a pyarrow release that moves its notation thresholds)."""
    probes = [0.0, -0.0, 10.0, -152.0, 1e-4, 1.5e-4, 0.30000000000000004, 9999999999.5, 1e9]
    probes += [1e-05, 1e10, 123456789012345.6, 5e-324, 1e16, float("inf")]
    return float_strings(np.array(probes)).to_pylist() == [repr(v) for v in probes]


def column_strings(series: pd.Series) -> pa.Array | None:
    """One column as Arrow values that print as pandas prints them, or None if it cannot."""
    dtype = series.dtype
    if dtype == np.float64:
        return float_strings(series.to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return pa.array(series.to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return timestamp_strings(series.to_numpy())
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        try:
            strings = pa.array(series.array, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        distinct = pc.unique(strings).drop_null().to_pylist()  # "buy", "sell"
        return None if any(re.search(NEEDS_QUOTING, s) for s in distinct) else strings
    return None


def trades_table(trades: pd.DataFrame) -> pa.Table | None:
    """The table as Arrow columns that print as `to_csv` prints them, or None if any cannot."""
    names = list(trades.columns)
    if len(names) < 2 or not arrow_agrees():  # a one-field row prints NaN as '""'
        return None
    if not all(isinstance(n, str) and n and not re.search(NEEDS_QUOTING, n) for n in names):
        return None
    arrays = []
    for i in range(len(names)):
        array = column_strings(trades.iloc[:, i])
        if array is None:
            return None
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=names)


def pandas_csv(trades: pd.DataFrame, path: str | Path | None = None) -> str | None:
    """The reference: what `mmflow backtest` wrote before this module (and still the oracle)."""
    return trades.to_csv(path, index=False, lineterminator="\n", date_format=DATE_FORMAT)


def trades_csv_bytes(trades: pd.DataFrame) -> bytes:
    """The bytes `pandas_csv(trades)` writes (UTF-8)."""
    table = trades_table(trades)
    if table is None:
        return pandas_csv(trades).encode()
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, WRITE_OPTIONS)
    return sink.getvalue()


def write_trades(trades: pd.DataFrame, path: str | Path) -> None:
    """Write `trades` to `path` byte-identical to `pandas_csv(trades, path)`."""
    table = trades_table(trades)
    if table is None:
        pandas_csv(trades, path)
    else:
        with pa.OSFile(str(path), "wb") as sink:  # a local file, never a URI
            pa_csv.write_csv(table, sink, WRITE_OPTIONS)
