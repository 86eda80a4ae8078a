"""Tick data by trading day: the tick history's folder layout, its day files and their hashes.

Owns the read side of a tick history (what `open_data` needs; the ingest that writes one is
`engine.data.history`'s): a folder with a `history.json` marker and one Parquet file per security
and trading date, `<history>/security=<safe stem>/date=YYYY-MM-DD/part.parquet`, in the SPEC §1.4
schema (`timestamp` timestamp[ns], `type` string, `price` double, `volume` int64; rows in file
order within the day). The marker maps each security name, as written in the data, to its safe
stem (`engine.paths`): a name never becomes a path unchanged. Each day file carries its security,
date, row count and the sha256 of its rows in its Parquet metadata, so the history describes
itself: a run's data hash is the hash of the day hashes it used, whatever the store says.

Also the day-level tools of the ingest: `canonical` (one table in the history schema),
`split_by_day`, `day_hash` and `write_day` (temp file + rename: a reader sees a whole day or none).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.data.errors import InputError
from engine.paths import inside
from engine.types import NS_PER_DAY

MARKER = "history.json"
FORMAT = 1
DAY_FILE = "part.parquet"
COLUMNS = ("timestamp", "type", "price", "volume")
_EPOCH = dt.date(1970, 1, 1)
_META = {
    "security": b"mmflow.security",
    "date": b"mmflow.date",
    "hash": b"mmflow.day_hash",
    "rows": b"mmflow.rows",
}


@dataclass(frozen=True)
class Marker:
    """The `history.json` of a history: its id and security name -> file stem, first-seen order."""

    history_id: str
    securities: Mapping[str, str]

    def to_json(self) -> str:
        """The marker file's text."""
        body = {
            "format": FORMAT,
            "history_id": self.history_id,
            "securities": dict(self.securities),
        }
        return json.dumps(body, indent=1, ensure_ascii=False)


@dataclass(frozen=True)
class DayFile:
    """One stored trading day of one security: its rows' hash and count, and its file."""

    security: str
    date: dt.date
    content_hash: str
    rows: int
    path: Path


def is_history(path: str | Path) -> bool:
    """A folder holding a `history.json` marker."""
    return (Path(path) / MARKER).is_file()


def read_marker(root: str | Path) -> Marker:
    """The marker of the history at `root`; InputError if it is missing or unreadable."""
    file = Path(root) / MARKER
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
        if body.get("format") != FORMAT:
            raise ValueError(f"format {body.get('format')!r}, expected {FORMAT}")
        securities = {str(k): str(v) for k, v in body["securities"].items()}
        return Marker(str(body["history_id"]), securities)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{file} is not a tick-history marker ({exc}); point --history at a folder made by "
            "`mmflow ingest`, or at a new or empty folder"
        ) from None


def write_marker(root: Path, marker: Marker) -> None:
    """Replace the marker atomically."""
    atomic_write_bytes(root / MARKER, marker.to_json().encode())


def day_path(root: Path, stem: str, day: dt.date) -> Path:
    """`<root>/security=<stem>/date=<day>/part.parquet`, refused if it would leave `root`."""
    return inside(root, f"security={stem}/date={day.isoformat()}/{DAY_FILE}")


def read_index(
    root: str | Path,
) -> tuple[dict[str, tuple[DayFile, ...]], dict[str, str]]:
    """Security -> its stored days in date order (from the day files' metadata), in marker
    order, for the securities with at least one day; and security -> the error of each security
    with an unreadable day file (it fails alone, the others stay usable)."""
    root = Path(root)
    marker = read_marker(root)
    index, broken = {}, {}
    for name, stem in marker.securities.items():
        files = sorted((root / f"security={stem}").glob(f"date=*/{DAY_FILE}"))
        try:
            days = [_day_file(name, file) for file in files]
        except InputError as exc:
            broken[name] = str(exc)
            continue
        if days:
            index[name] = tuple(sorted(days, key=lambda d: d.date))
    return index, broken


def _day_file(security: str, file: Path) -> DayFile:
    """A day file's entry, from its Parquet metadata (checked against its place)."""
    try:
        meta = pq.read_metadata(file).metadata or {}
        day = dt.date.fromisoformat(meta[_META["date"]].decode())
        entry = DayFile(
            security=meta[_META["security"]].decode(),
            date=day,
            content_hash=meta[_META["hash"]].decode(),
            rows=int(meta[_META["rows"]]),
            path=file,
        )
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise InputError(
            f"history day file {file} is unreadable ({exc}); re-ingest the drop file that held "
            "that day (mmflow ingest)"
        ) from None
    if entry.security != security or file.parent.name != f"date={day.isoformat()}":
        raise InputError(f"history day file {file} holds {entry.security} {day}: not its place")
    return entry


