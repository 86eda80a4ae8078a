"""The one entry point to tick data: open a source, pick securities, load one security as Events.

Owns `open_data` (an .xlsx workbook through its Parquet cache, a folder of .parquet files, or one
.parquet file), `DataSource.load`, and `normalise`, the row normalisation of SPEC §1.3. Loading is
columnar (pyarrow + numpy, no per-row Python) because every backtest task starts with it.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.data.parquet import SheetEntry, ensure_cache, file_sha256
from engine.data.workbook import (
    FIRST_DATA_ROW,
    WORKBOOK_SUFFIXES,
    InputError,
    open_workbook,
    security_name,
    sheet_names,
)
from engine.types import ASK, BID, TRADE, Events, RowCounts

__all__ = ["DataSource", "InputError", "normalise", "open_data"]

# SPEC §1.3-2: Type is compared stripped and lower-cased.
KIND_OF_TYPE = {"bid": BID, "ask": ASK, "trade": TRADE}
VOLUME_NAMES = frozenset({"size", "vol", "volume", "qty", "quantity"})
_NAT = np.iinfo(np.int64).min
_FIX_DATA = (
    "the data must start at row 4 under the header Dates, Type, Price, Size, "
    "with Excel datetimes in Dates and numbers in Price"
)


@dataclass(frozen=True)
class DataSource:
    """An opened tick-data source: its securities, a content hash, and `load` per security."""

    path: Path
    kind: str  # "xlsx" | "parquet-dir" | "parquet-file"
    securities: tuple[str, ...]  # in workbook / sorted file order
    content_hash: str  # sha256 of the workbook, or of the Parquet files (name order) combined
    _files: dict[str, Path] = field(default_factory=dict, repr=False, compare=False)
    _sheets: dict[str, SheetEntry] = field(default_factory=dict, repr=False, compare=False)

    def load(self, security: str) -> tuple[Events, RowCounts]:
        """One security's rows after SPEC §1.3, with its row counts; raises InputError."""
        if security not in self.securities:
            raise _unknown_security(security, self.securities, self.path)
        if self.kind == "xlsx":
            events, counts, where = self._load_sheet(self._sheets[security])
        else:
            where = f"file {self._files[security]} (security {security})"
            table = _read_parquet(self._files[security])
            events, counts = _normalise(table, where, lambda k: f"row {k} (0-based)")
        if counts.rows_kept == 0:
            raise InputError(
                f"{where}: no usable rows ({counts.rows_read} read: "
                f"{counts.dropped_bad_timestamp} with unreadable Dates, "
                f"{counts.dropped_bad_price} with unreadable Price, "
                f"{counts.dropped_nonpositive_price} with Price <= 0); {_FIX_DATA}"
            )
        return events, counts

    def _load_sheet(self, entry: SheetEntry) -> tuple[Events, RowCounts, str]:
        """Load a workbook sheet from the cache, carrying the cache's drop counts (SPEC §0)."""
        where = f"workbook {self.path}, sheet {entry.sheet!r}"
        if entry.error is not None:
            raise InputError(entry.error)
        file = self._files[entry.security]
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
            dropped_nonpositive_price=counts.dropped_nonpositive_price,
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
    """Open a workbook (through its Parquet cache), a folder of .parquet files, or one .parquet file."""
    path = Path(path).expanduser().resolve()
    if max_sheets is not None and max_sheets < 1:
        raise InputError(f"max_sheets must be at least 1, got {max_sheets}")
    if not path.exists():
        raise InputError(
            f"{path} not found: pass an .xlsx workbook, a folder of .parquet files or one .parquet file"
        )
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


def _open_workbook_source(
    path: Path,
    securities: Sequence[str] | None,
    max_sheets: int | None,
    cache_dir: str | Path | None,
) -> DataSource:
    """A DataSource over a workbook: select sheets, then convert or reuse their cache."""
    names = sheet_names(open_workbook(path))
    if not names:
        raise InputError(f"workbook {path} has no worksheets")
    sheet_of = {security_name(name): name for name in names}
    chosen = _select(tuple(sheet_of), securities, max_sheets, path)
    manifest = ensure_cache(path, cache_dir, sheets=[sheet_of[s] for s in chosen])
    entries = {e.security: e for e in manifest.sheets if e.security in chosen}
    files = {s: manifest.cache_dir / e.file for s, e in entries.items() if e.file is not None}
    return DataSource(path, "xlsx", chosen, manifest.content_hash, files, entries)


def normalise(table_or_frame: pa.Table | pd.DataFrame) -> tuple[Events, RowCounts]:
    """SPEC §1.3 on one table of raw Bloomberg (`Dates, Type, Price, Size`) or §1.4 columns."""
    return _normalise(_as_table(table_or_frame), "input table", lambda k: f"row {k} (0-based)")


