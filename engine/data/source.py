"""The one entry point to tick data: open a source, pick securities, load one security as Events.

Owns `open_data` (an .xlsx workbook through its Parquet cache, a folder of .parquet files, one
.parquet file, or a tick history of `engine.data.days`), `DataSource.load`, and `normalise`, the
row normalisation of SPEC §1.3. Loading is columnar (pyarrow + numpy, no per-row Python) because
every backtest task starts with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine import settings
from engine.data import remote, rules
from engine.data.columns import NAT, as_table, kinds, map_columns, timestamp_ns
from engine.data.days import (
    DayFile,
    history_hash,
    is_history,
    read_days,
    read_index,
    read_marker,
)
from engine.data.parquet import (
    SheetEntry,
    default_cache_dir,
    ensure_cache,
    entry_file,
    file_sha256,
)
from engine.data.workbook import (
    FIRST_DATA_ROW,
    WORKBOOK_SUFFIXES,
    InputError,
    open_workbook,
    security_name,
    sheet_names,
)
from engine.types import Events, RowCounts

__all__ = ["DataSource", "InputError", "normalise", "open_data"]

_FIX_DATA = (
    "the data must start at row 4 under the header Dates, Type, Price, Size, "
    "with Excel datetimes in Dates and numbers in Price"
)


@dataclass(frozen=True)
class DataSource:
    """An opened tick-data source: its securities, a content hash, and `load` per security."""

    path: Path
    kind: str  # "xlsx" | "parquet-dir" | "parquet-file" | "history"
    securities: tuple[str, ...]  # in workbook / sorted file / first-ingested order
    # sha256 of the workbook, of the Parquet files (name order) combined, or of the day hashes
    content_hash: str
    _files: dict[str, Path] = field(default_factory=dict, repr=False, compare=False)
    _sheets: dict[str, SheetEntry] = field(default_factory=dict, repr=False, compare=False)
    _days: dict[str, tuple[DayFile, ...]] = field(default_factory=dict, repr=False, compare=False)
    _broken: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def day_hashes(self) -> dict[tuple[str, dt.date], str]:
        """(security, date) -> content hash of each stored day a history run uses; empty for
        other kinds of data (they have no per-day hashes)."""
        return {
            (security, day.date): day.content_hash
            for security, days in self._days.items()
            for day in days
        }

    def load(self, security: str) -> tuple[Events, RowCounts]:
        """One security's rows after SPEC §1.3, with its row counts; raises InputError."""
        if security not in self.securities:
            raise _unknown_security(security, self.securities, self.path)
        if self.kind == "xlsx":
            events, counts, where = self._load_sheet(self._sheets[security])
        elif self.kind == "history":
            if security in self._broken:
                raise InputError(self._broken[security])
            where = f"history {self.path} (security {security})"
            table = read_days(self._days[security])
            events, counts = _normalise(table, where, lambda k: f"row {k} (0-based, date order)")
        else:
            where = f"file {self._files[security]} (security {security})"
            table = _read_parquet(self._files[security])
            events, counts = _normalise(table, where, lambda k: f"row {k} (0-based)")
        if counts.rows_kept == 0:
            raise InputError(
                f"{where}: no usable rows ({counts.rows_read} read: "
                f"{counts.dropped_bad_timestamp} with unreadable Dates, "
                f"{counts.dropped_bad_price} with unreadable Price, "
                f"{counts.dropped_nonfinite_price} with a non-finite or absurd Price, "
                f"{counts.dropped_nonpositive_price} with Price <= 0, "
                f"{counts.dropped_bad_size} with a bad Size); {_FIX_DATA}"
            )
        return events, counts

    def _load_sheet(self, entry: SheetEntry) -> tuple[Events, RowCounts, str]:
        """Load a workbook sheet from the cache, carrying the cache's drop counts (SPEC §0)."""
        where = f"workbook {self.path}, sheet {entry.sheet!r}"
        if entry.error is not None:
            raise InputError(entry.error)
        file = self._files[_sheet_key(entry.sheet)]
        table = _read_parquet(file)
        if table.num_rows != entry.rows_written:
            raise InputError(
                f"{where}: the cache file {file} does not match its manifest; "
                f"delete {file.parent} and run again"
            )

        def sheet_row(k: int) -> str:
            # Data row i (0-based) is sheet row i + 4; the cache left out the dropped rows.
            rows = np.arange(FIRST_DATA_ROW, FIRST_DATA_ROW + entry.rows_read)
            return f"sheet row {int(np.setdiff1d(rows, entry.dropped_rows)[k])}"

        events, counts = _normalise(table, where, sheet_row)
        counts = RowCounts(
            rows_read=entry.rows_read,
            dropped_bad_timestamp=entry.dropped_bad_timestamp + counts.dropped_bad_timestamp,
            dropped_bad_price=entry.dropped_bad_price + counts.dropped_bad_price,
            dropped_nonfinite_price=entry.dropped_nonfinite_price + counts.dropped_nonfinite_price,
            dropped_nonpositive_price=counts.dropped_nonpositive_price,
            dropped_bad_size=entry.dropped_bad_size + counts.dropped_bad_size,
            rows_kept=counts.rows_kept,
        )
        return events, counts, where


