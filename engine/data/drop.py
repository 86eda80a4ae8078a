"""A drop folder's files, and one file read into a canonical table per security.

Owns which files of a drop folder are ingested (workbooks and `.parquet` files, in any subfolder,
in path order; hidden and Excel lock files `~$...` skipped) and `read_drop_file`: a workbook's
sheets (SPEC §1.1-1.5, through `engine.data.workbook` and its bounded reading) or a Parquet file
(SPEC §1.4-1.5), each as a table in the history schema after the number rules of
`engine.data.rules` (rows with Price <= 0 stay, as in the Parquet cache, SPEC §1.4-3). A bad sheet
is an error of that sheet only; a file that cannot be read at all raises InputError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.data import rules
from engine.data.columns import NAT, map_columns, timestamp_ns
from engine.data.days import canonical
from engine.data.errors import InputError
from engine.data.source import normalise
from engine.data.workbook import (
    WORKBOOK_SUFFIXES,
    open_workbook,
    read_sheet,
    sheet_names,
)

DROP_SUFFIXES = (*WORKBOOK_SUFFIXES, ".parquet")


@dataclass
class DropFile:
    """What one drop file holds: canonical tables by security, and the sheets that failed."""

    path: Path
    sheets: int = 0  # sheets (or files) looked at
    rows_read: int = 0
    rows_dropped: int = 0  # rows no day could hold: bad Dates, Price or Size (engine.data.rules)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # sheet -> the InputError message


def drop_files(folder: str | Path) -> list[Path]:
    """The files to ingest from `folder` (subfolders too), in path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"drop folder {folder} not found: create it or fix --drop / drop =")
    found = [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in DROP_SUFFIXES
        and not path.name.startswith((".", "~$"))
        and not any(part.startswith(".") for part in path.relative_to(folder).parts[:-1])
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_drop_file(path: Path) -> DropFile:
    """Every security of a workbook or Parquet file as a validated canonical table."""
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path)
    book = open_workbook(path)
    names = sheet_names(book)
    if not names:
        raise InputError(f"workbook {path} has no worksheets")
    out = DropFile(path=path, sheets=len(names))
    for sheet in names:
        try:
            read = read_sheet(book, sheet, path=path)
            out.rows_read += read.rows_read
            out.rows_dropped += read.rows_read - read.table.num_rows
            if read.security in out.tables:
                raise InputError(
                    f"workbook {path}, sheet {sheet!r}: security {read.security!r} appears in "
                    "an earlier sheet too; keep one sheet per security"
                )
            out.tables[read.security] = _validated(
                canonical(read.table), f"workbook {path}, sheet {sheet!r}"
            )
        except InputError as exc:
            out.errors[sheet] = str(exc)
    return out


def _validated(table: pa.Table, where: str) -> pa.Table:
    """`table` if SPEC §1.3 leaves it usable rows and every Type is BID/ASK/TRADE."""
    try:
        _, counts = normalise(table)
    except InputError as exc:
        raise InputError(f"{where}: {str(exc).removeprefix('input table: ')}") from None
    if counts.rows_kept == 0:
        raise InputError(
            f"{where}: no usable rows ({counts.rows_read} read; every row has a bad or "
            "non-positive Price); export the sheet with its tick data"
        )
    return table


def _text(column: pa.ChunkedArray, name: str, where: str) -> pa.ChunkedArray:
    """The Type column as plain text; InputError when it holds something else."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise InputError(f"{where}: column {name!r} holds {column.type}, not text")
    return column


def _read_parquet(path: Path) -> DropFile:
    """A Parquet file of one security (SPEC §1.5-2: its stem upper-cased)."""
    where = f"file {path}"
    security = path.stem.upper()
    try:
        raw = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{where} could not be read as Parquet ({exc}); re-export it") from None
    columns = map_columns(raw.column_names, where)
    stamps = timestamp_ns(raw.column(columns["timestamp"]), columns["timestamp"], where)
    price, price_status = rules.column_numbers(raw.column(columns["price"]))
    n = raw.num_rows
    if "volume" in columns:  # else SPEC §1.3-1: a missing column is all-null
        volume, volume_status = rules.column_numbers(raw.column(columns["volume"]))
    else:
        volume, volume_status = np.full(n, np.nan), np.full(n, rules.EMPTY, dtype=np.int8)
    reason = rules.drop_reasons(stamps != NAT, price, price_status, volume, volume_status)
    nonpositive = reason == rules.NONPOSITIVE_PRICE  # kept, as in the cache (SPEC §1.4-3)
    keep = (reason == rules.KEEP) | nonpositive
    with np.errstate(invalid="ignore"):
        sized = np.isfinite(volume) & (volume >= 0) & (volume <= rules.MAX_SIZE)
    volume = np.where(nonpositive & ~sized, np.nan, volume)  # as the workbook reader does
    table = pa.table(
        {
            "timestamp": pa.array(stamps[keep]).cast(pa.timestamp("ns")),
            "type": _text(raw.column(columns["type"]), columns["type"], where).filter(
                pa.array(keep)
            ),
            "price": pa.array(price[keep]),
            "volume": pa.array(volume[keep], from_pandas=True),
        }
    )
    out = DropFile(path=path, sheets=1, rows_read=n, rows_dropped=int(n - keep.sum()))
    try:  # a Parquet file is one security: its "sheet" is the file
        out.tables[security] = _validated(canonical(table), where)
    except InputError as exc:
        out.errors[path.name] = str(exc)
    return out