def _normalise(
    table: pa.Table, where: str, row_label: Callable[[int], str]
) -> tuple[Events, RowCounts]:
    """SPEC §1.3 on an Arrow table; `where` and `row_label` name the place of a bad Type."""
    columns = _map_columns(table.column_names, where)
    n = table.num_rows
    timestamp = _timestamp_ns(table.column(columns["timestamp"]))
    price = _floats(table.column(columns["price"]))

    # SPEC §1.3-3: drop NaT stamps and NaN prices, then prices <= 0; zero/NaN volumes stay.
    keep = (timestamp != _NAT) & (price > 0)  # NaN > 0 is False
    dropped = np.flatnonzero(~keep)  # few rows: classify only these
    bad_timestamp = int(np.count_nonzero(timestamp[dropped] == _NAT))
    bad_price = int(np.count_nonzero(np.isnan(price[dropped]) & (timestamp[dropped] != _NAT)))
    rows_kept = n - len(dropped)
    if rows_kept < n:
        timestamp, price = timestamp[keep], price[keep]
        # Arrow's filter copies runs of kept rows in blocks, faster than a numpy mask here.
        table = table.select([columns[c] for c in ("type", "volume") if c in columns])
        table = table.filter(pa.array(keep))
    type_column = table.column(columns["type"])
    kind = _kinds(type_column)
    if (kind < 0).any():
        raise _bad_type_error(type_column, kind < 0, np.flatnonzero(keep), where, row_label)
    volume = (
        _floats(table.column(columns["volume"]))
        if "volume" in columns
        else np.full(rows_kept, np.nan)
    )
    counts = RowCounts(
        rows_read=n,
        dropped_bad_timestamp=bad_timestamp,
        dropped_bad_price=bad_price,
        dropped_nonpositive_price=len(dropped) - bad_timestamp - bad_price,
        rows_kept=rows_kept,
    )
    # Owned, writable, contiguous arrays, so kernels and callers never see Arrow's read-only buffers.
    arrays = (np.require(a, requirements="CW") for a in (timestamp, kind, price, volume))
    return Events(*arrays), counts


def _map_columns(names: Sequence[str], where: str) -> dict[str, str]:
    """Source column of each target name, by SPEC §1.3-1; timestamp, type and price are required."""
    found: dict[str, str] = {}
    for name in names:
        key = str(name).strip().lower()
        if "date" in key or "time" in key:
            target = "timestamp"
        elif key == "type":
            target = "type"
        elif "price" in key:
            target = "price"
        elif key in VOLUME_NAMES:
            target = "volume"
        else:
            continue
        if target in found:
            raise InputError(
                f"{where}: columns {found[target]!r} and {name!r} both map to {target!r}; keep one"
            )
        found[target] = name
    missing = [t for t in ("timestamp", "type", "price") if t not in found]
    if missing:
        raise InputError(
            f"{where}: no column for {', '.join(missing)} among {list(names)}; expected the "
            "Bloomberg columns Dates, Type, Price, Size (or timestamp, type, price, volume)"
        )
    return found


def _timestamp_ns(column: pa.ChunkedArray) -> np.ndarray:
    """int64 ns of naive local time, int64-min where missing or unparseable (SPEC §1.3-2)."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            column = pc.local_timestamp(column)
        if column.type.unit != "ns":
            column = column.cast(pa.timestamp("ns"))
        return np.asarray(column.to_numpy()).view(np.int64)
    if pa.types.is_date(kind):
        return np.asarray(column.cast(pa.timestamp("ns")).to_numpy()).view(np.int64)
    parsed = pd.to_datetime(column.to_pandas(), errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """float64 values, NaN where missing or not a number (SPEC §1.3-2)."""
    kind = column.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        values = column.to_numpy()
        return values if values.dtype == np.float64 else values.astype(np.float64)
    if pa.types.is_decimal(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.float64()).to_numpy()
    return pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(dtype=np.float64)


def _kinds(column: pa.ChunkedArray) -> np.ndarray:
    """int8 BID/ASK/TRADE per row from the stripped, lower-cased Type; -1 for anything else."""
    if not pa.types.is_dictionary(column.type):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = column.cast(pa.string())
        column = pc.dictionary_encode(column)
    parts = [np.empty(0, dtype=np.int8)]
    for chunk in column.chunks:
        words = chunk.dictionary.to_pylist()
        table = [KIND_OF_TYPE.get(str(w).strip().lower(), -1) for w in words] + [-1]
        indices = chunk.indices
        codes = (indices.fill_null(len(words)) if indices.null_count else indices).to_numpy()
        parts.append(np.asarray(table, dtype=np.int8)[codes])
    return np.concatenate(parts)


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
            columns = _map_columns(handle.schema_arrow.names, f"file {file}")
            if columns["type"] == "type":  # the SPEC §1.4 name: no second open
                return handle.read(columns=list(columns.values()))
        with pq.ParquetFile(file, read_dictionary=[columns["type"]]) as handle:
            return handle.read(columns=list(columns.values()))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"file {file} could not be read as Parquet ({exc}); re-create it "
            "(mmflow convert) or remove it from the folder"
        ) from exc


def _as_table(data: pa.Table | pa.RecordBatch | pd.DataFrame) -> pa.Table:
    """An Arrow table of the mapped columns of a pandas or Arrow input."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        columns = _map_columns([str(c) for c in data.columns], "input frame")
        out = {}
        for target, name in columns.items():
            series = data[name]
            if target == "type":
                series = series.map(lambda v: v if v is None or isinstance(v, str) else str(v))
                series = series.where(series.notna(), None)
            elif target == "timestamp" and not pd.api.types.is_datetime64_any_dtype(series):
                series = pd.to_datetime(series, errors="coerce", format="mixed")
            elif target in ("price", "volume") and not pd.api.types.is_numeric_dtype(series):
                series = pd.to_numeric(series, errors="coerce")
            out[name] = pa.array(series, from_pandas=True)
        return pa.table(out)
    raise TypeError(
        f"normalise takes a pyarrow Table or a pandas DataFrame, not {type(data).__name__}"
    )


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