def open_data(
    path: str | Path,
    *,
    securities: Sequence[str] | None = None,
    max_sheets: int | None = None,
    cache_dir: str | Path | None = None,
) -> DataSource:
    """Open a workbook (through its Parquet cache under `cache_dir`, default $MMFLOW_PARQUET_CACHE
    or ~/.cache/mmflow/parquet), a folder of .parquet files, one file, or a tick history (days in
    date order). `path`, `cache_dir` may be URLs (`file://`, `s3://`, ...: engine.data.remote)."""
    cache_url = str(cache_dir) if remote.is_url(str(cache_dir or "")) else None
    if cache_dir is None and remote.is_url(settings.parquet_cache_setting() or ""):
        cache_url = settings.parquet_cache_setting()
    if remote.is_url(str(path)) or cache_url:
        return _open_url(str(path), securities, max_sheets, cache_url)
    path = Path(path).expanduser().resolve()
    if max_sheets is not None and max_sheets < 1:
        raise InputError(f"max_sheets must be at least 1, got {max_sheets}")
    if not path.exists():
        raise InputError(
            f"{path} not found: pass an .xlsx workbook, a folder of .parquet files or one .parquet file"
        )
    if is_history(path):  # a folder with history.json
        return _open_history(path, securities, max_sheets)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".parquet" and p.is_file())
        if not files:
            raise InputError(
                f"folder {path} has no .parquet files; pass a workbook or a Parquet folder"
            )
        by_security = _files_by_security(files, path)
        chosen = _select(tuple(by_security), securities, max_sheets, path)
        digest = hashlib.sha256()
        for file in files:  # SPEC §1.5-2 names come from file names, so they are hashed too
            digest.update(f"{file.name}\0{file_sha256(file)}\n".encode())
        files_of = {s: by_security[s] for s in chosen}
        return DataSource(path, "parquet-dir", chosen, digest.hexdigest(), files_of)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        security = path.stem.upper()  # SPEC §1.5-2
        chosen = _select((security,), securities, max_sheets, path)
        return DataSource(path, "parquet-file", chosen, file_sha256(path), {security: path})
    if suffix in WORKBOOK_SUFFIXES:
        return _open_workbook_source(path, securities, max_sheets, cache_dir)
    raise InputError(
        f"{path}: unsupported file type {suffix or '(none)'!r}; "
        "pass an .xlsx workbook, a folder of .parquet files or one .parquet file"
    )


