"""Tick tables back to Bloomberg workbooks: a workbook split into one workbook per trading day, as
a daily export would arrive in a drop folder (tests, demonstrations, re-exports).

Owns `write_workbook` (sheets of SPEC §1.4 tables in the SPEC §1.1 layout: row 1 the ticker,
row 2 free text, row 3 `Dates, Type, Price, Size`, data from row 4) and `split_workbook_by_day`.
Writing uses openpyxl's write-only mode (about 4,000 rows/s): keep these workbooks small.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import openpyxl
import pyarrow as pa

from engine.data.days import canonical, split_by_day
from engine.data.workbook import HEADER, open_workbook, read_sheet, sheet_names

Edit = Callable[[str, dt.date, pa.Table], pa.Table | None]


def write_workbook(path: str | Path, sheets: Mapping[str, pa.Table]) -> Path:
    """Write `sheets` (sheet name -> SPEC §1.4 table) as a Bloomberg-layout workbook."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook(write_only=True)
    for name, table in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append([name])
        sheet.append(["Exported by mmflow"])
        sheet.append(list(HEADER))
        columns = [table.column(c).to_pylist() for c in ("timestamp", "type", "price", "volume")]
        for row in zip(*columns, strict=True):
            sheet.append(list(row))
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        book.save(draft)
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return path


def read_workbook_tables(workbook: str | Path) -> dict[str, pa.Table]:
    """Sheet name -> its rows in the SPEC §1.4 schema (every sheet must be readable)."""
    book = open_workbook(workbook)
    return {
        sheet: canonical(read_sheet(book, sheet, path=workbook).table)
        for sheet in sheet_names(book)
    }


def split_workbook_by_day(
    workbook: str | Path, out_dir: str | Path, *, edit: Edit | None = None
) -> list[Path]:
    """One workbook per trading date, `<out_dir>/<workbook stem>_<date>.xlsx`, each with every
    sheet's rows of that date; `edit(sheet, date, table)` may change a day's table (or return
    None to leave that sheet out of that day)."""
    by_date: dict[dt.date, dict[str, pa.Table]] = {}
    for sheet, table in read_workbook_tables(workbook).items():
        for day, rows in split_by_day(table):
            rows = edit(sheet, day, rows) if edit is not None else rows
            if rows is not None:
                by_date.setdefault(day, {})[sheet] = rows
    stem = Path(workbook).stem
    return [
        write_workbook(Path(out_dir) / f"{stem}_{day.isoformat()}.xlsx", sheets)
        for day, sheets in sorted(by_date.items())
    ]
