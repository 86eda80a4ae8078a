"""Numbers for people, defined once: table cells in the terminal, Markdown and artifacts. Plain
Python (no pandas or numpy import), so the command line can format without loading them."""

from __future__ import annotations

import math
from typing import Any


def plain(value: Any) -> Any:
    """A plain Python value: numpy scalars unwrapped, NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def format_value(value: Any) -> str:
    """A value for people: thousands separators, 2 decimals for floats; blank when missing."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def rounded(row: dict[str, Any], digits: int = 2) -> dict[str, Any]:
    """A row for a table artifact: floats rounded to `digits` (NaN as None)."""
    return {
        k: (round(v, digits) if isinstance(v, float) else v)
        for k, v in ((k, plain(v)) for k, v in row.items())
    }
