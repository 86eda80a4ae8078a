"""open_data / DataSource.load / normalise: SPEC §1.3 row normalisation and bad-input messages."""

from __future__ import annotations

import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from workbooks import EMAAR, PARQUET, T0, bloomberg_book, shared, ticks

from engine.data.source import InputError, normalise, open_data
from engine.data.workbook import open_workbook, read_sheet
from engine.types import ASK, BID, TRADE, Events, RowCounts


@pytest.fixture(autouse=True)
def parquet_cache(tmp_path, monkeypatch) -> Path:
    """Every workbook's Parquet cache goes under this test's folder."""
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "parquet-cache"))
    return tmp_path / "parquet-cache"


def tick_table(timestamp, type, price, volume) -> pa.Table:
    """A table of the normalised columns; `timestamp` as nanoseconds unless an Arrow array."""
    if not isinstance(timestamp, pa.Array):
        timestamp = pa.array(timestamp, type=pa.timestamp("ns"))
    return pa.table({"timestamp": timestamp, "type": type, "price": price, "volume": volume})


def row_counts(read: int, kept: int, **dropped: int) -> RowCounts:
    """RowCounts of `read` rows, `kept` kept, `dropped` by rule (bad_price=1: dropped_bad_price)."""
    by_rule = {f"dropped_{rule}": n for rule, n in dropped.items()}
    return RowCounts(rows_read=read, rows_kept=kept, **by_rule)


def reference_normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """SPEC §1.3 written the reference's pandas way, as the oracle."""
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(frame["timestamp"], errors="coerce"),
            "type": frame["type"].astype(str).str.lower().str.strip(),
            "price": pd.to_numeric(frame["price"], errors="coerce"),
            "volume": pd.to_numeric(frame["volume"], errors="coerce"),
        }
    )
    out = out.dropna(subset=["timestamp", "price"])
    return out[out["price"] > 0].reset_index(drop=True)


def assert_events_equal(a: Events, b: Events) -> None:
    for name, x, y in zip(Events._fields, a, b, strict=True):
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("security", ["SPINNEYS", "MODON"])
def test_parquet_load_equals_the_reference_pandas_normalisation(security):
    source = open_data(shared(PARQUET), securities=[security])
    events, counts = source.load(security)
    expected = reference_normalise(pd.read_parquet(PARQUET / f"{security.lower()}.parquet"))
    assert counts.rows_read == len(pd.read_parquet(PARQUET / f"{security.lower()}.parquet"))
    assert counts.rows_kept == len(expected) == len(events)
    assert counts.dropped_nonpositive_price == counts.rows_read - counts.rows_kept
    np.testing.assert_array_equal(
        events.timestamp_ns, expected["timestamp"].to_numpy("M8[ns]").view("i8")
    )
    kinds = expected["type"].map({"bid": BID, "ask": ASK, "trade": TRADE}).to_numpy(np.int8)
    np.testing.assert_array_equal(events.kind, kinds)
    np.testing.assert_array_equal(events.price, expected["price"].to_numpy())
    np.testing.assert_array_equal(events.volume, expected["volume"].to_numpy(np.float64))
    assert all(a.flags.writeable and a.flags.c_contiguous for a in events)


def test_parquet_folder_and_file_sources():
    folder = open_data(shared(PARQUET))
    assert folder.kind == "parquet-dir"
    assert folder.securities == tuple(sorted(p.stem.upper() for p in PARQUET.glob("*.parquet")))
    assert len(folder.content_hash) == 64
    assert open_data(PARQUET, max_sheets=2).securities == folder.securities[:2]
    single = open_data(PARQUET / "spinneys.parquet")
    assert (single.kind, single.securities) == ("parquet-file", ("SPINNEYS",))
    assert single.load("SPINNEYS")[1].rows_read == 51_465


def test_unknown_security_suggests_the_closest_names():
    with pytest.raises(InputError, match=r"unknown security 'SPINNEY'.*Did you mean 'SPINNEYS'"):
        open_data(shared(PARQUET), securities=["SPINNEY"])
    source = open_data(PARQUET, securities=["MODON"])
    with pytest.raises(InputError, match="Available: MODON"):
        source.load("ADIB")


