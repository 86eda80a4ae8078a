"""HTML pieces shared by the run and sweep pages: escaping, number formats, tables, bases of figures."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd

INDICATIVE_DAYS = 20  # a daily Sharpe or drawdown over fewer days is indicative only
INDICATIVE = f"fewer than {INDICATIVE_DAYS} days: indicative only"
DRAWDOWN_PCT = "max drawdown as % of the running peak of realized P&L, SPEC §5.3"


def esc(value) -> str:
    """HTML-escaped text ('' for None)."""
    return html.escape("" if value is None else str(value))


def missing(value) -> bool:
    """None, NaN or pd.NA."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def integer(value) -> str:
    return "–" if missing(value) else f"{int(value):,}"


def money(value) -> str:
    return "–" if missing(value) else f"{float(value):,.2f}"


def ratio(value) -> str:
    return "–" if missing(value) else f"{float(value):,.2f}"


def pct(value) -> str:
    return "–" if missing(value) else f"{float(value):.1f}%"


def tone(value) -> str:
    """' pos' / ' neg' by sign (P&L is coloured), '' for zero or missing."""
    return "" if missing(value) or value == 0 else (" pos" if value > 0 else " neg")


def days_basis(days: int) -> str:
    """The basis of a daily figure: 'daily, over N days'."""
    return f"daily, over {days:,} day{'' if days == 1 else 's'}"


def caveat(days: int) -> str:
    """The caveat of a daily figure over too few days, or ''."""
    return INDICATIVE if days < INDICATIVE_DAYS else ""


def basis_html(days: int) -> str:
    """'daily, over N days', with the visible caveat when N is small."""
    warning = caveat(days)
    text = esc(days_basis(days))
    return f"{text}; <span class='caveat'>{esc(warning)}</span>" if warning else text


def time_utc(value) -> str:
    """A moment as 'YYYY-mm-dd HH:MM:SS UTC' (naive moments are UTC already)."""
    if missing(value):
        return "–"
    moment = pd.Timestamp(value)
    if moment.tzinfo is not None:
        moment = moment.tz_convert(UTC).tz_localize(None)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def naive_utc(value: datetime | None) -> datetime | None:
    """A naive UTC datetime, so in-memory (aware) and stored (naive) moments subtract alike."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def table(records: list[dict], columns, row_class: Callable[[int, dict], str] | None = None) -> str:
    """An HTML table; columns are (header, key, format to HTML, kind: 'text' | 'num' | 'signed')."""
    head = "".join(
        f"<th{' class=num' if kind != 'text' else ''}>{header}</th>"
        for header, _, _, kind in columns
    )
    rows = []
    for i, record in enumerate(records):
        cells = "".join(
            f"<td class='{'' if kind == 'text' else 'num'}"
            f"{tone(record[key]) if kind == 'signed' else ''}'>{fmt(record[key])}</td>"
            for _, key, fmt, kind in columns
        )
        css = row_class(i, record) if row_class else ""
        rows.append(f"<tr class='{css}'>{cells}</tr>" if css else f"<tr>{cells}</tr>")
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def plain(value) -> str:
    """A parameter value as written by a person: whole floats without decimals, '–' when unset."""
    if missing(value):
        return "–"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def sort_key(key: str, value) -> tuple:
    """Order parameter values numerically when they are numbers, else as text."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return key, float(value) if number else math.inf, str(value)


def overrides_label(overrides: dict) -> str:
    """'quote_size=25000, refill_interval_sec=30', or 'defaults'."""
    return (
        ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(overrides.items())
        )
        or "defaults"
    )


def anchor(security: str) -> str:
    """The id of a security's section: `sec-` and the name with anything but [A-Za-z0-9_-] as '-'."""
    return "sec-" + re.sub(r"[^A-Za-z0-9_-]", "-", security)
