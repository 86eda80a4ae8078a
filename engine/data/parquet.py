"""The Parquet cache of a workbook: one file per security plus a manifest keyed by the workbook hash.

Owns `convert_workbook` (workbook -> `<security lower-case>.parquet` files in the SPEC §1.4 format
and `manifest.json`) and `ensure_cache` (reuse the cache while the workbook's sha256 is unchanged,
else convert again). The cache lives outside the data folder, which may be read-only or shared:
`default_cache_dir` is `engine.settings.parquet_cache_dir() / <workbook sha256>`. File names are
safe stems of the security names (`engine.paths`), never the names themselves; the manifest keeps
the original sheet and security names. Every file is written to a temporary name and renamed, and a stale manifest
is removed before its files are replaced, so a crash never leaves a cache that looks valid.
A sheet that cannot be read is recorded in the manifest with its error instead of failing the
whole workbook, so the other securities stay usable.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from engine.data.workbook import InputError, open_workbook, read_sheet, security_name, sheet_names
from engine.paths import UnsafePathError, inside, unique_stems
from engine.settings import max_sheet_cells, parquet_cache_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 2  # 2: safe file stems, the non-finite price and bad size counts


@dataclass(frozen=True)
class SheetEntry:
    """What the cache holds for one sheet: its file and the rows dropped while reading it."""

    sheet: str
    security: str
    file: str | None  # file name inside the cache folder; None when the sheet could not be read
    rows_read: int = 0
    dropped_bad_timestamp: int = 0
    dropped_bad_price: int = 0
    rows_written: int = 0
    converted_at: str = ""
    error: str | None = None  # the InputError message of an unreadable sheet
    dropped_rows: tuple[int, ...] = ()  # 1-based sheet rows dropped (maps file rows to sheet rows)
    dropped_nonfinite_price: int = 0
    dropped_bad_size: int = 0
    max_cells: int = 0  # the sheet-size cap in force when read (an error is retried under another)


@dataclass(frozen=True)
class Manifest:
    """The cache of one workbook: its hash, all its sheet names, and one entry per converted sheet."""

    workbook: str
    content_hash: str
    sheet_names: tuple[str, ...]  # every worksheet, in workbook order
    sheets: tuple[SheetEntry, ...]  # converted sheets, in workbook order
    cache_dir: Path

    def entry(self, sheet: str) -> SheetEntry | None:
        """The entry of a sheet, or None if it was not converted."""
        return next((e for e in self.sheets if e.sheet == sheet), None)

    def to_json(self) -> str:
        """The manifest.json text (cache_dir is implied by the file's location)."""
        body = {
            "format": MANIFEST_FORMAT,
            "workbook": self.workbook,
            "content_hash": self.content_hash,
            "sheet_names": list(self.sheet_names),
            "sheets": [asdict(e) | {"dropped_rows": list(e.dropped_rows)} for e in self.sheets],
        }
        return json.dumps(body, indent=1)


def default_cache_dir(workbook: str | Path, root: str | Path | None = None) -> Path:
    """Cache folder of a workbook: `<root>/<its sha256>`, root $MMFLOW_PARQUET_CACHE or
    `<mmflow cache>/parquet` (never beside the workbook: its folder may be read-only)."""
    base = Path(root).expanduser() if root is not None else parquet_cache_dir()
    return base / file_sha256(workbook)


def file_stems(names: Sequence[str]) -> dict[str, str]:
    """Sheet -> the stem of its Parquet file: the security lower-cased (SPEC §1.4-1), made safe
    and unique over all the workbook's sheets, so a sheet's file name never depends on which
    sheets were converted."""
    securities = {sheet: security_name(sheet).lower() for sheet in names}
    stems = unique_stems(s for s in securities.values() if s)
    return {sheet: stems[s] for sheet, s in securities.items() if s}


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes (remembered while its size and mtime are unchanged)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(cache_dir: str | Path) -> Manifest | None:
    """The manifest in a cache folder, or None if absent or unreadable."""
    cache_dir = Path(cache_dir)
    try:
        body = json.loads((cache_dir / MANIFEST_NAME).read_text())
        if body.get("format") != MANIFEST_FORMAT:
            return None
        entries = tuple(
            SheetEntry(**(e | {"dropped_rows": tuple(e.get("dropped_rows", ()))}))
            for e in body["sheets"]
        )
        return Manifest(
            workbook=body["workbook"],
            content_hash=body["content_hash"],
            sheet_names=tuple(body["sheet_names"]),
            sheets=entries,
            cache_dir=cache_dir,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def convert_workbook(
    workbook: str | Path, out_dir: str | Path, sheets: Sequence[str] | None = None
) -> Manifest:
    """Convert a workbook's sheets (all, or the named ones) to Parquet files plus manifest.json."""
    workbook = Path(workbook).resolve()
    out_dir = Path(out_dir)
    book = open_workbook(workbook)
    content_hash = file_sha256(workbook)
    names = tuple(sheet_names(book))
    wanted = _check_sheets(names, sheets, workbook)
    stems = file_stems(names)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        # The old manifest goes first: files replaced below must never sit under a stale hash.
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        entries = tuple(
            _convert_sheet(book, workbook, sheet, out_dir, stems.get(sheet)) for sheet in wanted
        )
        manifest = Manifest(str(workbook), content_hash, names, entries, out_dir)
        _finish(manifest, workbook)
    return manifest


def ensure_cache(
    workbook: str | Path, cache_dir: str | Path | None = None, sheets: Sequence[str] | None = None
) -> Manifest:
    """Reuse the cache in `cache_dir` (default `default_cache_dir(workbook)`) when the workbook
    hash is unchanged and the files exist, else convert."""
    workbook = Path(workbook).resolve()
    book = open_workbook(workbook)  # validates the file before anything is hashed or written
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(workbook)
    content_hash = file_sha256(workbook)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the Parquet cache folder {cache_dir} ({exc.strerror}); point "
            "MMFLOW_PARQUET_CACHE (or --out) at a writable folder"
        ) from None
    with _locked(cache_dir):
        old = read_manifest(cache_dir)
        names = tuple(sheet_names(book))
        wanted = _check_sheets(names, sheets, workbook)
        if old is None or old.content_hash != content_hash or old.sheet_names != names:
            (cache_dir / MANIFEST_NAME).unlink(missing_ok=True)
            kept: tuple[SheetEntry, ...] = ()
        else:
            kept = tuple(e for e in old.sheets if _entry_usable(e, cache_dir))
        have = {e.sheet for e in kept}
        missing = [s for s in wanted if s not in have]
        if not missing and old is not None and len(kept) == len(old.sheets):
            return old
        stems = file_stems(names)
        new = tuple(
            _convert_sheet(book, workbook, sheet, cache_dir, stems.get(sheet)) for sheet in missing
        )
        order = {name: i for i, name in enumerate(names)}
        entries = tuple(sorted(kept + new, key=lambda e: order[e.sheet]))
        manifest = Manifest(str(workbook), content_hash, names, entries, cache_dir)
        _finish(manifest, workbook)
    return manifest


def _check_sheets(
    names: tuple[str, ...], sheets: Sequence[str] | None, workbook: Path
) -> list[str]:
    """The sheets to convert; unknown names and clashing security names are InputErrors."""
    wanted = list(names) if sheets is None else list(sheets)
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise InputError(
            f"workbook {workbook} has no sheet(s) {unknown}; its sheets are {list(names)}"
        )
    files: dict[str, str] = {}
    for sheet in names:
        key = security_name(sheet).lower()
        if not key:
            continue  # no security name: that sheet fails alone (read_sheet says why)
        if key in files:
            raise InputError(
                f"workbook {workbook}: sheets {files[key]!r} and {sheet!r} both name security "
                f"{security_name(sheet)!r}; rename or remove one of them"
            )
        files[key] = sheet
    return wanted


def entry_file(entry: SheetEntry, cache_dir: Path) -> Path | None:
    """The Parquet file of an entry, or None if it has none or its name leaves the cache folder
    (a manifest edited by hand must not make us read elsewhere)."""
    if entry.file is None or Path(entry.file).name != entry.file:
        return None
    try:
        return inside(cache_dir, entry.file)
    except UnsafePathError:
        return None


def _entry_usable(entry: SheetEntry, cache_dir: Path) -> bool:
    """An entry is usable if it records an error made under today's sheet-size cap, or its file
    exists inside the cache folder."""
    if entry.error is not None:
        return entry.max_cells == max_sheet_cells()
    file = entry_file(entry, cache_dir)
    return file is not None and file.exists()


def _convert_sheet(book, workbook: Path, sheet: str, out_dir: Path, stem: str | None) -> SheetEntry:
    """Read one sheet and write its Parquet file atomically; a bad sheet becomes an error entry."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    security = security_name(sheet)
    try:
        read = read_sheet(book, sheet, path=workbook)
    except InputError as exc:
        return SheetEntry(
            sheet, security, None, converted_at=now, error=str(exc), max_cells=max_sheet_cells()
        )
    name = f"{stem}.parquet"
    with _atomic_path(inside(out_dir, name)) as tmp:
        # SPEC §1.4-1: snappy, written by pyarrow, no index.
        pq.write_table(read.table, tmp, compression="snappy")
    return SheetEntry(
        sheet=sheet,
        security=security,
        file=name,
        rows_read=read.rows_read,
        dropped_bad_timestamp=read.dropped_bad_timestamp,
        dropped_bad_price=read.dropped_bad_price,
        rows_written=read.table.num_rows,
        converted_at=now,
        dropped_rows=read.dropped_rows,
        dropped_nonfinite_price=read.dropped_nonfinite_price,
        dropped_bad_size=read.dropped_bad_size,
        max_cells=max_sheet_cells(),
    )


def _finish(manifest: Manifest, workbook: Path) -> None:
    """Write the manifest last, unless the workbook changed while it was being read."""
    if file_sha256(workbook) != manifest.content_hash:
        raise InputError(f"workbook {workbook} changed while it was being converted; run again")
    with _atomic_path(manifest.cache_dir / MANIFEST_NAME) as tmp:
        tmp.write_text(manifest.to_json())


@contextlib.contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to target; rename it over target only if the block succeeds."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache folder so concurrent workers convert it only once."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(cache_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