def test_workbook_through_the_cache_equals_a_direct_read(tmp_path):
    workbook = Path(shutil.copy(shared(EMAAR), tmp_path / "emaar.xlsx"))
    source = open_data(workbook)
    assert (source.kind, source.securities) == ("xlsx", ("EMAAR",))
    events, counts = source.load("EMAAR")
    direct = read_sheet(open_workbook(workbook), "EMAAR UH Equity", path=workbook)
    direct_events, direct_counts = normalise(direct.table)
    assert_events_equal(events, direct_events)
    assert counts == direct_counts
    assert counts.rows_read == 10_000 and counts.rows_kept < 10_000
    again = open_data(workbook)  # reuses the cache
    assert again.content_hash == source.content_hash
    assert_events_equal(again.load("EMAAR")[0], events)


def test_workbook_counts_include_the_rows_the_cache_dropped(tmp_path):
    data = ticks(4) + [[None, "BID", 1.0, 1], [T0, "ASK", "x", 1], [T0, "TRADE", 0.0, 0]]
    workbook = bloomberg_book(tmp_path / "book.xlsx", {"AAA": data})
    events, counts = open_data(workbook, cache_dir=tmp_path / "cache").load("AAA")
    assert counts == row_counts(7, 4, bad_timestamp=1, bad_price=1, nonpositive_price=1)
    assert events.kind.tolist() == [BID, ASK, TRADE, BID]


def test_normalise_drops_and_keeps_exactly_per_spec():
    table = tick_table(
        [T0, T0, None, T0, T0, T0, T0, T0],
        [" Bid ", "ASK", "BID", "trade", "BID", "TRADE", "ask", "Trade"],
        [10.0, 10.1, 10.0, 0.0, None, 10.05, -1.0, 10.1],
        pa.array([0, 5, 1, 1, 1, None, 1, 7], type=pa.int64()),
    )
    events, counts = normalise(table)
    assert counts == row_counts(8, 4, bad_timestamp=1, bad_price=1, nonpositive_price=2)
    assert events.kind.tolist() == [BID, ASK, TRADE, TRADE]
    assert events.price.tolist() == [10.0, 10.1, 10.05, 10.1]
    np.testing.assert_array_equal(events.volume, [0.0, 5.0, np.nan, 7.0])  # zero and NaN kept
    assert events.timestamp_ns.tolist() == [pd.Timestamp(T0).value] * 4
    assert [a.dtype for a in events] == [np.int64, np.int8, np.float64, np.float64]


def test_normalise_accepts_raw_bloomberg_columns_in_pandas():
    frame = pd.DataFrame(
        {
            "Dates": ["2025-04-14 10:00:00", "not a date", "2025-04-14 10:00:02"],
            " Type ": ["ASK", "BID", " trade"],
            "Price": ["1.5", "2", "abc"],
            "Size": [100, 200, None],
        }
    )
    events, counts = normalise(frame)
    assert (counts.rows_read, counts.dropped_bad_timestamp, counts.dropped_bad_price) == (3, 1, 1)
    assert events.kind.tolist() == [ASK] and events.volume.tolist() == [100.0]


def test_unknown_type_names_sheet_row_and_values(tmp_path):
    data = [[None, "BID", 1.0, 1]] + ticks(3) + [[T0, "QUOTE", 1.0, 1], [T0, "bidx", 1.0, 1]]
    workbook = bloomberg_book(tmp_path / "book.xlsx", {"AAA": data})
    source = open_data(workbook)
    with pytest.raises(InputError) as error:
        source.load("AAA")
    message = str(error.value)
    assert "book.xlsx" in message and "sheet 'AAA UH Equity'" in message
    assert "first at sheet row 8" in message and "['QUOTE', 'bidx']" in message
    assert "correct or delete those rows" in message


def test_unknown_type_in_parquet_names_the_row_index(tmp_path):
    table = tick_table([T0] * 3, ["BID", "ASK", "HALT"], [1.0, 1.0, 1.0], [1, 1, 1])
    pq.write_table(table, tmp_path / "xyz.parquet")
    with pytest.raises(InputError, match=r"xyz\.parquet \(security XYZ\).*\['HALT'\].*row 2"):
        open_data(tmp_path).load("XYZ")


