"""A deterministic synthetic Bloomberg workbook, so the repository can ship sample data of its own.

Owns `write_sample_workbook`: invented tickers (no real securities) in the exact export layout of
SPEC §1.1 and with the day structure of the ADX-style files of SPEC §1.6-3: `BID 0.0/0` and
`ASK 0.0/0` at 09:30:00, top-of-book snapshots and prints on a realistic tick grid during
10:00-14:45, the closing-auction uncross at 14:55:00 (one print of size 0), a size-0 print at
15:00:00 at the closing price, and a few rows that step back one second (SPEC §1.6-2).
The same arguments give the same bytes: the zip entries get fixed timestamps and the document
properties a fixed creation date, so a regenerated sample is not a change.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import openpyxl

# Invented tickers (not listed securities) and a starting price for each, in local currency.
TICKERS = (
    ("FALCONRE", 2.45),
    ("OASISBK", 5.12),
    ("DUNEGAS", 8.30),
    ("PEARLDEV", 3.76),
    ("CORALTEL", 12.40),
    ("MIRAGEIN", 1.85),
    ("SANDPORT", 6.95),
    ("GULFLOGI", 24.10),
    ("DATEPALM", 4.40),
    ("SUKHOTEL", 15.60),
    ("QAMARPWR", 2.98),
    ("NAJMAIR", 7.22),
    ("WADICHEM", 33.50),
    ("RIMALFD", 1.62),
    ("BARQBNK", 18.30),
    ("SAHRACEM", 3.15),
)
FIRST_DATE = date(2025, 4, 14)  # a Monday; the UAE week runs Monday to Friday
HEADER = ("Dates", "Type", "Price", "Size")
FIXED_ROWS_PER_DAY = 20  # 09:30 zero rows, pre-close snapshots, uncross prints, 15:00 print
MEDIAN_QUOTE_NOTIONAL = 200_000.0  # displayed size x price, well above the 25,000 quote threshold
MEDIAN_TRADE_NOTIONAL = 30_000.0
FIXED_TIME = datetime(2025, 1, 1)  # the document's created/modified date: not the wall clock
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_CORE_DATES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")
PROGRESS_EVERY = 1_000  # rows between calls of `on_rows`


def write_sample_workbook(
    path: str | Path,
    *,
    sheets: int = 16,
    days: int = 3,
    rows_per_sheet: int = 20_000,
    seed: int = 7,
    on_rows: Callable[[int], None] | None = None,
) -> Path:
    """Write the synthetic workbook (the same bytes for the same arguments) and return its path;
    `on_rows(n)` is called as rows are written (n new rows each time), for progress bars."""
    if not 1 <= sheets <= len(TICKERS):
        raise ValueError(f"sheets must be between 1 and {len(TICKERS)}, got {sheets}")
    if days < 1 or rows_per_sheet < days * (FIXED_ROWS_PER_DAY + 50):
        raise ValueError(
            f"need days >= 1 and rows_per_sheet >= {FIXED_ROWS_PER_DAY + 50} per day, "
            f"got days={days}, rows_per_sheet={rows_per_sheet}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook(write_only=True)
    book.properties.creator = "mmflow sample"
    book.properties.created = FIXED_TIME
    for index, (ticker, start_price) in enumerate(TICKERS[:sheets]):
        sheet = book.create_sheet(f"{ticker} UH Equity")
        sheet.append([f"{ticker} UH Equity"])  # row 1: the ticker label (SPEC §1.1-2)
        sheet.append([f"Synthetic L1 tick data by mmflow (seed {seed}); not market data"])
        sheet.append(list(HEADER))  # row 3: the header
        rng = np.random.default_rng([seed, index])
        for number, row in enumerate(_security_rows(rng, start_price, days, rows_per_sheet), 1):
            sheet.append(row)
            if on_rows is not None and number % PROGRESS_EVERY == 0:
                on_rows(PROGRESS_EVERY)
        if on_rows is not None and rows_per_sheet % PROGRESS_EVERY:
            on_rows(rows_per_sheet % PROGRESS_EVERY)
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        book.save(draft)
        _write_reproducibly(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return path


def _write_reproducibly(source: Path, target: Path) -> None:
    """Copy a zip with fixed entry times and attributes and fixed document dates, entries in the
    writer's (deterministic) order, so equal contents give equal bytes."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename == "docProps/core.xml":
                data = _CORE_DATES.sub(rb"\g<1>" + stamp + rb"\g<3>", data)
            info = zipfile.ZipInfo(entry.filename, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the platform
            info.external_attr = 0o644 << 16
            new.writestr(info, data, compresslevel=6)


def tick_size(price: float) -> float:
    """The price grid step for a price level (ADX-style bands)."""
    if price < 1:
        return 0.001
    if price < 10:
        return 0.01
    if price < 50:
        return 0.02
    if price < 100:
        return 0.05
    return 0.1


def _trading_dates(days: int) -> list[date]:
    """The first `days` weekdays from FIRST_DATE."""
    out, day = [], FIRST_DATE
    while len(out) < days:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def _security_rows(rng: np.random.Generator, price: float, days: int, rows: int) -> list[list]:
    """All rows of one security: `days` sessions sharing `rows` rows, the price carried over."""
    out: list[list] = []
    dates = _trading_dates(days)
    bid = price
    for number, day in enumerate(dates):
        share = rows // days + (rows % days if number == days - 1 else 0)
        day_rows, bid = _session_rows(rng, day, bid, share)
        out.extend(day_rows)
    return out


def _session_rows(
    rng: np.random.Generator, day: date, bid: float, rows: int
) -> tuple[list[list], float]:
    """One session of exactly `rows` rows; returns them and the next day's starting bid."""
    at = datetime.combine(day, datetime.min.time())
    out: list[list] = [
        [at + timedelta(hours=9, minutes=30), "BID", 0.0, 0],  # SPEC §1.6-3 zero rows
        [at + timedelta(hours=9, minutes=30), "ASK", 0.0, 0],
    ]
    continuous = rows - FIXED_ROWS_PER_DAY
    stamps = _continuous_stamps(rng, at, continuous)
    spread = 1
    for stamp in stamps:
        tick = tick_size(bid)
        if rng.random() < 0.04:  # the mid takes one tick step
            bid = max(tick, round(bid + tick * rng.choice((-1, 1)), 3))
        if rng.random() < 0.1:
            spread = int(rng.integers(1, 4))  # 1-3 ticks
        ask = round(bid + spread * tick, 3)
        out.append(_continuous_row(rng, stamp, bid, ask, tick))
    # Pre-close snapshots 14:45-14:55, then the uncross at 14:55:00 at one price (SPEC §1.6-3).
    tick = tick_size(bid)
    close = round(bid + tick * int(rng.integers(0, 2)), 3)
    for second in sorted(rng.choice(600, size=8, replace=False)):
        side = "BID" if second % 2 else "ASK"
        level = bid if side == "BID" else round(bid + tick, 3)
        out.append(
            [
                at + timedelta(hours=14, minutes=45, seconds=int(second)),
                side,
                level,
                _size(rng, level, MEDIAN_QUOTE_NOTIONAL),
            ]
        )
    uncross = at + timedelta(hours=14, minutes=55)
    zero_at = int(rng.integers(0, 7))
    for k in range(7):
        size = 0 if k == zero_at else _size(rng, close, MEDIAN_TRADE_NOTIONAL * 3)
        out.append([uncross, "TRADE", close, size])
    for side, level in (("BID", round(close - tick, 3)), ("ASK", round(close + tick, 3))):
        out.append(
            [
                at + timedelta(hours=14, minutes=57),
                side,
                level,
                _size(rng, level, MEDIAN_QUOTE_NOTIONAL),
            ]
        )
    out.append([at + timedelta(hours=15), "TRADE", close, 0])  # SPEC §1.6-3 size-0 print
    return out, close


def _continuous_stamps(rng: np.random.Generator, at: datetime, count: int) -> list[datetime]:
    """Whole-second stamps in [10:00, 14:45) with same-second clusters and a few 1 s steps back."""
    window = (14 * 3600 + 45 * 60) - 10 * 3600
    gaps = rng.exponential(1.0, size=count)
    gaps[rng.random(count) < 0.25] = 0.0  # bursts: several rows in the same second
    offsets = np.floor(np.cumsum(gaps) / max(gaps.sum(), 1e-9) * (window - 1)).astype(np.int64)
    # SPEC §1.6-2: a few rows step back one second against the previous row.
    candidates = np.flatnonzero(np.diff(offsets) > 0) + 1
    candidates = candidates[(candidates > 1) & (candidates < count - 1)]
    for i in rng.choice(candidates, size=min(3, len(candidates)), replace=False):
        if offsets[i - 1] >= 1:
            offsets[i] = offsets[i - 1] - 1
    start = at + timedelta(hours=10)
    return [start + timedelta(seconds=int(s)) for s in offsets]


def _continuous_row(
    rng: np.random.Generator, stamp: datetime, bid: float, ask: float, tick: float
) -> list:
    """One continuous-session row: a BID/ASK snapshot or a print at or near the touch."""
    draw = rng.random()
    if draw < 0.38:
        size = 0 if rng.random() < 0.03 else _size(rng, bid, MEDIAN_QUOTE_NOTIONAL)
        return [stamp, "BID", bid, size]
    if draw < 0.76:
        size = 0 if rng.random() < 0.03 else _size(rng, ask, MEDIAN_QUOTE_NOTIONAL)
        return [stamp, "ASK", ask, size]
    level = bid if rng.random() < 0.5 else ask
    if rng.random() < 0.05:  # occasionally one tick through the touch
        level = round(level + tick * (1 if level == ask else -1), 3)
    return [stamp, "TRADE", max(level, tick), _size(rng, level, MEDIAN_TRADE_NOTIONAL)]


def _size(rng: np.random.Generator, price: float, median_notional: float) -> int:
    """A positive whole-share size whose notional is lognormal around `median_notional`."""
    notional = median_notional * float(np.exp(rng.normal(0.0, 0.8)))
    return max(1, int(round(notional / max(price, 0.001))))
