"""Bloomberg workbook reading: sheet discovery, the row-3 header, and cell conversion (SPEC §1.1-1.5).

Owns turning one worksheet into an Arrow table in the Parquet cache schema of SPEC §1.4
(`timestamp, type, price, volume`), with the rows that break a number rule (`engine.data.rules`)
dropped and counted; rows with Price <= 0 stay (SPEC §1.4-3) for `normalise` to drop. Reading uses
python-calamine (openpyxl is ~30x slower and is used only for writing), after `engine.data.bounds`
has checked that the workbook and the sheet fit in memory. Type validation and the rest of
SPEC §1.3 happen later, in `engine.data.normalise`.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import python_calamine as calamine

from engine.data import rules
from engine.data.bounds import check_sheet, check_workbook
from engine.data.errors import InputError
from engine.settings import max_sheet_cells

# SPEC §1.1-2: row 1 label, row 2 free text, row 3 header, data from row 4.
HEADER_ROW = 3
FIRST_DATA_ROW = HEADER_ROW + 1
HEADER = ("Dates", "Type", "Price", "Size")
# SPEC §1.5-1: a sheet's security is its name without these suffixes.
SHEET_SUFFIXES = (" UH Equity", " DH Equity")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")

# SPEC §1.4-2: the Parquet cache schema (volume may be null when a Size cell is empty).
CACHE_SCHEMA = pa.schema(
    [
        ("timestamp", pa.timestamp("ns")),
        ("type", pa.string()),
        ("price", pa.float64()),
        ("volume", pa.int64()),
    ]
)

_EXCEL_EPOCH = datetime(1899, 12, 30)
_MAX_EXCEL_SERIAL = 2_958_466  # 9999-12-31
_NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class SheetTable:
    """One worksheet read into the SPEC §1.4 schema, with the counts of the rows it dropped."""

    sheet: str
    security: str
    table: pa.Table  # CACHE_SCHEMA (volume float64 only if a Size is not a whole number)
    rows_read: int  # data rows below the header (trailing blank rows excluded)
    dropped_bad_timestamp: int
    dropped_bad_price: int
    dropped_rows: tuple[int, ...]  # 1-based sheet row numbers of the dropped rows
    dropped_nonfinite_price: int = 0
    dropped_bad_size: int = 0


def security_name(sheet: str) -> str:
    """Security of a sheet: its name without ` UH Equity` / ` DH Equity` (SPEC §1.5-1); may be
    empty (`sheet_security` refuses that)."""
    for suffix in SHEET_SUFFIXES:
        sheet = sheet.replace(suffix, "")
    return sheet.strip()


def sheet_security(sheet: str, path: str | Path) -> str:
    """The security of a sheet, or an InputError naming the sheet when nothing is left of it."""
    security = security_name(sheet)
    if not security:
        raise InputError(
            f"workbook {path}, sheet {sheet!r}: the sheet name gives no security once "
            f"{' / '.join(repr(s) for s in SHEET_SUFFIXES)} is removed; rename the sheet to "
            "'<TICKER> UH Equity' (SPEC §1.5)"
        )
    return security


def open_workbook(path: str | Path) -> calamine.CalamineWorkbook:
    """Open a workbook with calamine, turning every failure into an InputError that says what to do."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"workbook {path} not found: check the path (expected a Bloomberg .xlsx export)"
        )
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a workbook: pass the .xlsx file itself")
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        raise InputError(
            f"{path} is not an .xlsx workbook: save it from Excel as .xlsx and try again"
        )
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"workbook {path} is not a valid .xlsx file (not a zip archive): it may be corrupt, "
            "still downloading, or another format renamed to .xlsx; re-export it from Excel as .xlsx"
        )
    check_workbook(path)  # calamine aborts the process on some files: refuse those first
    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except BaseException as exc:
        if not isinstance(exc, (calamine.CalamineError, OSError)) and not _is_panic(exc):
            raise
        raise InputError(
            f"workbook {path} could not be opened ({type(exc).__name__}: {exc}); "
            "re-export it from Excel as .xlsx (not password-protected)"
        ) from exc