def test_a_sheet_without_usable_rows_is_an_input_error(tmp_path):
    data = [[None, "BID", 1.0, 1], [T0, "BID", 0.0, 0]]
    workbook = bloomberg_book(tmp_path / "book.xlsx", {"AAA": data, "EMPTY": []})
    source = open_data(workbook)
    with pytest.raises(InputError, match=r"no usable rows \(2 read: 1 with unreadable Dates"):
        source.load("AAA")
    with pytest.raises(InputError, match="no usable rows"):
        source.load("EMPTY")


def test_bad_sheets_fail_alone_so_the_others_can_run(tmp_path):
    workbook = bloomberg_book(tmp_path / "book.xlsx", {"GOOD": ticks(6), "NOHEAD": None})
    source = open_data(workbook)
    assert source.securities == ("GOOD", "NOHEAD")
    assert source.load("GOOD")[1].rows_kept == 6
    with pytest.raises(InputError, match=r"sheet 'NOHEAD UH Equity': row 3 must be the header"):
        source.load("NOHEAD")


def test_selection_by_name_keeps_workbook_order(tmp_path):
    workbook = bloomberg_book(
        tmp_path / "book.xlsx", {"AAA": ticks(3), "BBB": ticks(3), "CCC": ticks(3)}
    )
    assert open_data(workbook, securities=["CCC", "AAA UH Equity"]).securities == ("AAA", "CCC")
    assert open_data(workbook, max_sheets=2).securities == ("AAA", "BBB")
    with pytest.raises(InputError, match=r"Did you mean 'BBB'"):
        open_data(workbook, securities=["BBX"])


