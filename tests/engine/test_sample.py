"""The synthetic sample workbook: deterministic, Bloomberg layout, ADX-style day structure."""

from __future__ import annotations

import zipfile
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


def test_same_arguments_give_the_same_bytes(tmp_path):
    """Fixed zip entry times and document dates: a regenerated sample is not a change."""
    written = []
    a = write_sample_workbook(
        tmp_path / "a.xlsx", sheets=2, days=1, rows_per_sheet=100, on_rows=written.append
    )
    b = write_sample_workbook(tmp_path / "b.xlsx", sheets=2, days=1, rows_per_sheet=100)
    assert a.read_bytes() == b.read_bytes()
    assert sum(written) == 200
    with zipfile.ZipFile(a) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert core.count("2025-01-01T00:00:00Z") == 2  # created and modified, not the wall clock
    assert not list(tmp_path.glob(".*.tmp"))


def test_mmflow_sample_refuses_to_overwrite_the_bundled_sample(tmp_path, monkeypatch, capsys):
    from mmflow.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    bundled = tmp_path / "data" / "sample.xlsx"
    bundled.write_bytes(b"tracked bytes")
    small = ["--sheets", "1", "--days", "1", "--rows", "100"]
    assert main(["sample", *small]) == 2
    assert bundled.read_bytes() == b"tracked bytes"
    assert "pass --force" in capsys.readouterr().err
    assert main(["sample", *small, "--force"]) == 0 and zipfile.is_zipfile(bundled)
    assert main(["sample", *small, "--out", "elsewhere.xlsx"]) == 0
    assert (tmp_path / "elsewhere.xlsx").read_bytes() == bundled.read_bytes()
    capsys.readouterr()


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
    source = open_data(path, cache_dir=tmp_path / "cache")
    for security in source.securities:
        events, counts = source.load(security)
        assert counts.dropped_nonpositive_price == 6  # the 09:30 zero rows of 3 days
        quotes = events.kind != TRADE
        notional = events.price[quotes] * events.volume[quotes]
        assert np.mean(notional > 25_000) > 0.9  # above the default quote threshold
        assert (events.kind == TRADE).sum() > 300