def read_days(days: Sequence[DayFile]) -> pa.Table:
    """The rows of `days`, concatenated in the given (date) order; Type as a dictionary."""
    tables = []
    for day in days:
        try:
            table = pq.read_table(day.path, read_dictionary=["type"])
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"history day file {day.path} could not be read ({exc}); re-ingest that day"
            ) from None
        tables.append(table.replace_schema_metadata(None))
    if not tables:
        raise InputError("no stored days to read")
    return pa.concat_tables(tables, promote_options="permissive")


def history_hash(index: Mapping[str, Sequence[DayFile]]) -> str:
    """The data hash of a run over a history: sha256 of the day hashes it uses, in order."""
    digest = hashlib.sha256(b"mmflow-history-v1\n")
    for security, days in index.items():
        for day in days:
            digest.update(f"{security}\0{day.date.isoformat()}\0{day.content_hash}\n".encode())
    return digest.hexdigest()


# ---- the day tools of the ingest ----------------------------------------------------------------


def canonical(table: pa.Table) -> pa.Table:
    """`table` (the SPEC §1.4 columns) in the history schema: Type as plain text, volume int64
    (float64 only when some size is not whole), no metadata."""
    type_column = table.column("type")
    if pa.types.is_dictionary(type_column.type):
        type_column = type_column.cast(type_column.type.value_type)
    volume = table.column("volume")
    if not pa.types.is_integer(volume.type):
        volume = _whole_or_float(volume.cast(pa.float64()).to_numpy(zero_copy_only=False))
    return pa.table(
        {
            "timestamp": table.column("timestamp").cast(pa.timestamp("ns")),
            "type": type_column.cast(pa.string()),
            "price": table.column("price").cast(pa.float64()),
            "volume": volume.cast(pa.int64()) if pa.types.is_integer(volume.type) else volume,
        }
    )


def _whole_or_float(volume: np.ndarray) -> pa.Array:
    """Sizes as int64 (NaN as null) when all whole, else float64."""
    missing = np.isnan(volume)
    finite = volume[~missing]
    if finite.size and not (np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 2**53)):
        return pa.array(volume, type=pa.float64(), from_pandas=True)
    return pa.array(np.where(missing, 0, volume).astype(np.int64), mask=missing)


def split_by_day(table: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    """(date, that date's rows in file order) per trading date, dates ascending."""
    if table.num_rows == 0:
        return []
    stamps = table.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
    days = stamps // NS_PER_DAY
    if np.any(days[1:] < days[:-1]):  # a row steps back over midnight: group, keep file order
        order = np.argsort(days, kind="stable")
        table, days = table.take(pa.array(order)), days[order]
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(days)]
    return [
        (_EPOCH + dt.timedelta(days=int(days[a])), table.slice(a, b - a))
        for a, b in zip(starts, ends, strict=True)
    ]


def day_hash(table: pa.Table) -> str:
    """sha256 of a canonical day table's rows: values, nulls and column types, in row order."""
    digest = hashlib.sha256(f"mmflow-day-v1\n{table.num_rows}\n".encode())
    for name in COLUMNS:
        column = table.column(name).combine_chunks()
        digest.update(f"{name}:{column.type}\n".encode())
        digest.update(np.packbits(column.is_valid().to_numpy(zero_copy_only=False)).tobytes())
        if pa.types.is_string(column.type):
            encoded = pc.dictionary_encode(column)
            digest.update(encoded.indices.fill_null(-1).to_numpy().astype("<i4").tobytes())
            words = encoded.dictionary.to_pylist()
            digest.update(json.dumps(words, ensure_ascii=False).encode())
        else:
            if pa.types.is_timestamp(column.type):
                column = column.cast(pa.int64())
            values = column.fill_null(0).to_numpy(zero_copy_only=False)
            digest.update(values.astype(values.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def write_day(path: Path, security: str, day: dt.date, table: pa.Table, content_hash: str) -> None:
    """Write one day file atomically (temp file + rename), its identity in the metadata."""
    meta = {
        _META["security"]: security.encode(),
        _META["date"]: day.isoformat().encode(),
        _META["hash"]: content_hash.encode(),
        _META["rows"]: str(table.num_rows).encode(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="snappy")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    tmp = _temp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def remove_temporaries(root: Path) -> int:
    """Delete temporary files a killed writer left in the history; how many."""
    found = [p for p in root.rglob(".*.tmp") if p.is_file()]
    for path in found:
        path.unlink(missing_ok=True)
    return len(found)