def test_bad_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_data(tmp_path / "missing.xlsx")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="unsupported file type '.txt'"):
        open_data(text)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("hello")
    with pytest.raises(InputError, match=r"not a valid \.xlsx file"):
        open_data(fake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.parquet files"):
        open_data(tmp_path / "empty")


# --- the number rules (engine.data.rules): every bad value is decided and counted once ---------

INF, NAN = float("inf"), float("nan")


def test_every_number_rule_is_applied_and_counted_once():
    rows = [  # (timestamp, type, price, size) -> rule
        (T0, "BID", 10.0, 5.0),  # kept
        (T0, "ASK", INF, 5.0),  # non-finite price
        (T0, "BID", -INF, 5.0),  # non-finite, not "<= 0"
        (T0, "BID", NAN, 5.0),  # a NaN value (not a null): non-finite
        (T0, "BID", 2e9, 5.0),  # absurd price
        (T0, "BID", 0.0, -1.0),  # price <= 0 comes before the size rule
        (None, "BID", INF, 5.0),  # Dates first
        (T0, "BID", None, 5.0),  # empty price
        (T0, "TRADE", 10.0, None),  # empty size: kept, volume NaN (SPEC §1.3-3)
        (T0, "TRADE", 10.0, 0.0),  # zero size: kept
        (T0, "BID", 10.0, NAN),  # NaN size
        (T0, "BID", 10.0, -1.0),  # negative size
        (T0, "BID", 10.0, INF),  # infinite size
        (T0, "BID", 10.0, 2e12),  # absurd size
    ]
    columns = list(zip(*rows, strict=True))
    table = tick_table(
        columns[0],
        list(columns[1]),
        pa.array(columns[2], type=pa.float64()),
        pa.array(columns[3], type=pa.float64()),
    )
    events, counts = normalise(table)
    assert counts == row_counts(
        14, 3, bad_timestamp=1, bad_price=1, nonfinite_price=4, nonpositive_price=1, bad_size=4
    )
    assert events.price.tolist() == [10.0, 10.0, 10.0]
    np.testing.assert_array_equal(events.volume, [5.0, np.nan, 0.0])


def test_booleans_and_text_are_never_read_as_numbers():
    def table(price, volume) -> pa.Table:
        return tick_table(pa.array([T0] * 4), ["BID"] * 4, price, volume)

    _, counts = normalise(table(pa.array([True, False, True, None]), [1, 1, 1, 1]))
    assert counts.dropped_bad_price == 4 and counts.rows_kept == 0
    _, counts = normalise(table([1.0] * 4, pa.array([True, False, None, True])))
    assert (counts.dropped_bad_size, counts.rows_kept) == (3, 1)  # the null size is kept
    events, counts = normalise(table([1.0] * 4, ["5", " ", "abc", "TRUE"]))
    assert (counts.dropped_bad_size, counts.rows_kept) == (2, 2)
    np.testing.assert_array_equal(events.volume, [5.0, np.nan])
    frame = pd.DataFrame(
        {"Dates": [T0] * 3, "Type": ["BID"] * 3, "Price": [1.0, True, "2"], "Size": [1, 2, 3]}
    )
    events, counts = normalise(frame)
    assert counts.dropped_bad_price == 1 and events.price.tolist() == [1.0, 2.0]


def test_hostile_numbers_in_a_workbook_are_counted_and_the_backtest_runs(tmp_path):
    from engine.runner import run_backtest

    good = ticks(30, price=10.0)
    bad = [
        [T0, "TRADE", "inf", 10],  # text inf: non-finite
        [T0, "TRADE", 777.0, 10],  # becomes <v>inf</v> below: a numeric inf cell
        [T0, "TRADE", True, 10],  # a boolean price
        [T0, "TRADE", 1e10, 10],  # absurd
        [T0, "BID", 10.0, True],  # a boolean size
        [T0, "BID", 10.0, -5],  # negative size
        [T0, "BID", 10.0, "lots"],  # text size
        [T0, "BID", 10.0, None],  # empty size: kept
    ]
    workbook = bloomberg_book(tmp_path / "book.xlsx", {"AAA": good + bad})
    with zipfile.ZipFile(workbook) as old:
        parts = {info.filename: old.read(info) for info in old.infolist()}
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(
        b"<v>777</v>", b"<v>inf</v>"
    )
    with zipfile.ZipFile(workbook, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in parts.items():
            new.writestr(name, data)
    events, counts = open_data(workbook).load("AAA")
    assert counts == row_counts(38, 31, bad_price=1, nonfinite_price=3, bad_size=3)
    assert np.isfinite(events.price).all()
    run = run_backtest(workbook, "v1_baseline")
    assert not run.failures and np.isfinite(run.results[0].summary["realized_pnl"])


def test_numeric_timestamps_are_refused_naming_the_column(tmp_path):
    stamps = pa.array([1_713_088_800] * 3, type=pa.int64())
    table = tick_table(stamps, ["BID", "ASK", "TRADE"], [1.0, 1.0, 1.0], [1, 1, 1])
    pq.write_table(table, tmp_path / "abc.parquet")
    with pytest.raises(InputError, match=r"abc\.parquet.*column 'timestamp' holds int64, not date"):
        open_data(tmp_path).load("ABC")
    frame = pd.DataFrame({"Dates": [1_713_088_800], "Type": ["BID"], "Price": [1.0], "Size": [1]})
    with pytest.raises(InputError, match=r"column 'Dates' holds int64.*unit='s'"):
        normalise(frame)
    mixed = pd.DataFrame({"Dates": [T0, 5], "Type": ["BID"] * 2, "Price": [1.0] * 2})
    with pytest.raises(InputError, match="column 'Dates' holds numbers"):
        normalise(mixed)


def test_timestamps_are_read_by_their_declared_unit_and_never_wrap():
    far = datetime(9999, 1, 1)  # beyond int64 nanoseconds (2262): unreadable, not wrapped
    for kind in (pa.timestamp("s"), pa.timestamp("ms"), pa.timestamp("us"), pa.date32()):
        stamps = [T0, far] if kind != pa.date32() else [T0.date(), far.date()]
        events, counts = normalise(
            tick_table(pa.array(stamps, type=kind), ["BID"] * 2, [1.0] * 2, [1] * 2)
        )
        expected = pd.Timestamp(T0 if kind != pa.date32() else T0.date()).value
        assert events.timestamp_ns.tolist() == [expected], kind
        assert counts.dropped_bad_timestamp == 1