def sheet_names(workbook: calamine.CalamineWorkbook) -> list[str]:
    """Worksheet names in workbook order (chart sheets excluded), SPEC §1.2-1."""
    return [
        meta.name
        for meta in workbook.sheets_metadata
        if meta.typ == calamine.SheetTypeEnum.WorkSheet
    ]


def read_sheet(
    workbook: calamine.CalamineWorkbook,
    sheet: str,
    *,
    path: str | Path,
    max_cells: int | None = None,
) -> SheetTable:
    """Read one sheet in the Bloomberg layout into the SPEC §1.4 schema, dropping the rows that
    break a number rule; a sheet over `max_cells` (default $MMFLOW_MAX_SHEET_CELLS) is refused."""
    where = f"workbook {path}, sheet {sheet!r}"
    security = sheet_security(sheet, path)
    check_sheet(path, sheet, max_sheet_cells(max_cells))
    rows, top = _sheet_rows(workbook, sheet, where)
    columns = _header_columns(rows, top, where)
    data = rows[HEADER_ROW - top :]
    n = len(data)
    timestamp_ns = _dates_ns([row[columns[0]] for row in data])
    price, price_status = rules.cell_numbers([row[columns[2]] for row in data])
    volume, volume_status = rules.cell_numbers([row[columns[3]] for row in data])
    types = _strings([row[columns[1]] for row in data])

    reason = rules.drop_reasons(
        timestamp_ns != np.iinfo(np.int64).min, price, price_status, volume, volume_status
    )
    # SPEC §1.4-3: Price <= 0 stays in the cache (normalise drops it); its Size is not judged.
    nonpositive = reason == rules.NONPOSITIVE_PRICE
    with np.errstate(invalid="ignore"):
        sized = np.isfinite(volume) & (volume >= 0) & (volume <= rules.MAX_SIZE)
    volume[nonpositive & ~sized] = np.nan
    keep = (reason == rules.KEEP) | nonpositive
    counts = rules.count_reasons(np.where(nonpositive, rules.KEEP, reason).astype(np.int8))
    table = pa.table(
        {
            "timestamp": pa.array(timestamp_ns[keep], type=pa.int64()).cast(pa.timestamp("ns")),
            "type": types.filter(pa.array(keep)),
            "price": pa.array(price[keep], type=pa.float64()),
            "volume": _volume_array(volume[keep]),
        }
    )
    return SheetTable(
        sheet=sheet,
        security=security,
        table=table,
        rows_read=n,
        dropped_bad_timestamp=counts["dropped_bad_timestamp"],
        dropped_bad_price=counts["dropped_bad_price"],
        dropped_rows=tuple(int(r) for r in np.flatnonzero(~keep) + FIRST_DATA_ROW),
        dropped_nonfinite_price=counts["dropped_nonfinite_price"],
        dropped_bad_size=counts["dropped_bad_size"],
    )


