"""The tick history: ingest of a drop folder (repeats skipped, overlaps revised, bad files
recorded, crash-safe), and the history as a data source that gives the same results as one
workbook holding the same rows.

The data is the synthetic sample split by day, as daily exports would arrive: three sheets,
three trading days (2025-04-14 .. 2025-04-16), one workbook per day.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from engine.data.days import read_marker
from engine.data.export import read_workbook_tables, split_workbook_by_day, write_workbook
from engine.data.history import ingest
from engine.data.sample import write_sample_workbook
from engine.data.source import InputError, open_data
from engine.results.store import query
from engine.runner import run_backtest
from mmflow.cli import main

DAY1, DAY2, DAY3 = dt.date(2025, 4, 14), dt.date(2025, 4, 15), dt.date(2025, 4, 16)
SECURITIES = ("FALCONRE", "OASISBK", "DUNEGAS")
STRATEGY = "v2_price_follow_qty_cooldown"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The 3-sheet, 3-day sample workbook."""
    folder = tmp_path_factory.mktemp("sample")
    return write_sample_workbook(folder / "ticks.xlsx", sheets=3, days=3, rows_per_sheet=1500)


@pytest.fixture(scope="module")
def daily(sample, tmp_path_factory) -> list[Path]:
    """The sample as three daily exports, ticks_2025-04-14.xlsx .. ticks_2025-04-16.xlsx."""
    return split_workbook_by_day(sample, tmp_path_factory.mktemp("daily"))


