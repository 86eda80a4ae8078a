"""Read-only SQL over the results store, for people: the statement check, the hardened connection,
and streaming the answer as Arrow record batches (to a terminal, CSV or Parquet) in bounded memory.

Two lines of defence. First, `check_read_only` lets through one statement that only reads (SELECT
and friends, EXPLAIN of such a statement, reading PRAGMAs). Second, `open_read_only` opens the
store read-only and has DuckDB itself refuse everything else, then locks its configuration so no
statement can turn a setting back: no external access (no file but the store, no network, no
COPY/EXPORT/ATTACH of files, no INSTALL/LOAD, no secrets on disk, no pandas replacement scans), no
extension auto-install or auto-load, no community extensions, no spilling to a temporary directory.
Files under the `readable` paths may be read; DuckDB 2.0 has no read-only allowance, so for those
paths (only) the statement check is what refuses writes.
"""

from __future__ import annotations

import csv as csv_module
import io
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

BATCH_ROWS = 100_000
# MULTI is DuckDB's PIVOT/UNPIVOT (several reads); EXPLAIN is checked by its inner statement.
READ_TYPES = frozenset(
    duckdb.StatementType.__members__[name]
    for name in ("SELECT", "EXPLAIN", "PRAGMA", "MULTI")
    if name in duckdb.StatementType.__members__
)
# PRAGMAs that only read; every other PRAGMA changes a setting or the store.
READ_PRAGMAS = frozenset(
    "collations database_list database_size extension_versions functions metadata_info platform "
    "show show_databases show_tables show_tables_expanded storage_info table_info user_agent "
    "version".split()
)
# Set before any user SQL runs; DuckDB refuses these before the database has started.
_CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "allow_extension_repositories": "forbidden",
}
_PREFIX = r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*"  # whitespace and comments before a keyword
_EXPLAIN = re.compile(_PREFIX + r"EXPLAIN\s+(?:ANALY[SZ]E\b\s*)?", re.IGNORECASE | re.DOTALL)
_OPTIONS = re.compile(r"\((?:[^()]|\([^()]*\))*\)\s*", re.DOTALL)
_PRAGMA = re.compile(_PREFIX + r"PRAGMA\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE | re.DOTALL)
# DuckDB's statement type names, as users write the statements.
_WRITTEN_AS = {
    "LOAD": "INSTALL/LOAD",
    "SET": "SET/RESET/USE/PRAGMA name = value",
    "VARIABLE_SET": "SET VARIABLE",
    "MERGE_INTO": "MERGE",
    "COPY_DATABASE": "COPY FROM DATABASE",
    "CREATE_FUNC": "CREATE MACRO/FUNCTION",
}
READS = "SELECT, FROM, WITH, DESCRIBE, SHOW, SUMMARIZE, PIVOT, EXPLAIN of a read, reading PRAGMAs"


class QueryError(Exception):
    """A refused or failed query; the message says why and what to do."""


def check_read_only(sql: str) -> str:
    """`sql` if it is one statement that only reads; QueryError otherwise."""
    statement = _one_statement(sql)
    _check_statement(statement, statement.query)
    return sql


def _one_statement(sql: str):
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"the SQL does not parse: {_first_line(exc)}") from None
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise QueryError(f"give one statement at a time ({len(statements)} given)")
    return statements[0]


def _check_statement(statement, text: str) -> None:
    kind = statement.type
    if kind not in READ_TYPES:
        name = getattr(kind, "name", str(kind))
        _refuse(f"{_WRITTEN_AS.get(name, name)} statements can write or change settings")
    if kind == duckdb.StatementType.PRAGMA:
        match = _PRAGMA.match(text)
        if not match or match.group(1).lower() not in READ_PRAGMAS:
            _refuse("this PRAGMA changes a setting or the store")
    if kind == duckdb.StatementType.EXPLAIN:
        _check_explained(text)


def _check_explained(text: str) -> None:
    """The statement inside EXPLAIN [ANALYZE] [(options)] must pass too (ANALYZE runs it)."""
    match = _EXPLAIN.match(text)
    if not match:
        _refuse("cannot find the statement inside this EXPLAIN")
    rest = text[match.end() :]
    options = _OPTIONS.match(rest)
    candidates = [rest] + ([rest[options.end() :]] if options else [])
    parsed = []
    for candidate in candidates:  # `(...)` may be EXPLAIN options or a parenthesised query
        try:
            statements = duckdb.extract_statements(candidate)
        except duckdb.Error:
            continue
        if len(statements) == 1:
            parsed.append(statements[0])
    if not parsed:
        _refuse("cannot check the statement inside this EXPLAIN")
    for inner in parsed:
        _check_statement(inner, inner.query)


def _refuse(why: str):
    raise QueryError(
        f"refused: {why}; `mmflow query` only reads ({READS}). "
        "Results are written by `mmflow run` / `mmflow sweep`."
    )


