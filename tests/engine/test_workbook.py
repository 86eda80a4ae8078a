"""Bloomberg workbook reading (SPEC §1.1-1.5): layout, cell conversion, drops and bad input."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pytest
from openpyxl.cell import WriteOnlyCell
from workbooks import EMAAR, HEADER, SYNTHETIC, shared

from engine.data.workbook import (
    CACHE_SCHEMA,
    InputError,
    open_workbook,
    read_sheet,
    security_name,
    sheet_names,
)


class Serial(float):
    """A number written as a date-formatted cell: what Excel stores for a datetime."""


def write_book(path: Path, sheets: dict[str, list[list]]) -> Path:
    """A workbook whose sheets hold exactly the given rows (row 1 first)."""
    book = openpyxl.Workbook(write_only=True)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append([_cell(sheet, value) for value in row])
    book.save(path)
    return path


def _cell(sheet, value):
    if not isinstance(value, Serial):
        return value
    cell = WriteOnlyCell(sheet, value=float(value))
    cell.number_format = "yyyy-mm-dd hh:mm:ss"
    return cell


def bloomberg(name: str, data: list[list]) -> list[list]:
    """Rows of a sheet in the Bloomberg layout: ticker, free text, header, data."""
    return [[name], ["free text"], HEADER, *data]


def test_security_name_deletes_the_exchange_suffix():
    assert security_name("EMAAR UH Equity") == "EMAAR"
    assert security_name("DIB DH Equity") == "DIB"
    assert security_name("ADIB") == "ADIB"


def test_emaar_matches_an_openpyxl_read_of_the_same_sheet():
    path = shared(EMAAR)
    book = open_workbook(path)
    assert sheet_names(book) == ["EMAAR UH Equity"]
    read = read_sheet(book, "EMAAR UH Equity", path=path)
    assert (read.security, read.rows_read, read.table.num_rows) == ("EMAAR", 10_000, 10_000)
    assert read.table.schema == CACHE_SCHEMA
    stamps = read.table.column("timestamp").cast(pa.int64()).to_numpy()
    assert np.all(stamps % 1_000_000_000 == 0)  # exact whole seconds (SPEC §1.3-5)

    reference = openpyxl.load_workbook(path, read_only=True, data_only=True)["EMAAR UH Equity"]
    expected = list(reference.iter_rows(min_row=4, max_row=303, values_only=True))
    got = read.table.slice(0, 300).to_pylist()
    assert [(r["timestamp"], r["type"], r["price"], r["volume"]) for r in got] == [
        (ts, kind, float(price), int(size)) for ts, kind, price, size in expected
    ]


def test_synthetic_workbook_has_three_securities_of_5000_rows():
    path = shared(SYNTHETIC)
    book = open_workbook(path)
    names = sheet_names(book)
    assert [security_name(n) for n in names] == ["SECURITY_00", "SECURITY_01", "SECURITY_02"]
    for name in names:
        read = read_sheet(book, name, path=path)
        assert (read.rows_read, read.table.num_rows, read.dropped_rows) == (5000, 5000, ())


def test_messy_cells_are_converted_or_dropped_and_counted(tmp_path):
    serial = Serial(45761.395844907404)  # 09:30:01 with float noise
    data = [
        [datetime(2025, 4, 14, 9, 30, 1), "BID", 1.5, 10],  # sheet row 4
        [serial, "ASK", 1.6, 20],  # 5: a date serial, rounded to the millisecond
        [datetime(2025, 4, 14), " Bid ", "2.5", None],  # 6: midnight, text price, empty size
        [date(2025, 4, 14), "ASK", None, 5],  # 7: no price -> dropped_bad_price
        [time(9, 30), "ASK", 1.0, 5],  # 8: a bare time is not a timestamp
        ["2025-04-14 09:30:05", "TRADE", 3, "abc"],  # 9: text date, bad size -> dropped_bad_size
        [None, "BID", 1.0, 1],  # 10: no date
        [],  # 11: blank row inside the data
        [45761.4, "TRADE", 0.0, 0],  # 12: unformatted serial; zero price kept in the cache
        [datetime(2025, 4, 14, 9, 30, 2), "BID", "n/a", 1],  # 13: text price
        [None, None, None, None],  # trailing blank rows are not data
    ]
    path = write_book(tmp_path / "messy.xlsx", {"MESSY UH Equity": bloomberg("MESSY", data)})
    read = read_sheet(open_workbook(path), "MESSY UH Equity", path=path)
    assert read.rows_read == 10
    assert (read.dropped_bad_timestamp, read.dropped_bad_price, read.dropped_bad_size) == (3, 2, 1)
    assert read.dropped_rows == (7, 8, 9, 10, 11, 13)
    assert read.table.to_pylist() == [
        {"timestamp": datetime(2025, 4, 14, 9, 30, 1), "type": "BID", "price": 1.5, "volume": 10},
        {"timestamp": datetime(2025, 4, 14, 9, 30, 1), "type": "ASK", "price": 1.6, "volume": 20},
        {"timestamp": datetime(2025, 4, 14), "type": " Bid ", "price": 2.5, "volume": None},
        {"timestamp": datetime(2025, 4, 14, 9, 36), "type": "TRADE", "price": 0.0, "volume": 0},
    ]
    assert read.table.schema == CACHE_SCHEMA


def test_header_is_found_by_name_and_stripped(tmp_path):
    rows = [["X"], [], ["Size ", " Price", "Type", "Dates"], [3, 1.5, "BID", datetime(2025, 1, 2)]]
    path = write_book(tmp_path / "order.xlsx", {"X UH Equity": rows})
    read = read_sheet(open_workbook(path), "X UH Equity", path=path)
    assert read.table.to_pylist() == [
        {"timestamp": datetime(2025, 1, 2), "type": "BID", "price": 1.5, "volume": 3}
    ]


def test_a_sheet_without_the_header_names_sheet_row_and_fix(tmp_path):
    rows = [["Dates", "Type", "Price", "Size"], [datetime(2025, 1, 2), "BID", 1.0, 1]]
    path = write_book(tmp_path / "nohead.xlsx", {"NOHEAD UH Equity": rows})
    with pytest.raises(InputError) as error:
        read_sheet(open_workbook(path), "NOHEAD UH Equity", path=path)
    message = str(error.value)
    assert "nohead.xlsx" in message and "'NOHEAD UH Equity'" in message
    assert "row 3 must be the header Dates, Type, Price, Size" in message


def test_an_empty_sheet_is_an_input_error(tmp_path):
    path = write_book(tmp_path / "empty.xlsx", {"EMPTY UH Equity": []})
    with pytest.raises(InputError, match=r"sheet 'EMPTY UH Equity'.*the sheet is empty"):
        read_sheet(open_workbook(path), "EMPTY UH Equity", path=path)


def test_missing_and_non_xlsx_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_workbook(tmp_path / "absent.xlsx")
    fake = tmp_path / "fake.xlsx"
    fake.write_text("Dates,Type,Price,Size\n")
    with pytest.raises(InputError, match=r"not a valid \.xlsx file.*re-export"):
        open_workbook(fake)
    csv = tmp_path / "ticks.csv"
    csv.write_text("x")
    with pytest.raises(InputError, match=r"not an \.xlsx workbook"):
        open_workbook(csv)


def test_a_plain_number_among_datetimes_is_an_excel_serial_never_1970(tmp_path):
    data = [[datetime(2025, 4, 14, 9, 30), "BID", 1.0, 1], [45761.4, "ASK", 1.0, 1]]
    path = write_book(tmp_path / "serial.xlsx", {"S UH Equity": bloomberg("S", data)})
    read = read_sheet(open_workbook(path), "S UH Equity", path=path)
    assert read.table.column("timestamp").to_pylist() == [
        datetime(2025, 4, 14, 9, 30),
        datetime(2025, 4, 14, 9, 36),
    ]