def drop_with(folder: Path, *files: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for file in files:
        shutil.copy(file, folder)
    return folder


def revised(sample: Path, out: Path, day: dt.date, change) -> Path:
    """A re-export of one day of the sample, `change(sheet, table)` applied to each sheet."""
    return split_workbook_by_day(
        sample, out, edit=lambda sheet, d, table: change(sheet, table) if d == day else None
    )[0]


def bump_first_trade(table: pa.Table) -> pa.Table:
    """The first TRADE print two ticks higher: a changed price in a re-export."""
    row = pc.index(table.column("type"), "TRADE").as_py()
    prices = table.column("price").to_pylist()
    prices[row] = round(prices[row] + 0.02, 3)
    return table.set_column(2, "price", pa.array(prices))


def catalog(store: Path, sql: str) -> list[tuple]:
    return [tuple(r) for r in query(store, sql).itertuples(index=False)]


# ---- ingest -------------------------------------------------------------------------------------


def test_ingest_splits_each_security_by_day_and_catalogues_files_and_days(daily, tmp_path):
    drop, history, store = drop_with(tmp_path / "drop", *daily[:2]), tmp_path / "h", tmp_path / "s"
    report = ingest(drop, history, store)
    assert [f.status for f in report.files] == ["ingested", "ingested"]
    assert [(f.days_new, f.first_date, f.last_date) for f in report.files] == [
        (3, DAY1, DAY1),
        (3, DAY2, DAY2),
    ]
    marker = read_marker(history)
    assert list(marker.securities) == list(SECURITIES)
    assert (history / "security=FALCONRE" / "date=2025-04-15" / "part.parquet").is_file()
    assert catalog(
        store, "SELECT count(*), count(DISTINCT security), max(revision) FROM history_days"
    ) == [(6, 3, 1)]

    drop_with(drop, daily[2])  # the next day arrives; the first two are skipped by hash
    report = ingest(drop, history, store)
    assert [f.status for f in report.files] == ["skipped", "skipped", "ingested"]
    source = open_data(history)
    assert source.kind == "history" and source.securities == SECURITIES
    assert sorted({day for _, day in source.day_hashes()}) == [DAY1, DAY2, DAY3]
    files = catalog(store, "SELECT status, sheets, days_new FROM ingested_files ORDER BY path")
    assert files == [("ingested", 3, 3)] * 3


def test_a_run_over_the_history_equals_a_run_over_the_workbook(sample, daily, tmp_path):
    drop = drop_with(tmp_path / "drop", *daily)
    ingest(drop, tmp_path / "h", tmp_path / "s")
    over_history = run_backtest(tmp_path / "h", STRATEGY)
    over_workbook = run_backtest(sample, STRATEGY)
    assert [r.security for r in over_history.results] == list(SECURITIES)
    for got, expected in zip(over_history.results, over_workbook.results, strict=True):
        assert len(got.trades) > 0
        assert got.trades.equals(expected.trades), got.security
        assert got.daily.equals(expected.daily), got.security
        assert got.summary.keys() == expected.summary.keys()
        for name, value in got.summary.items():  # every figure, to the last bit (NaN = NaN)
            other = expected.summary[name]
            assert value == other or (value != value and other != other), (got.security, name)
    assert over_history.portfolio == over_workbook.portfolio


def test_the_data_hash_of_a_history_run_is_the_hash_of_the_day_hashes_it_used(daily, tmp_path):
    drop = drop_with(tmp_path / "drop", *daily[:2])
    ingest(drop, tmp_path / "h", tmp_path / "s")
    whole, one = open_data(tmp_path / "h"), open_data(tmp_path / "h", securities=["OASISBK"])
    assert one.securities == ("OASISBK",) and one.content_hash != whole.content_hash
    assert set(one.day_hashes()) == {("OASISBK", DAY1), ("OASISBK", DAY2)}
    drop_with(drop, daily[2])
    ingest(drop, tmp_path / "h", tmp_path / "s")
    assert open_data(tmp_path / "h").content_hash != whole.content_hash  # a day more
    shutil.copytree(tmp_path / "h", tmp_path / "copy")  # the same days elsewhere: same hash
    assert open_data(tmp_path / "copy").content_hash == open_data(tmp_path / "h").content_hash


def test_a_revised_day_is_a_new_revision_and_identical_days_are_no_ops(sample, daily, tmp_path):
    drop, history, store = drop_with(tmp_path / "drop", *daily), tmp_path / "h", tmp_path / "s"
    ingest(drop, history, store)
    before = open_data(history).day_hashes()
    change = {"OASISBK UH Equity": bump_first_trade}
    edited = revised(sample, tmp_path / "r", DAY2, lambda s, t: change.get(s, lambda t: t)(t))
    report = ingest(
        drop_with(drop, edited.rename(edited.with_name("reexport_day2.xlsx"))), history, store
    )
    [outcome] = [f for f in report.files if f.status != "skipped"]
    assert (outcome.days_new, outcome.days_revised, outcome.days_unchanged) == (0, 1, 2)
    after = open_data(history).day_hashes()
    assert {k for k in before if before[k] != after[k]} == {("OASISBK", DAY2)}
    revisions = catalog(
        store,
        "SELECT revision, content_hash FROM history_days WHERE security = 'OASISBK' "
        "AND date = '2025-04-15' ORDER BY revision",
    )
    assert revisions == [(1, before[("OASISBK", DAY2)]), (2, after[("OASISBK", DAY2)])]

    shutil.copy(drop / "reexport_day2.xlsx", drop / "reexport_copy.xlsx")  # the same bytes
    sheets = read_workbook_tables(drop / "reexport_day2.xlsx")
    write_workbook(drop / "reexport_reordered.xlsx", dict(reversed(sheets.items())))  # same rows
    report = ingest(drop, history, store)
    status = {Path(f.path).name: f for f in report.files}
    assert status["reexport_copy.xlsx"].status == "skipped"
    reordered = status["reexport_reordered.xlsx"]
    assert (reordered.status, reordered.days_revised, reordered.days_unchanged) == (
        "ingested",
        0,
        3,
    )
    assert catalog(store, "SELECT max(revision) FROM history_days") == [(2,)]
    assert open_data(history).day_hashes() == after


def test_a_replacement_with_fewer_rows_is_flagged(sample, daily, tmp_path):
    drop, history, store = drop_with(tmp_path / "drop", daily[0]), tmp_path / "h", tmp_path / "s"
    ingest(drop, history, store)
    shorter = revised(sample, tmp_path / "r", DAY1, lambda s, t: t.slice(0, t.num_rows - 5))
    report = ingest(
        drop_with(drop, shorter.rename(shorter.with_name("short.xlsx"))), history, store
    )
    assert len(report.warnings) == 3 and "fewer than the" in report.warnings[0]
    warned = catalog(store, "SELECT count(*) FROM history_days WHERE warning LIKE '%fewer%'")
    assert warned == [(3,)]


def test_bad_files_and_sheets_are_recorded_and_never_block_the_others(sample, daily, tmp_path):
    drop = drop_with(tmp_path / "drop", *daily[:2])
    (drop / "a_broken.xlsx").write_text("Dates,Type,Price,Size\n")  # a CSV renamed
    tables = {
        "GOOD UH Equity": pa.table(
            {
                "timestamp": pa.array([dt.datetime(2025, 4, 17, 10)]),
                "type": ["TRADE"],
                "price": [1.5],
                "volume": [100],
            }
        ),
        "NOPE UH Equity": pa.table(
            {
                "timestamp": pa.array([dt.datetime(2025, 4, 17, 10)]),
                "type": ["QUOTE"],
                "price": [1.5],
                "volume": [100],
            }
        ),
    }
    write_workbook(drop / "b_half.xlsx", tables)
    report = ingest(drop, tmp_path / "h", tmp_path / "s")
    status = {Path(f.path).name: (f.status, f.error) for f in report.files}
    assert status["a_broken.xlsx"][0] == "failed"
    assert "not a valid .xlsx file" in status["a_broken.xlsx"][1]
    assert status["b_half.xlsx"][0] == "partial"
    assert (
        "'NOPE UH Equity'" in status["b_half.xlsx"][1]
        and "BID, ASK or TRADE" in status["b_half.xlsx"][1]
    )
    assert {status[p.name][0] for p in daily[:2]} == {"ingested"}
    assert open_data(tmp_path / "h").securities == ("GOOD", *SECURITIES)  # first-seen order
    stored = catalog(
        tmp_path / "s", "SELECT status, error IS NOT NULL FROM ingested_files ORDER BY path"
    )
    assert stored == [("failed", True), ("partial", True), ("ingested", False), ("ingested", False)]


def test_names_never_become_paths_and_parquet_files_in_subfolders_are_ingested(tmp_path):
    drop = tmp_path / "drop"
    row = {
        "timestamp": pa.array([dt.datetime(2025, 4, 17, 10)]),
        "type": ["TRADE"],
        "price": [1.5],
        "volume": [100],
    }
    write_workbook(
        drop / "names.xlsx",
        {
            ".. UH Equity": pa.table(row),
            "A B UH Equity": pa.table(row),
            "A_B UH Equity": pa.table(row),
        },
    )
    (drop / "2025-04-17").mkdir()
    pq.write_table(pa.table(row), drop / "2025-04-17" / "modon.parquet")
    report = ingest(drop, tmp_path / "h", tmp_path / "s")
    assert [Path(f.path).name for f in report.files] == ["modon.parquet", "names.xlsx"]
    assert [f.status for f in report.files] == ["ingested", "ingested"]
    stems = read_marker(tmp_path / "h").securities
    assert stems[".."] == "unnamed" and stems["A B"] == "A_B"
    assert stems["A_B"].startswith("A_B-") and stems["MODON"] == "MODON"
    folders = sorted(p.name for p in (tmp_path / "h").iterdir() if p.is_dir())
    assert folders == sorted(f"security={s}" for s in stems.values())
    assert open_data(tmp_path / "h").securities == ("MODON", "..", "A B", "A_B")


def test_a_folder_that_is_not_a_history_is_refused(tmp_path, daily):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not a tick history"):
        ingest(drop_with(tmp_path / "drop", daily[0]), tmp_path / "h", tmp_path / "s")
    with pytest.raises(InputError, match="drop folder .* not found"):
        ingest(tmp_path / "nowhere", tmp_path / "h2", tmp_path / "s")


# ---- crash safety -------------------------------------------------------------------------------

KILLER = """
import os, signal, sys
import engine.data.history as history
calls = {"n": 0}
target = getattr(history, sys.argv[1])
def dying(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return target(*args, **kwargs)
setattr(history, sys.argv[1], dying)
history.ingest(sys.argv[3], sys.argv[4], sys.argv[5])
"""


@pytest.mark.parametrize(("where", "call"), [("write_day", 5), ("record_file", 2)])
def test_an_ingest_killed_mid_way_and_run_again_gives_the_same_history(
    sample, daily, tmp_path, where, call
):
    """Killed (SIGKILL) while writing day files, or with a file's days written but not yet
    catalogued; the re-run ends with the history and catalog of an ingest never interrupted."""
    edited = revised(sample, tmp_path / "r", DAY2, lambda s, t: bump_first_trade(t))
    edited = edited.rename(edited.with_name("z_reexport.xlsx"))
    drop = drop_with(tmp_path / "drop", *daily, edited)
    ingest(drop, tmp_path / "reference", tmp_path / "reference.duckdb")
    args = [where, str(call), str(drop), str(tmp_path / "h"), str(tmp_path / "s.duckdb")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLER), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    ingest(drop, tmp_path / "h", tmp_path / "s.duckdb")
    assert tree(tmp_path / "h") == tree(tmp_path / "reference")
    assert read_marker(tmp_path / "h").securities == read_marker(tmp_path / "reference").securities
    for table, columns in (
        ("history_days", "security, date, rows, content_hash, source_file, revision, warning"),
        ("ingested_files", "path, content_hash, status, days_new, days_revised, days_unchanged"),
    ):
        sql = f"SELECT {columns} FROM {table} ORDER BY ALL"
        assert catalog(tmp_path / "s.duckdb", sql) == catalog(tmp_path / "reference.duckdb", sql)


def tree(root: Path) -> dict[str, bytes]:
    """Every day file under `root` (relative path -> bytes); no temporary files left."""
    assert not list(root.rglob("*.tmp"))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.parquet")}


# ---- the command --------------------------------------------------------------------------------


def test_mmflow_ingest_prints_a_line_per_file_and_fails_on_a_bad_file(daily, tmp_path, capsys):
    drop = drop_with(tmp_path / "drop", *daily[:2])
    argv = ["ingest", str(drop), "--history", str(tmp_path / "h"), "--store", str(tmp_path / "s")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("ingested  ") == 2 and "2 file(s) ingested" in out
    (drop / "zz.xlsx").write_text("not a workbook")
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "skipped" in out and "FAILED" in out and "zz.xlsx" in out
