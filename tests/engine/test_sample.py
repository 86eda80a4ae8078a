"""The synthetic sample workbook: deterministic, Bloomberg layout, ADX-style day structure."""

from __future__ import annotations

from datetime import datetime, time

import numpy as np
import python_calamine as calamine

from engine.data.sample import write_sample_workbook
from engine.data.source import open_data
from engine.types import TRADE


def sheet_rows(path) -> dict[str, list[list]]:
    book = calamine.CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def test_same_arguments_give_the_same_cell_values(tmp_path):
    a = write_sample_workbook(tmp_path / "a.xlsx", sheets=2, rows_per_sheet=1500)
    b = write_sample_workbook(tmp_path / "b.xlsx", sheets=2, rows_per_sheet=1500)
    assert sheet_rows(a) == sheet_rows(b)
    c = write_sample_workbook(tmp_path / "c.xlsx", sheets=2, rows_per_sheet=1500, seed=8)
    assert sheet_rows(c) != sheet_rows(a)


def test_layout_and_day_structure(tmp_path):
    path = write_sample_workbook(tmp_path / "s.xlsx", sheets=2, days=3, rows_per_sheet=1500)
    sheets = sheet_rows(path)
    assert all(name.endswith(" UH Equity") for name in sheets)
    for name, rows in sheets.items():
        assert rows[0][0] == name and rows[2] == ["Dates", "Type", "Price", "Size"]
        data = rows[3:]
        assert len(data) == 1500
        dates = sorted({r[0].date() for r in data})
        assert len(dates) == 3
        for day in dates:
            at = [r for r in data if r[0].date() == day]
            opening = datetime.combine(day, time(9, 30))
            assert at[:2] == [[opening, "BID", 0.0, 0.0], [opening, "ASK", 0.0, 0.0]]
            uncross = [r for r in at if r[0] == datetime.combine(day, time(14, 55))]
            assert len(uncross) >= 3 and {r[1] for r in uncross} == {"TRADE"}
            assert len({r[2] for r in uncross}) == 1 and 0.0 in {r[3] for r in uncross}
            assert at[-1] == [datetime.combine(day, time(15)), "TRADE", uncross[0][2], 0.0]
            window = [r for r in at if time(10) <= r[0].time() < time(14, 45)]
            assert len(window) > 400
        stamps = np.array([r[0] for r in data], dtype="datetime64[s]")
        assert (np.diff(stamps).astype(int) == -1).any()  # rows stepping back one second
        assert (np.diff(stamps).astype(int) == 0).any()  # same-second rows


def test_sample_data_is_tradeable(tmp_path):
    path = write_sample_workbook(tmp_path / "s.xlsx", sheets=2, rows_per_sheet=1500)
    source = open_data(path)
    for security in source.securities:
        events, counts = source.load(security)
        assert counts.dropped_nonpositive_price == 6  # the 09:30 zero rows of 3 days
        quotes = events.kind != TRADE
        notional = events.price[quotes] * events.volume[quotes]
        assert np.mean(notional > 25_000) > 0.9  # above the default quote threshold
        assert (events.kind == TRADE).sum() > 300
