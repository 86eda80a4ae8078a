"""The Parquet cache (SPEC §1.4): files, manifest, reuse while unchanged, atomic rebuilds."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest
from workbooks import SYNTHETIC, bloomberg_book, shared, ticks

from engine.data import parquet
from engine.data.parquet import (
    MANIFEST_NAME,
    convert_workbook,
    default_cache_dir,
    ensure_cache,
    read_manifest,
)
from engine.data.workbook import CACHE_SCHEMA, InputError


def synthetic(tmp_path: Path) -> Path:
    return Path(shutil.copy(shared(SYNTHETIC), tmp_path / "synthetic.xlsx"))


def tiny_book(path: Path, prices: dict[str, float], rows: int = 5, bad: str | None = None) -> Path:
    """A small Bloomberg-layout workbook; sheet `bad` (if given) has no header."""
    sheets = {s: None if s == bad else ticks(rows, price, size=100) for s, price in prices.items()}
    return bloomberg_book(path, sheets)


def count_conversions(monkeypatch) -> list[str]:
    """Record the sheets converted from now on."""
    seen: list[str] = []
    original = parquet._convert_sheet

    def spy(book, workbook, sheet, *rest):
        seen.append(sheet)
        return original(book, workbook, sheet, *rest)

    monkeypatch.setattr(parquet, "_convert_sheet", spy)
    return seen


def test_convert_writes_one_snappy_file_per_security_and_a_manifest(tmp_path):
    workbook = synthetic(tmp_path)
    manifest = convert_workbook(workbook, tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").glob("*.parquet"))
    assert files == ["security_00.parquet", "security_01.parquet", "security_02.parquet"]
    for name in files:
        handle = pq.ParquetFile(tmp_path / "out" / name)
        assert handle.schema_arrow.remove_metadata() == CACHE_SCHEMA
        assert handle.metadata.num_rows == 5000
        assert handle.metadata.row_group(0).column(0).compression == "SNAPPY"
    body = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert body["workbook"] == str(workbook)
    assert body["content_hash"] == hashlib.sha256(workbook.read_bytes()).hexdigest()
    first = body["sheets"][0]
    assert {k: first[k] for k in ("sheet", "security", "file", "rows_read", "rows_written")} == {
        "sheet": "SECURITY_00 UH Equity",
        "security": "SECURITY_00",
        "file": "security_00.parquet",
        "rows_read": 5000,
        "rows_written": 5000,
    }
    assert (first["dropped_bad_timestamp"], first["dropped_bad_price"]) == (0, 0)
    assert first["converted_at"]
    assert read_manifest(tmp_path / "out") == manifest


def test_default_cache_dir_is_the_configured_root_and_the_workbook_hash(tmp_path, monkeypatch):
    workbook = tiny_book(tmp_path / "foo.xlsx", {"AAA": 1.0})
    digest = hashlib.sha256(workbook.read_bytes()).hexdigest()
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    assert default_cache_dir(workbook) == tmp_path / "pc" / digest
    assert default_cache_dir(workbook, tmp_path / "other") == tmp_path / "other" / digest
    monkeypatch.delenv("MMFLOW_PARQUET_CACHE")
    monkeypatch.setenv("MMFLOW_CACHE_DIR", str(tmp_path / "mm"))
    assert default_cache_dir(workbook) == tmp_path / "mm" / "parquet" / digest


def test_cache_is_reused_while_unchanged_and_rebuilt_when_the_workbook_changes(
    tmp_path, monkeypatch
):
    workbook = tiny_book(tmp_path / "book.xlsx", {"AAA": 1.0, "BBB": 2.0})
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    seen = count_conversions(monkeypatch)
    first = ensure_cache(workbook)
    assert first.cache_dir == tmp_path / "pc" / hashlib.sha256(workbook.read_bytes()).hexdigest()
    assert seen == ["AAA UH Equity", "BBB UH Equity"]

    mtime = (first.cache_dir / "aaa.parquet").stat().st_mtime_ns
    assert ensure_cache(workbook) == first
    assert seen == ["AAA UH Equity", "BBB UH Equity"]  # nothing converted again
    assert (first.cache_dir / "aaa.parquet").stat().st_mtime_ns == mtime

    tiny_book(workbook, {"AAA": 1.5, "BBB": 2.0})
    second = ensure_cache(workbook)
    assert second.content_hash != first.content_hash
    assert seen[2:] == ["AAA UH Equity", "BBB UH Equity"]
    prices = pq.read_table(second.cache_dir / "aaa.parquet").column("price").to_pylist()
    assert prices == [1.5] * 5


def test_a_missing_file_or_sheet_is_converted_alone(tmp_path, monkeypatch):
    workbook = tiny_book(tmp_path / "book.xlsx", {"AAA": 1.0, "BBB": 2.0, "CCC": 3.0})
    seen = count_conversions(monkeypatch)
    cache = tmp_path / "cache"
    manifest = ensure_cache(workbook, cache, sheets=["BBB UH Equity"])
    assert [e.security for e in manifest.sheets] == ["BBB"]
    assert manifest.sheet_names == ("AAA UH Equity", "BBB UH Equity", "CCC UH Equity")
    manifest = ensure_cache(workbook, cache)
    assert [e.security for e in manifest.sheets] == ["AAA", "BBB", "CCC"]
    (cache / "ccc.parquet").unlink()
    ensure_cache(workbook, cache)
    assert seen == ["BBB UH Equity", "AAA UH Equity", "CCC UH Equity", "CCC UH Equity"]


def test_a_crash_during_rebuild_leaves_no_valid_looking_cache(tmp_path, monkeypatch):
    workbook = tiny_book(tmp_path / "book.xlsx", {"AAA": 1.0, "BBB": 2.0})
    cache = tmp_path / "cache"
    ensure_cache(workbook, cache)
    tiny_book(workbook, {"AAA": 9.0, "BBB": 9.0})
    calls = []

    def crash_on_second(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            raise OSError("disk full")
        return pq.write_table(table, where, **kwargs)

    monkeypatch.setattr(parquet.pq, "write_table", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        ensure_cache(workbook, cache)
    assert read_manifest(cache) is None  # the stale manifest went before any file was replaced
    assert not list(cache.glob("*.tmp"))
    monkeypatch.undo()
    manifest = ensure_cache(workbook, cache)
    assert pq.read_table(cache / "bbb.parquet").column("price").to_pylist() == [9.0] * 5
    assert manifest.content_hash == hashlib.sha256(workbook.read_bytes()).hexdigest()


def test_a_bad_sheet_is_recorded_and_the_others_are_converted(tmp_path):
    workbook = tiny_book(tmp_path / "book.xlsx", {"AAA": 1.0, "BAD": 2.0}, bad="BAD")
    manifest = convert_workbook(workbook, tmp_path / "out")
    good, bad = manifest.sheets
    assert (good.file, good.error) == ("aaa.parquet", None)
    assert bad.file is None and "row 3 must be the header" in bad.error
    assert read_manifest(tmp_path / "out") == manifest


def test_unknown_sheet_and_clashing_security_names_are_input_errors(tmp_path):
    workbook = tiny_book(tmp_path / "book.xlsx", {"AAA": 1.0})
    with pytest.raises(InputError, match=r"no sheet\(s\) \['ZZZ'\]"):
        convert_workbook(workbook, tmp_path / "out", sheets=["ZZZ"])
    clash = tiny_book(tmp_path / "clash.xlsx", {"AAA": 1.0})
    book = openpyxl.load_workbook(clash)
    book.create_sheet("AAA DH Equity")
    book.save(clash)
    with pytest.raises(InputError, match="both name security 'AAA'"):
        ensure_cache(clash, tmp_path / "out2")


def test_a_read_only_data_folder_is_never_written(tmp_path, monkeypatch):
    """The cache lives under the configured folder, never beside the workbook. (chmod does not
    stop root, who runs CI, so the test checks that nothing appears in the data folder.)"""
    from engine.data.source import open_data

    data = tmp_path / "data"
    data.mkdir()
    workbook = tiny_book(data / "book.xlsx", {"AAA": 1.0, "BBB": 2.0})
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    before = sorted(data.rglob("*"))
    data.chmod(0o555)
    try:
        source = open_data(workbook)
        assert source.load("BBB")[1].rows_kept == 5
    finally:
        data.chmod(0o755)
    assert sorted(data.rglob("*")) == before
    cache = tmp_path / "pc" / hashlib.sha256(workbook.read_bytes()).hexdigest()
    assert {p.name for p in cache.iterdir()} >= {"aaa.parquet", "bbb.parquet", MANIFEST_NAME}
    assert read_manifest(cache).workbook == str(workbook)


def test_mmflow_convert_writes_where_it_is_told(tmp_path, monkeypatch, capsys):
    from mmflow.cli import main

    workbook = tiny_book(tmp_path / "book.xlsx", {"AAA": 1.0})
    monkeypatch.setenv("MMFLOW_PARQUET_CACHE", str(tmp_path / "pc"))
    assert main(["convert", str(workbook), "--out", str(tmp_path / "anywhere")]) == 0
    assert (tmp_path / "anywhere" / "aaa.parquet").exists()
    assert main(["convert", str(workbook)]) == 0  # default: the configured cache
    assert list((tmp_path / "pc").glob("*/aaa.parquet"))
    capsys.readouterr()