@contextmanager
def open_read_only(
    path: str | Path,
    *,
    readable: Sequence[str | Path] = (),
    retries: int = 3,
    retry_delay: float = 1.0,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the store that can read no other file than under `readable`,
    reach no network, install or load no extension, and change no setting; closed on exit."""
    target = Path(path)
    if not target.is_file():
        raise QueryError(f"no store at {target}; run `mmflow run` first")
    paths = [Path(p).resolve() for p in readable]
    for missing in (p for p in paths if not p.exists()):
        raise QueryError(f"--read {missing}: no such file or directory")
    con = _connect(target, retries, retry_delay)
    try:
        _harden(con, paths)
        yield con
    finally:
        con.close()


def _connect(target: Path, retries: int, retry_delay: float) -> duckdb.DuckDBPyConnection:
    for attempt in range(retries + 1):
        try:
            return duckdb.connect(str(target), read_only=True, config=dict(_CONNECT_CONFIG))
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc) or attempt == retries:
                raise QueryError(
                    f"cannot open the store {target}: {_first_line(exc)} (a run or sweep "
                    "writing it holds the file; try again when it has finished)"
                ) from None
            time.sleep(retry_delay)
        except duckdb.Error as exc:
            raise QueryError(f"cannot open the store {target}: {_first_line(exc)}") from None
    raise AssertionError("unreachable")


def _harden(con: duckdb.DuckDBPyConnection, readable: list[Path]) -> None:
    """Allow-list, then switch external access off, then lock (the order DuckDB requires)."""
    con.execute("SET temp_directory = ''")  # no spilling: nothing written next to the store
    dirs = [str(p).rstrip("/") + "/" for p in readable if p.is_dir()]
    files = [str(p) for p in readable if not p.is_dir()]
    if dirs:
        con.execute("SET allowed_directories = ?", [dirs])
    if files:
        con.execute("SET allowed_paths = ?", [files])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


@contextmanager
def stream(
    con: duckdb.DuckDBPyConnection, sql: str, *, batch_rows: int = BATCH_ROWS
) -> Iterator[pa.RecordBatchReader]:
    """The answer to `sql` as a RecordBatchReader, closed on exit (freeing the connection)."""
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise QueryError(_explain(exc)) from None
    if relation is None:  # a statement without an answer
        reader = pa.RecordBatchReader.from_batches(pa.schema([]), [])
    else:
        try:
            reader = relation.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise QueryError(_explain(exc)) from None
    try:
        yield reader
    finally:
        reader.close()


def run_query(path: str | Path, sql: str, *, readable: Sequence[str | Path] = ()) -> pa.Table:
    """Check `sql`, run it on a hardened read-only connection, return the whole answer (for
    answers that fit in memory; `stream` gives big ones batch by batch)."""
    check_read_only(sql)
    with open_read_only(path, readable=readable) as con, stream(con, sql) as reader:
        return pa.Table.from_batches(list(batches(reader)), schema=reader.schema)


def batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches, with an error raised by the query mid-way as a QueryError."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise QueryError(_explain(exc)) from None
        if batch.num_rows:
            yield batch


def take(source: Iterator[pa.RecordBatch], schema: pa.Schema, rows: int) -> tuple[pa.Table, int]:
    """Up to `rows` rows from `source`, and how many more rows the last batch read held."""
    taken: list[pa.RecordBatch] = []
    count = 0
    for batch in source:
        taken.append(batch.slice(0, rows - count))
        count += taken[-1].num_rows
        if count >= rows:
            return pa.Table.from_batches(taken, schema=schema), batch.num_rows - taken[-1].num_rows
    return pa.Table.from_batches(taken, schema=schema), 0


def chunks(source: Iterable[pa.RecordBatch], schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
    """`source` regrouped into tables of `rows` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in source:
        while batch.num_rows:
            part = batch.slice(0, rows - count)
            batch = batch.slice(part.num_rows)
            pending.append(part)
            count += part.num_rows
            if count == rows:
                yield pa.Table.from_batches(pending, schema=schema)
                pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending, schema=schema)


def write_files(
    source: Iterable[pa.RecordBatch], schema: pa.Schema, *, csv=None, parquet: Path | None = None
) -> int:
    """Write every batch to a CSV sink (a binary file object) and/or a Parquet file; row count."""
    parquet_writer = pq.ParquetWriter(parquet, schema) if parquet is not None else None
    if csv is not None:
        header = io.StringIO()
        csv_module.writer(header, lineterminator="\n").writerow(schema.names)
        csv.write(header.getvalue().encode())
    rows = 0
    try:
        for batch in source:
            if csv is not None:
                csv.write(_csv_bytes(_csv_batch(batch)))
            if parquet_writer is not None:
                parquet_writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if parquet_writer is not None:
            parquet_writer.close()
    return rows


def _csv_bytes(batch: pa.RecordBatch) -> bytes:
    """CSV rows quoted only where a value needs it (pyarrow's "needed" quotes every string)."""
    for style in ("none", "needed"):
        buffer = io.BytesIO()
        options = pa_csv.WriteOptions(include_header=False, quoting_style=style)
        try:
            pa_csv.write_csv(batch, buffer, options)
        except pa.ArrowInvalid:  # a value holds a comma, quote or line break
            continue
        return buffer.getvalue()
    raise AssertionError("unreachable")


def _csv_safe(type_: pa.DataType) -> bool:
    """Types pyarrow's CSV writer can write (nested and extension types it cannot)."""
    nested = pa.types.is_nested(type_) or isinstance(type_, pa.ExtensionType)
    return not nested and not pa.types.is_interval(type_)


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    fields = [f if _csv_safe(f.type) else pa.field(f.name, pa.string()) for f in schema]
    return pa.schema(fields)


def _csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Nested values (LIST, STRUCT, MAP) as their Python text, e.g. `[1, 2]`."""
    if all(_csv_safe(f.type) for f in batch.schema):
        return batch
    columns = [
        column if _csv_safe(column.type) else pa.array(as_text(column), pa.string())
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, schema=_csv_schema(batch.schema))


def as_text(column: pa.Array) -> list[str | None]:
    """Each value of a nested column as text (missing stays missing)."""
    return [None if v is None else str(v) for v in column.to_pylist()]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _explain(exc: BaseException) -> str:
    """DuckDB's message, plus what to do when the sandbox refused it."""
    message = _first_line(exc)
    if "disabled by configuration" in message or "configuration has been locked" in message:
        message += (
            "; `mmflow query` reads only the store (and files under --read PATH), and cannot "
            "write files, install or load extensions, or change settings"
        )
    return message
