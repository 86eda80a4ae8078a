"""Hostile workbooks: names that try to become paths, and sheets that try to exhaust memory.

The workbooks are real .xlsx files written with openpyxl and then edited inside the zip (Excel
itself refuses such sheet names; a hand-edited `xl/workbook.xml` does not). Reading a sheet whose
last cell is XFD1048576 made calamine ask for 512 GB and abort the process, so that test runs
`mmflow backtest` in a child process with an address-space limit.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

import openpyxl
import pytest

from engine.data.bounds import check_sheet
from engine.data.parquet import MANIFEST_NAME, ensure_cache, read_manifest
from engine.data.source import InputError, open_data
from engine.paths import UnsafePathError, inside, safe_stem, unique_stems
from mmflow.cli import main

REPO = Path(__file__).resolve().parents[2]
HEADER = ["Dates", "Type", "Price", "Size"]
T0 = datetime(2025, 4, 14, 10)


def ticks(n: int = 30) -> list[list]:
    """A tradeable little book: BID/ASK snapshots and prints one second apart."""
    rows = []
    for i in range(n):
        kind = ("BID", "ASK", "TRADE")[i % 3]
        price = {"BID": 10.0, "ASK": 10.1, "TRADE": 10.0 + 0.1 * (i % 2)}[kind]
        rows.append([T0 + timedelta(seconds=i), kind, price, 50_000])
    return rows


def edit_part(path: Path, part: str, edit) -> Path:
    """Rewrite one part of an .xlsx (a zip) in place with `edit(bytes) -> bytes`."""
    with zipfile.ZipFile(path) as old:
        entries = [(info, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info, data in entries:
            new.writestr(info, edit(data) if info.filename == part else data)
    return path


def hostile_book(path: Path, names: list[str], data: list[list] | None = None) -> Path:
    """A Bloomberg-layout workbook whose sheets carry exactly `names` (set in xl/workbook.xml)."""
    book = openpyxl.Workbook(write_only=True)
    for i in range(len(names)):
        sheet = book.create_sheet(f"PLACEHOLDER{i:03d}")
        sheet.append(["ticker"])
        sheet.append(["free text"])
        sheet.append(HEADER)
        for row in data or ticks():
            sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)

    def rename(xml: bytes) -> bytes:
        text = xml.decode()
        for i, name in enumerate(names):
            text = text.replace(f'name="PLACEHOLDER{i:03d}"', f"name={quoteattr(name)}")
        return text.encode()

    return edit_part(path, "xl/workbook.xml", rename)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# --- names never become paths -----------------------------------------------------------------


def test_safe_stems_keep_plain_names_and_neutralise_the_rest():
    assert [safe_stem(n) for n in ("MODON", "SECURITY_00", "a-b.c")] == [
        "MODON",
        "SECURITY_00",
        "a-b.c",
    ]
    assert safe_stem("../../evil") == "_.._evil"
    assert safe_stem("/etc/passwd") == "_etc_passwd"
    assert safe_stem(".hidden") == "hidden"
    assert safe_stem("..") == safe_stem("") == "unnamed"
    assert safe_stem("a/b") == "a_b" and safe_stem("x" * 500) == "x" * 100
    assert safe_stem("ÉMAAR") == "_MAAR"


def test_unique_stems_are_unique_case_insensitively_and_independent_of_order():
    names = ["a/b", "a_b", "a:b", "ABC", "abc", "MODON", "..", ""]
    stems = unique_stems(names)
    assert stems["a_b"] == "a_b" and stems["MODON"] == "MODON"  # safe names keep their stem
    assert len({s.lower() for s in stems.values()}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", s) for s in stems.values())
    assert unique_stems(reversed(names)) == stems


def test_inside_refuses_names_that_leave_the_folder(tmp_path):
    assert inside(tmp_path, "MODON_trades.csv") == tmp_path.resolve() / "MODON_trades.csv"
    for name in ("../x.csv", "/etc/passwd", "..", ".", "a/../../x"):
        with pytest.raises(UnsafePathError, match="outside"):
            inside(tmp_path, name)
    (tmp_path / "link.csv").symlink_to("/tmp/elsewhere.csv")
    with pytest.raises(UnsafePathError):
        inside(tmp_path, "link.csv")


HOSTILE = ["../../evil", "..", ".hidden", "a/b", "a:b"]  # a/b and a:b collide once made safe


def test_backtest_writes_nothing_outside_out_or_the_cache(tmp_path, monkeypatch, capsys):
    (tmp_path / "abs").mkdir()
    names = [
        "GOOD UH Equity",
        *(f"{n} UH Equity" for n in HOSTILE),
        f"{tmp_path}/abs/evil UH Equity",  # an absolute path
        " UH Equity",  # nothing left once the suffix goes
    ]
    workbook = hostile_book(tmp_path / "data" / "book.xlsx", names)
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    out = tmp_path / "run" / "out"
    before = files_under(tmp_path)

    code = main(
        ["backtest", "--strategy", "v1_baseline", "--data", str(workbook), "--out", str(out)]
    )

    written = files_under(tmp_path) - before
    assert written, "the backtest wrote nothing"
    assert all(p.is_relative_to(out) or p.is_relative_to(tmp_path / "pc") for p in written)
    assert not list((tmp_path / "abs").iterdir())
    assert all(not p.name.startswith(".") for p in written if p.is_relative_to(out))
    assert code == 1  # the sheet without a security fails alone
    summary = {row["security"]: row for row in _csv_rows(out / "backtest_summary.csv")}
    assert summary["GOOD"]["status"] == "ok" and (out / "GOOD_trades.csv").exists()
    for name in [*HOSTILE, f"{tmp_path}/abs/evil"]:  # original names kept in the results
        assert summary[name]["status"] == "ok"
    assert summary[" UH Equity"]["status"] == "failed"
    assert "sheet ' UH Equity'" in summary[" UH Equity"]["error"]
    assert "gives no security" in summary[" UH Equity"]["error"]
    trade_files = sorted(p.name for p in out.glob("*_trades.csv"))
    assert len(trade_files) == 1 + len(HOSTILE) + 1  # a/b and a:b got two distinct files
    assert "GOOD_trades.csv" in trade_files
    capsys.readouterr()


def test_cache_files_are_safe_stems_and_the_manifest_keeps_the_names(tmp_path):
    names = ["GOOD UH Equity", *(f"{n} UH Equity" for n in HOSTILE)]
    workbook = hostile_book(tmp_path / "book.xlsx", names)
    manifest = ensure_cache(workbook, tmp_path / "cache")
    assert [e.sheet for e in manifest.sheets] == names
    assert [e.security for e in manifest.sheets] == ["GOOD", *HOSTILE]
    files = [e.file for e in manifest.sheets]
    assert files[0] == "good.parquet" and len(set(files)) == len(files)
    assert all(Path(f).name == f and not f.startswith(".") for f in files)
    assert {p.name for p in (tmp_path / "cache").glob("*.parquet")} == set(files)
    assert files_under(tmp_path) <= files_under(tmp_path / "cache") | {workbook}


def test_a_manifest_edited_to_point_outside_the_cache_is_not_followed(tmp_path):
    workbook = hostile_book(tmp_path / "book.xlsx", ["GOOD UH Equity"])
    cache = tmp_path / "cache"
    ensure_cache(workbook, cache)
    body = json.loads((cache / MANIFEST_NAME).read_text())
    body["sheets"][0]["file"] = "../outside.parquet"
    (cache / MANIFEST_NAME).write_text(json.dumps(body))
    (tmp_path / "outside.parquet").write_text("not parquet")
    manifest = ensure_cache(workbook, cache)  # the entry is unusable: converted again
    assert manifest.sheets[0].file == "good.parquet"
    assert read_manifest(cache) == manifest


def test_sheet_named_with_a_slash_runs_and_a_nameless_sheet_fails_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    workbook = hostile_book(tmp_path / "book.xlsx", ["a/b UH Equity", " DH Equity"])
    source = open_data(workbook)
    assert source.securities == ("a/b", " DH Equity")
    assert source.load("a/b")[1].rows_kept == 30
    with pytest.raises(InputError, match=r"sheet ' DH Equity': the sheet name gives no security"):
        source.load(" DH Equity")


# --- bounded reading --------------------------------------------------------------------------


def sparse_book(path: Path, stray: bytes) -> Path:
    """GOOD and BAD sheets; BAD gets `stray` XML appended to its sheetData (the file stays tiny)."""
    hostile_book(path, ["GOOD UH Equity", "BAD UH Equity"])
    return edit_part(
        path,
        "xl/worksheets/sheet2.xml",
        lambda xml: xml.replace(b"</sheetData>", stray + b"</sheetData>"),
    )


FAR_CELL = b'<row r="1048576"><c r="XFD1048576" t="n"><v>1</v></c></row>'


def _limit_memory() -> None:  # pragma: no cover - runs in the child process
    limit = 4 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_sparse_sheet_fails_alone_and_the_good_sheet_is_backtested(tmp_path):
    workbook = sparse_book(tmp_path / "sparse.xlsx", FAR_CELL)
    assert workbook.stat().st_size < 20_000
    out = tmp_path / "out"
    env = dict(os.environ, MMFLOW_PARQUET_CACHE=str(tmp_path / "pc"))
    child = subprocess.run(
        [sys.executable, "-m", "mmflow.cli", "backtest", "--strategy", "v1_baseline"]
        + ["--data", str(workbook), "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_memory,
    )
    assert child.returncode == 1, child.stdout + child.stderr  # 1: a security failed; not -6
    summary = {row["security"]: row for row in _csv_rows(out / "backtest_summary.csv")}
    assert summary["GOOD"]["status"] == "ok" and (out / "GOOD_trades.csv").exists()
    assert summary["BAD"]["status"] == "failed"
    error = summary["BAD"]["error"]
    assert "sparse.xlsx" in error and "sheet 'BAD UH Equity'" in error
    assert "1,048,576 rows x 16,384 columns" in error and "last cell XFD1048576" in error
    assert "MMFLOW_MAX_SHEET_CELLS" in error and "Ctrl+End" in error


@pytest.mark.parametrize(
    ("stray", "accepted"),
    [
        (b'<row r="1048576"><c r="XFD1048576" s="1"/></row>', True),  # empty, styled: no value
        (b'<x:row r="1048576"><x:c r="XFD1048576"><x:v>1</x:v></x:c></x:row>', False),
        (b'<row r="1048576"><c t="n"><v>1</v></c></row>', False),  # no r: row 1048576, column A
        (b'<row><c\nr="XFD20"><v>1</v></c></row>', False),  # other spacing
        (b"<row r='9'><c r='XFD9'><v>1</v></c></row>", False),  # single quotes
        (b'<row r="9"><c r="A2000000"><v>1</v></c></row>', False),  # outside Excel's grid
        (b'<!-- </sheetData> --><row r="9"><c r="XFD9"><v>1</v></c></row>', False),
    ],
)
def test_every_way_of_writing_a_far_cell_is_bounded(tmp_path, stray, accepted):
    workbook = sparse_book(tmp_path / "s.xlsx", stray)
    assert check_sheet(workbook, "GOOD UH Equity", 100_000).block <= 100_000
    if accepted:
        assert check_sheet(workbook, "BAD UH Equity", 100_000).block <= 100_000
    else:
        with pytest.raises(InputError, match="sheet 'BAD UH Equity'"):
            check_sheet(workbook, "BAD UH Equity", 100_000)


def test_the_cap_is_configurable_and_the_message_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    workbook = hostile_book(tmp_path / "book.xlsx", ["GOOD UH Equity"])
    monkeypatch.setenv("MMFLOW_MAX_SHEET_CELLS", "100")  # 33 rows x 4 columns is more
    with pytest.raises(
        InputError, match=r"33 rows x 4 columns \(132 cells.*MMFLOW_MAX_SHEET_CELLS"
    ):
        open_data(workbook).load("GOOD")
    monkeypatch.setenv("MMFLOW_MAX_SHEET_CELLS", "200")
    assert open_data(workbook, cache_dir=tmp_path / "pc2").load("GOOD")[1].rows_kept == 30


def test_ambiguous_or_disguised_workbooks_are_refused_before_calamine_reads_them(tmp_path):
    workbook = hostile_book(tmp_path / "dup.xlsx", ["GOOD UH Equity"])
    with zipfile.ZipFile(workbook, "a") as archive:  # a second copy of the sheet's part
        archive.writestr("XL/worksheets/SHEET1.xml", archive.read("xl/worksheets/sheet1.xml"))
    with pytest.raises(InputError, match="copies of the part of sheet"):
        open_data(workbook, cache_dir=tmp_path / "pc")
    twins = hostile_book(tmp_path / "twins.xlsx", ["SAME UH Equity", "SAME UH Equity"])
    with pytest.raises(InputError, match="two sheets named 'SAME UH Equity'"):
        open_data(twins, cache_dir=tmp_path / "pc")


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
