"""The number rules of the input: which Price and Size values a row may carry (SPEC §1.3, plus ours).

Owns reading Price/Size values into float64 with a status per value (a number, empty, or not a
number), and `drop_reasons`, the one place that decides why a row is dropped. Shared by the
workbook reader (cells) and `normalise` (Arrow columns), so both count the same rows the same way.

Every dropped row is counted once, under the first rule it breaks, in this order:
1. `dropped_bad_timestamp`: Dates empty or not a date/time (SPEC §1.3-3).
2. `dropped_bad_price`: Price empty or not a number: text, a boolean, a date (SPEC §1.3-3).
3. `dropped_nonfinite_price`: Price is inf, -inf or NaN, or above MAX_PRICE (no exchange quotes
   such a price; it would overflow the P&L).
4. `dropped_nonpositive_price`: Price <= 0, e.g. the 09:30 `BID 0.0/0` rows (SPEC §1.3-3).
5. `dropped_bad_size`: Size present but not a quantity: text, a boolean, inf, NaN, negative, or
   above MAX_SIZE. An empty Size is kept (volume NaN) and a zero Size is kept (SPEC §1.3-3).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

KEEP, BAD_TIMESTAMP, BAD_PRICE, NONFINITE_PRICE, NONPOSITIVE_PRICE, BAD_SIZE = range(6)
REASON_NAMES = (
    "kept",
    "dropped_bad_timestamp",
    "dropped_bad_price",
    "dropped_nonfinite_price",
    "dropped_nonpositive_price",
    "dropped_bad_size",
)
NUMBER, EMPTY, NOT_A_NUMBER = 0, 1, 2  # status of one value
MAX_PRICE = 1e9
MAX_SIZE = 1e12
_NAN_WORDS = frozenset({"nan", "+nan", "-nan"})


def drop_reasons(
    timestamp_ok: np.ndarray,
    price: np.ndarray,
    price_status: np.ndarray,
    volume: np.ndarray,
    volume_status: np.ndarray,
) -> np.ndarray:
    """int8 per row: KEEP, or the first rule of the module docstring the row breaks."""
    reason = np.zeros(len(price), dtype=np.int8)
    with np.errstate(invalid="ignore"):
        good_size = np.isfinite(volume) & (volume >= 0) & (volume <= MAX_SIZE)
        good_price = np.isfinite(price) & (price <= MAX_PRICE)
        reason[(volume_status == NOT_A_NUMBER) | ((volume_status == NUMBER) & ~good_size)] = (
            BAD_SIZE
        )
        reason[price <= 0] = NONPOSITIVE_PRICE  # -inf too, then re-marked non-finite below
    number = price_status == NUMBER
    reason[number & ~good_price] = NONFINITE_PRICE
    reason[~number] = BAD_PRICE
    reason[~timestamp_ok] = BAD_TIMESTAMP
    return reason


def count_reasons(reason: np.ndarray) -> dict[str, int]:
    """How many rows each rule dropped, keyed by the RowCounts field names."""
    counts = np.bincount(reason, minlength=len(REASON_NAMES))
    return {name: int(n) for name, n in zip(REASON_NAMES[1:], counts[1:], strict=True)}


def cell_numbers(values: list) -> tuple[np.ndarray, np.ndarray]:
    """Worksheet cells to (float64, status): numbers as they are, numeric text parsed, empty
    cells EMPTY, and booleans, dates and other text NOT_A_NUMBER (never coerced to 1.0 or 0.0)."""
    n = len(values)
    status = np.zeros(n, dtype=np.int8)
    if set(map(type, values)) <= {float, int}:  # bool is its own type: not in this set
        return np.array(values, dtype=np.float64).reshape(n), status
    out = np.full(n, np.nan)
    for i, value in enumerate(values):
        kind = type(value)
        if kind is float or kind is int:
            out[i] = value
        elif kind is str and value.strip():
            try:
                out[i] = float(value.strip())
            except ValueError:
                status[i] = NOT_A_NUMBER
        elif value is None or kind is str:
            status[i] = EMPTY
        else:
            status[i] = NOT_A_NUMBER
    return out, status


def column_numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """An Arrow column to (float64, status): nulls EMPTY, numbers as they are (a NaN value is a
    number: it fails the finite rules), text parsed, booleans and other types NOT_A_NUMBER."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    nulls = column.null_count
    empty = column.is_null().to_numpy(zero_copy_only=False) if nulls else None
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        values = column.to_numpy() if not pa.types.is_decimal(kind) else None
        if values is None or values.dtype != np.float64:
            values = column.cast(pa.float64()).to_numpy()
        status = np.zeros(len(values), dtype=np.int8)
        if empty is not None:
            status[empty] = EMPTY
        return values, status
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_numbers(column.to_pandas())
    status = np.full(len(column), NOT_A_NUMBER, dtype=np.int8)
    if empty is not None:
        status[empty] = EMPTY
    return np.full(len(column), np.nan), status


def _text_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Text values to (float64, status): blank EMPTY, numeric text parsed, other text NOT_A_NUMBER."""
    stripped = text.str.strip()
    empty = (stripped.isna() | (stripped == "")).to_numpy()
    values = pd.to_numeric(stripped.where(~empty), errors="coerce").to_numpy(dtype=np.float64)
    nan_word = stripped.str.lower().isin(_NAN_WORDS).to_numpy()
    status = np.where(empty, EMPTY, np.where(np.isnan(values) & ~nan_word, NOT_A_NUMBER, NUMBER))
    return values, status.astype(np.int8)