def _open_url(
    url: str, securities: Sequence[str] | None, max_sheets: int | None, cache_url: str | None
) -> DataSource:
    """A source at a URL (Parquet read where it is; a workbook fetched and converted), or a
    local workbook whose cache is published to `cache_url` for remote workers."""
    if not remote.is_url(url) or urlsplit(url).path.lower().endswith(WORKBOOK_SUFFIXES):
        local = remote.fetch(url, settings.cache_dir() / "downloads") if remote.is_url(url) else url
        source = open_data(local, securities=securities, max_sheets=max_sheets,
                           cache_dir=settings.parquet_cache_dir())  # fmt: skip
        if source.kind != "xlsx" or not cache_url:
            return dataclasses.replace(source, path=url)
        folder = next(iter(source._files.values())).parent  # <local cache>/<sha256>
        published = remote.publish(folder, remote.join(cache_url, folder.name))
        files = {s: remote.join(published, f.name) for s, f in source._files.items()}
        return dataclasses.replace(source, path=url, _files=files)
    named = remote.parquet_files(url)
    by_security = {PurePosixPath(name).stem.upper(): u for name, u in named.items()}  # §1.5-2
    chosen = _select(tuple(by_security), securities, max_sheets, url)
    if len(named) == 1 and urlsplit(url).path.lower().endswith(".parquet"):
        digest = remote.sha256(url)  # as a local file's: the bytes alone
    else:
        lines = (f"{name}\0{remote.sha256(u)}\n" for name, u in named.items())
        digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    kind = "parquet-file" if len(named) == 1 else "parquet-dir"
    return DataSource(url, kind, chosen, digest, {s: by_security[s] for s in chosen})


def _open_workbook_source(
    path: Path,
    securities: Sequence[str] | None,
    max_sheets: int | None,
    cache_dir: str | Path | None,
) -> DataSource:
    """A DataSource over a workbook: select sheets, then convert or reuse their cache (in
    `cache_dir`/<sha256>, a folder apart from the workbook's own)."""
    names = sheet_names(open_workbook(path))
    if not names:
        raise InputError(f"workbook {path} has no worksheets")
    sheet_of = {_sheet_key(name): name for name in names}
    chosen = _select(tuple(sheet_of), securities, max_sheets, path)
    manifest = ensure_cache(
        path, default_cache_dir(path, cache_dir), sheets=[sheet_of[s] for s in chosen]
    )
    entries = {_sheet_key(e.sheet): e for e in manifest.sheets}
    entries = {s: entries[s] for s in chosen if s in entries}
    files = {s: entry_file(e, manifest.cache_dir) for s, e in entries.items()}
    files = {s: file for s, file in files.items() if file is not None}
    return DataSource(path, "xlsx", chosen, manifest.content_hash, files, entries)


def _open_history(
    path: Path, securities: Sequence[str] | None, max_sheets: int | None
) -> DataSource:
    """A DataSource over a tick history: the securities with stored days; the data hash is the
    hash of the day hashes of the chosen securities."""
    index, broken = read_index(path)
    available = tuple(s for s in read_marker(path).securities if s in index or s in broken)
    if not available:
        raise InputError(f"history {path} holds no days yet; ingest a drop folder (mmflow ingest)")
    chosen = _select(available, securities, max_sheets, path)
    days = {s: index[s] for s in chosen if s in index}
    errors = {s: broken[s] for s in chosen if s in broken}
    return DataSource(path, "history", chosen, history_hash(days), _days=days, _broken=errors)


def _sheet_key(sheet: str) -> str:
    """How a sheet is listed among the securities: its security (SPEC §1.5-1), or, when the name
    leaves none, the sheet name itself, so that sheet fails alone with its reason."""
    return security_name(sheet) or sheet


def normalise(table_or_frame: pa.Table | pd.DataFrame) -> tuple[Events, RowCounts]:
    """SPEC §1.3 on one table of raw Bloomberg (`Dates, Type, Price, Size`) or §1.4 columns."""
    return _normalise(as_table(table_or_frame), "input table", lambda k: f"row {k} (0-based)")