def _sheet_rows(workbook: calamine.CalamineWorkbook, sheet: str, where: str) -> tuple[list, int]:
    """The sheet's rows from its first non-empty row, and that row's 0-based index."""
    try:
        grid = workbook.get_sheet_by_name(sheet)
        rows = grid.to_python()  # from the first non-empty cell: no dense copy from A1
        top, left = grid.start or (0, 0)
    except BaseException as exc:
        if not isinstance(exc, calamine.CalamineError) and not _is_panic(exc):
            raise
        raise InputError(f"{where}: could not be read ({type(exc).__name__}: {exc})") from None
    if left:  # keep column positions as in the sheet, so the header finds its columns
        rows = [[""] * left + row for row in rows]
    while rows and all(cell == "" for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise InputError(
            f"{where}: the sheet is empty; expected row 1 ticker, row 2 free text, "
            "row 3 header Dates, Type, Price, Size and data from row 4 (or leave the sheet out)"
        )
    return rows, top


def _is_panic(exc: BaseException) -> bool:
    """A Rust panic inside calamine (pyo3's PanicException derives from BaseException)."""
    return type(exc).__name__ == "PanicException"


def _header_columns(rows: list[list], top: int, where: str) -> tuple[int, int, int, int]:
    """Column indices of Dates, Type, Price, Size in the row-3 header (strings stripped, SPEC §1.2-2);
    `rows[0]` is sheet row `top + 1`."""
    at = HEADER_ROW - 1 - top
    header = [str(cell).strip() for cell in rows[at]] if 0 <= at < len(rows) else []
    lowered = [name.lower() for name in header]
    missing = [name for name in HEADER if name.lower() not in lowered]
    if missing:
        found = [name for name in header if name]
        raise InputError(
            f"{where}: row {HEADER_ROW} must be the header Dates, Type, Price, Size but "
            f"{'is ' + repr(found) if found else 'is empty'} (missing {', '.join(missing)}); "
            "export the sheet in the Bloomberg layout (row 1 ticker, row 2 free text, "
            "row 3 header, data from row 4)"
        )
    return tuple(lowered.index(name.lower()) for name in HEADER)  # type: ignore[return-value]


def _dates_ns(values: list) -> np.ndarray:
    """Dates cells to int64 ns, int64-min where unreadable, rounded to the millisecond (SPEC §1.3-5)."""
    # Fast path only for datetimes (calamine rounds them to the millisecond already): Arrow would
    # take a number as microseconds since 1970, where Excel means days since 1899-12-30.
    if set(map(type, values)) <= {datetime}:
        arr = pa.array(values, type=pa.timestamp("us"))
    else:
        arr = _dates_slow(values)
    micros = arr.cast(pa.int64()).fill_null(np.iinfo(np.int64).min).to_numpy().copy()
    # Years past 2262 do not fit int64 nanoseconds: unreadable, never wrapped round to 1970.
    nat = np.iinfo(np.int64).min
    good = (micros != nat) & (np.abs(micros) < np.iinfo(np.int64).max // 1000 - 1000)
    # openpyxl rounds Excel serials to the millisecond; a whole-second stamp comes out exact.
    micros[good] = (micros[good] + 500) // 1000 * 1000
    out = np.full(len(values), np.iinfo(np.int64).min, dtype=np.int64)
    out[good] = micros[good] * 1000
    return out


def _dates_slow(values: list) -> pa.Array:
    """Mixed Dates cells: datetimes, dates, Excel serial numbers and text; anything else is null."""
    cells: list[datetime | None] = [None] * len(values)
    text_at: list[int] = []
    for i, value in enumerate(values):
        kind = type(value)
        if kind is datetime:
            cells[i] = value
        elif kind is date:  # calamine returns a date for a stamp at exactly midnight
            cells[i] = datetime(value.year, value.month, value.day)
        elif kind in (float, int) and 1 <= value < _MAX_EXCEL_SERIAL:  # unformatted serial
            cells[i] = _EXCEL_EPOCH + timedelta(milliseconds=round(value * 86_400_000))
        elif kind is str and value.strip():
            text_at.append(i)
    if text_at:
        parsed = pd.to_datetime(
            pd.Series([values[i].strip() for i in text_at], dtype=object),
            errors="coerce",
            format="mixed",
        )
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        for i, stamp in zip(text_at, parsed, strict=True):
            cells[i] = None if pd.isna(stamp) else stamp.to_pydatetime()
    return pa.array(cells, type=pa.timestamp("us"))


def _strings(values: list) -> pa.Array:
    """Type cells as strings exactly as in Excel; empty cells become null (SPEC §1.2-2)."""
    cells = [None if v == "" or v is None else v if type(v) is str else str(v) for v in values]
    return pa.array(cells, type=pa.string())


def _volume_array(volume: np.ndarray) -> pa.Array:
    """Sizes as int64 with nulls for empty cells; float64 only if some Size is not a whole number."""
    missing = np.isnan(volume)
    finite = volume[~missing]
    if finite.size and not (np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 2**53)):
        return pa.array(volume, type=pa.float64(), from_pandas=True)
    whole = np.where(missing, 0, volume).astype(np.int64)
    return pa.array(whole, type=pa.int64(), mask=missing)
