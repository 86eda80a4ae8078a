"""Arrow columns to the Events arrays: which column is which (SPEC §1.3-1), time stamps, the
BID/ASK/TRADE kind of each row, and pandas or Arrow inputs as one Arrow table.

Owns the column-level conversions `normalise` applies; the row rules are `engine.data.rules`'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.data.errors import InputError
from engine.types import ASK, BID, TRADE

# SPEC §1.3-2: Type is compared stripped and lower-cased.
KIND_OF_TYPE = {"bid": BID, "ask": ASK, "trade": TRADE}
VOLUME_NAMES = frozenset({"size", "vol", "volume", "qty", "quantity"})
NAT = np.iinfo(np.int64).min
_NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def map_columns(names: Sequence[str], where: str) -> dict[str, str]:
    """Source column of each target name, by SPEC §1.3-1; timestamp, type and price are required."""
    found: dict[str, str] = {}
    for name in names:
        key = str(name).strip().lower()
        if "date" in key or "time" in key:
            target = "timestamp"
        elif key == "type":
            target = "type"
        elif "price" in key:
            target = "price"
        elif key in VOLUME_NAMES:
            target = "volume"
        else:
            continue
        if target in found:
            raise InputError(
                f"{where}: columns {found[target]!r} and {name!r} both map to {target!r}; keep one"
            )
        found[target] = name
    missing = [t for t in ("timestamp", "type", "price") if t not in found]
    if missing:
        raise InputError(
            f"{where}: no column for {', '.join(missing)} among {list(names)}; expected the "
            "Bloomberg columns Dates, Type, Price, Size (or timestamp, type, price, volume)"
        )
    return found


def timestamp_ns(column: pa.ChunkedArray, name: str, where: str) -> np.ndarray:
    """int64 ns of naive local time, int64-min where missing or unparseable (SPEC §1.3-2).
    Numbers are refused: epoch counts without a unit would read as 1970 dates."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            column = pc.local_timestamp(column)
        return _in_ns(column.cast(pa.int64()), _NS_PER_UNIT[kind.unit])
    if pa.types.is_date32(kind):
        return _in_ns(column.cast(pa.int32()).cast(pa.int64()), 86_400 * 10**9)
    if pa.types.is_date64(kind):
        return _in_ns(column.cast(pa.int64()), 10**6)
    if pa.types.is_null(kind):
        return np.full(len(column), NAT, dtype=np.int64)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise not_timestamps(name, kind, where)
    parsed = pd.to_datetime(column.to_pandas(), errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _in_ns(counts: pa.ChunkedArray, per_unit: int) -> np.ndarray:
    """Counts of a time unit since 1970 as int64 ns; NaT where missing or outside the years
    1677-2262 that int64 nanoseconds can hold (they count as unreadable Dates, never wrap)."""
    if counts.null_count:
        counts = counts.fill_null(NAT)
    raw = np.asarray(counts.to_numpy())
    if per_unit == 1:
        return raw
    fits = (raw != NAT) & (np.abs(raw) < np.iinfo(np.int64).max // per_unit)
    out = np.full(len(raw), NAT, dtype=np.int64)
    out[fits] = raw[fits] * per_unit
    return out


def not_timestamps(name: str, kind, where: str) -> InputError:
    """The InputError for a time column that holds something other than date-times or text."""
    return InputError(
        f"{where}: column {name!r} holds {kind}, not date-times; store it as timestamp[ns] "
        "(naive local time), e.g. with pd.to_datetime(values, unit='s') for epoch seconds, "
        "or as text such as 2025-04-14 10:00:00"
    )


def kinds(column: pa.ChunkedArray) -> np.ndarray:
    """int8 BID/ASK/TRADE per row from the stripped, lower-cased Type; -1 for anything else."""
    if not pa.types.is_dictionary(column.type):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = column.cast(pa.string())
        column = pc.dictionary_encode(column)
    parts = [np.empty(0, dtype=np.int8)]
    for chunk in column.chunks:
        words = chunk.dictionary.to_pylist()
        table = [KIND_OF_TYPE.get(str(w).strip().lower(), -1) for w in words] + [-1]
        indices = chunk.indices
        codes = (indices.fill_null(len(words)) if indices.null_count else indices).to_numpy()
        parts.append(np.asarray(table, dtype=np.int8)[codes])
    return np.concatenate(parts)


def as_table(data: pa.Table | pa.RecordBatch | pd.DataFrame) -> pa.Table:
    """An Arrow table of the mapped columns of a pandas or Arrow input. Values are not coerced
    here: text stays text and booleans stay booleans, so the number rules can count them."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        columns = map_columns([str(c) for c in data.columns], "input frame")
        out = {}
        for target, name in columns.items():
            series = data[name]
            if target == "timestamp":
                series = _frame_times(series, name)
            elif pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
                pass  # numbers (NaN: empty) and booleans go to Arrow as they are
            else:  # Type, or mixed Price/Size values: as text, missing values as nulls
                series = series.map(_text, na_action="ignore").astype(object)
                series = series.where(series.notna(), None)
            out[name] = pa.array(series, from_pandas=True)
        return pa.table(out)
    raise TypeError(
        f"normalise takes a pyarrow Table or a pandas DataFrame, not {type(data).__name__}"
    )


def _frame_times(series: pd.Series, name: str) -> pd.Series:
    """A pandas time column as datetime64: numbers are left for `timestamp_ns` to refuse."""
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series
    if pd.api.types.is_bool_dtype(series) or any(_is_number(v) for v in series):
        raise not_timestamps(name, "numbers", "input frame")
    return pd.to_datetime(series, errors="coerce", format="mixed")


def _is_number(value) -> bool:
    """A number (bool included) that is not a missing-value marker."""
    return isinstance(value, int | float | np.number) and not pd.isna(value)


def _text(value) -> str:
    """One pandas value as text: booleans as TRUE/FALSE (not numbers), numbers round-trip exactly."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return value
    return repr(float(value)) if isinstance(value, float) else str(value)  # np.float64 too