def _normalise(
    table: pa.Table, where: str, row_label: Callable[[int], str]
) -> tuple[Events, RowCounts]:
    """SPEC §1.3 and the number rules of `engine.data.rules` on an Arrow table; `where` and
    `row_label` name the place of a bad Type."""
    columns = map_columns(table.column_names, where)
    n = table.num_rows
    timestamp = timestamp_ns(table.column(columns["timestamp"]), columns["timestamp"], where)
    price, price_status = rules.column_numbers(table.column(columns["price"]))
    if "volume" in columns:
        volume, volume_status = rules.column_numbers(table.column(columns["volume"]))
    else:  # SPEC §1.3-1: a missing column is all-null; empty sizes are kept
        volume, volume_status = np.full(n, np.nan), np.full(n, rules.EMPTY, dtype=np.int8)
    reason = rules.drop_reasons(timestamp != NAT, price, price_status, volume, volume_status)
    keep = reason == rules.KEEP
    rows_kept = int(np.count_nonzero(keep))
    type_column = table.column(columns["type"])
    if rows_kept < n:
        timestamp, price, volume = timestamp[keep], price[keep], volume[keep]
        # Arrow's filter copies runs of kept rows in blocks, faster than a numpy mask here.
        type_column = type_column.filter(pa.array(keep))
    try:
        kind = kinds(type_column)
        if (kind < 0).any():
            raise _bad_type_error(type_column, kind < 0, np.flatnonzero(keep), where, row_label)
    except pa.ArrowException:  # a list, struct, binary... column: no Type at all
        raise InputError(
            f"{where}: column {columns['type']!r} holds {type_column.type}, not the text "
            "BID, ASK or TRADE"
        ) from None
    counts = RowCounts(rows_read=n, rows_kept=rows_kept, **rules.count_reasons(reason))
    # Owned, writable, contiguous arrays, so kernels and callers never see Arrow's read-only buffers.
    arrays = (np.require(a, requirements="CW") for a in (timestamp, kind, price, volume))
    return Events(*arrays), counts


def _bad_type_error(
    column: pa.ChunkedArray,
    unknown: np.ndarray,
    kept_rows: np.ndarray,
    where: str,
    row_label: Callable[[int], str],
) -> InputError:
    """The InputError for Type values that are not BID/ASK/TRADE: first row and distinct values."""
    rows = np.flatnonzero(unknown)
    values = pc.unique(pc.take(column, pa.array(rows))).to_pylist()
    shown = sorted({str(v) if v is not None else "(empty)" for v in values})[:10]
    first = int(kept_rows[rows[0]])  # row index in the table before the drops
    return InputError(
        f"{where}: Type must be BID, ASK or TRADE, but {len(rows)} row(s) have {shown} "
        f"(first at {row_label(first)}); correct or delete those rows and run again"
    )


def _read_parquet(file: Path) -> pa.Table:
    """Read the mapped columns of a Parquet file, with Type as a dictionary (fast, SPEC §1.4)."""
    try:
        with pq.ParquetFile(file, read_dictionary=["type"]) as handle:
            columns = map_columns(handle.schema_arrow.names, f"file {file}")
            if columns["type"] == "type":  # the SPEC §1.4 name: no second open
                return handle.read(columns=list(columns.values()))
        with pq.ParquetFile(file, read_dictionary=[columns["type"]]) as handle:
            return handle.read(columns=list(columns.values()))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"file {file} could not be read as Parquet ({exc}); re-create it "
            "(mmflow convert) or remove it from the folder"
        ) from exc


def _files_by_security(files: Sequence[Path], folder: Path) -> dict[str, Path]:
    """Security -> file for a Parquet folder (SPEC §1.5-2: stem upper-cased), name order."""
    out: dict[str, Path] = {}
    for file in files:
        security = file.stem.upper()
        if security in out:
            raise InputError(
                f"folder {folder}: {out[security].name} and {file.name} both name security "
                f"{security!r}; remove one of them"
            )
        out[security] = file
    return out


def _select(
    available: tuple[str, ...],
    securities: Sequence[str] | None,
    max_sheets: int | None,
    path: Path,
) -> tuple[str, ...]:
    """The chosen securities in source order: exact names (a sheet name also works), then first N."""
    chosen = available
    if securities is not None:
        if isinstance(securities, str):
            securities = [securities]
        wanted = {security_name(name) for name in securities}
        for name in securities:
            if security_name(name) not in available:
                raise _unknown_security(name, available, path)
        chosen = tuple(s for s in available if s in wanted)
    if max_sheets is not None:
        chosen = chosen[:max_sheets]
    return chosen


def _unknown_security(name: str, available: Sequence[str], path: Path) -> InputError:
    """InputError for an unknown security, with a "did you mean" and the available names."""
    close = difflib.get_close_matches(security_name(name).upper(), list(available), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return InputError(
        f"unknown security {name!r} in {path}.{hint} Available: {', '.join(available)}"
    )
