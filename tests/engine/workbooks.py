"""Shared test data for the data-reading tests: the shared files (skipped when absent) and small
Bloomberg-layout workbooks written on the spot."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
PARQUET = SHARED / "data" / "parquet"
EMAAR = SHARED / "data" / "xlsx" / "EMAAR_10k.xlsx"
SYNTHETIC = SHARED / "data" / "xlsx" / "Synthetic_3x5k.xlsx"
HEADER = ["Dates", "Type", "Price", "Size"]
T0 = datetime(2025, 4, 14, 10)


def shared(path: Path) -> Path:
    """`path` in the shared data; skip the test when it is not there."""
    if not path.exists():
        pytest.skip(f"shared data {path} not present")
    return path


def ticks(n: int, price: float = 1.0, size: int = 10) -> list[list]:
    """`n` data rows a second apart from T0, cycling BID, ASK, TRADE at one price and size."""
    return [
        [T0 + timedelta(seconds=i), ("BID", "ASK", "TRADE")[i % 3], price, size] for i in range(n)
    ]


def bloomberg_book(path: Path, sheets: dict[str, list[list] | None]) -> Path:
    """A workbook in the Bloomberg layout, one sheet `<security> UH Equity` per entry: ticker, free
    text, header and the entry's data rows; an entry of None gets a wrong header and no rows."""
    book = openpyxl.Workbook(write_only=True)
    for security, data in sheets.items():
        sheet = book.create_sheet(f"{security} UH Equity")
        sheet.append([f"{security} UH Equity"])
        sheet.append(["free text"])
        sheet.append(HEADER if data is not None else ["nothing here"])
        for row in data or []:
            sheet.append(row)
    book.save(path)
    return path
