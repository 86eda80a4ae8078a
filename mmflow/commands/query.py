"""`mmflow query "SQL"`: one read-only SQL statement over the results store. The terminal shows
at most --limit rows (--all for every row, --vertical for one field per line); --csv FILE and
--parquet FILE stream every row to a file in bounded memory (`--csv -` prints CSV to stdout).

Tables: runs, security_results, trades, daily_pnl, failures; views: v_run_summary,
v_strategy_comparison. Nothing can be written: the store is opened read-only, DuckDB itself
refuses every other file, the network, extensions and settings (its configuration is locked),
and statements that write are refused before they run. Local Parquet/CSV/JSON files can be read
with read_parquet/read_csv/read_json when their folder is given with --read PATH."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmflow.cli import UserError
from mmflow.commands.options import add_store

if TYPE_CHECKING:  # duckdb, pyarrow, pandas and rich load when the command runs, not for --help
    import pandas as pd
    import pyarrow as pa

ALL_CHUNK_ROWS = 10_000  # --all prints blocks of this many rows, so memory stays bounded


HELP = "run a read-only SQL query on the results store"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow query`."""
    p.add_argument("sql", help='one SQL statement, e.g. "SELECT * FROM v_run_summary LIMIT 5"')
    p.add_argument(
        "--limit",
        type=_positive,
        default=100,
        metavar="N",
        help="rows shown in the terminal (default 100)",
    )
    p.add_argument("--all", action="store_true", help="show every row in the terminal")
    p.add_argument(
        "--vertical", action="store_true", help="one field per line (for wide rows, like psql \\x)"
    )
    p.add_argument(
        "--csv", metavar="FILE", help="write every row as CSV to FILE (`-` for stdout) instead"
    )
    p.add_argument("--parquet", metavar="FILE", help="write every row to a Parquet FILE instead")
    p.add_argument(
        "--read",
        metavar="PATH",
        action="append",
        default=[],
        help="a folder or file the SQL may read with read_parquet/read_csv/read_json "
        "(repeatable); no other file is readable",
    )
    add_store(p)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def check_read_only(sql: str) -> str:
    """`sql` if it is one statement that only reads; UserError otherwise."""
    from engine.results import query as q

    try:
        return q.check_read_only(sql)
    except q.QueryError as exc:
        raise UserError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Check, run on a hardened read-only connection, then print or write the answer."""
    from engine.results import query as q
    from engine.settings import store_path

    sql = check_read_only(args.sql)
    store = Path(store_path(args.store))
    targets = [Path(t) for t in (args.csv, args.parquet) if t and t != "-"]
    for target in targets:
        _check_target(target, store)
    if len(targets) == 2 and targets[0].resolve() == targets[1].resolve():
        raise UserError("give --csv and --parquet different files")
    try:
        with q.open_read_only(store, readable=args.read) as con, q.stream(con, sql) as reader:
            if args.csv or args.parquet:
                _write(reader, args.csv, args.parquet)
            else:
                _show(reader, args)
    except q.QueryError as exc:
        raise UserError(str(exc)) from None
    except BrokenPipeError:  # the reader (`| head`) has had enough: stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _check_target(target: Path, store: Path) -> None:
    """Never write over the store, its WAL, or any other DuckDB database file."""
    resolved = target.resolve()
    if resolved in (store.resolve(), Path(f"{store.resolve()}.wal")) or _is_duckdb(resolved):
        raise UserError(f"refused: {target} is a DuckDB database; give another output file")
    if resolved.is_dir():
        raise UserError(f"{target} is a folder; give a file name")


def _is_duckdb(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as file:
        return file.read(12)[8:12] == b"DUCK"


def _write(reader: pa.RecordBatchReader, csv: str | None, parquet: str | None) -> None:
    """Stream every batch to the files, each written as FILE.part and renamed when complete."""
    from engine.results import query as q
    from mmflow.console import console, err_console

    outputs = [Path(p) for p in (csv, parquet) if p and p != "-"]
    parts = {p: p.with_name(p.name + ".part") for p in outputs}
    try:
        with contextlib.ExitStack() as stack:
            sink = None
            if csv == "-":
                sys.stdout.flush()
                sink = sys.stdout.buffer
            elif csv:
                sink = stack.enter_context(parts[Path(csv)].open("wb"))
            rows = q.write_files(
                q.batches(reader),
                reader.schema,
                csv=sink,
                parquet=parts[Path(parquet)] if parquet else None,
            )
        if csv == "-":
            sys.stdout.buffer.flush()
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    for target, part in parts.items():
        os.replace(part, target)
    if outputs:
        out = err_console if csv == "-" else console
        names = " and ".join(str(p) for p in outputs)
        out.print(f"wrote {_rows(rows)} to {names}", highlight=False, markup=False, soft_wrap=True)


def _show(reader: pa.RecordBatchReader, args: argparse.Namespace) -> None:
    """The first --limit rows (or every row with --all), then how many there were."""
    from engine.results import query as q
    from mmflow.console import console, table

    source = q.batches(reader)
    if args.all:
        shown = 0
        for chunk in q.chunks(source, reader.schema, ALL_CHUNK_ROWS):
            _print_plain(chunk, args.vertical, first=shown + 1)
            shown += chunk.num_rows
        console.print(_rows(shown), highlight=False)
        return
    head, extra = q.take(source, reader.schema, args.limit)
    if args.vertical:
        _print_plain(head, vertical=True, first=1)
    else:
        console.print(table(_for_display(head)))
    total = head.num_rows + extra + sum(b.num_rows for b in source)  # counted, never held
    if total == head.num_rows:
        console.print(_rows(total), highlight=False)
        return
    console.print(
        f"{head.num_rows:,} of {_rows(total)}; --all, --csv FILE, --parquet FILE",
        highlight=False,
        markup=False,
    )


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _print_plain(rows: pa.Table, vertical: bool, *, first: int) -> None:
    """Rows as plain aligned text (psql's layout; rich is ~50x slower for --all), or records.
    Nothing is cut: a line wider than the terminal wraps there."""
    from mmflow.console import console, records

    if not rows.num_rows:
        return
    rows = _displayable(rows)
    names = rows.column_names
    columns = [_texts(column) for column in rows.columns]
    if vertical:
        lines = list(records(names, zip(*columns, strict=True), first))
    else:
        widths = [max(len(n), *map(len, c)) for n, c in zip(names, columns, strict=True)]
        right = [_numeric(f.type) for f in rows.schema]
        lines = [" | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        for row in zip(*columns, strict=True):
            cells = zip(row, widths, right, strict=True)
            lines.append(" | ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in cells))
    console.file.write("\n".join(line.rstrip() for line in lines) + "\n")


def _texts(column: pa.ChunkedArray) -> list[str]:
    """A column's values as `mmflow.console.fmt` shows them, formatted a column at a time."""
    import pyarrow as pa

    values = column.to_pylist()
    if pa.types.is_floating(column.type):
        return ["" if v is None or v != v else f"{v:,.2f}" for v in values]
    if pa.types.is_integer(column.type):
        return ["" if v is None else f"{v:,}" for v in values]
    return ["" if v is None else str(v) for v in values]


def _numeric(type_: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(type_) or pa.types.is_floating(type_)


def _displayable(rows: pa.Table) -> pa.Table:
    """Nested values (LIST, STRUCT, MAP) as text like `[1, 2]`; whole-number DECIMALs (e.g.
    HUGEINT sums) as integers, other DECIMALs as floats."""
    import pyarrow as pa

    from engine.results import query as q

    columns = []
    for field, column in zip(rows.schema, rows.columns, strict=True):
        if pa.types.is_nested(field.type) or pa.types.is_interval(field.type):
            column = pa.array(q.as_text(column.combine_chunks()), pa.string())
        elif pa.types.is_decimal(field.type):
            column = _decimal(column, field.type)
        columns.append(column)
    return pa.table(columns, names=rows.column_names)


def _for_display(rows: pa.Table) -> pd.DataFrame:
    """`_displayable` rows as a DataFrame; integer columns stay integers, NULL blank."""
    import pandas as pd
    import pyarrow as pa

    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    rows = _displayable(rows)
    names = rows.column_names
    frame = rows.rename_columns([f"c{i}" for i in range(len(names))])
    out = frame.to_pandas(types_mapper=nullable.get)
    out.columns = names  # duplicate names (SELECT 1 AS a, 2 AS a) survive
    return out


def _decimal(column, type_) -> pa.ChunkedArray:
    import pyarrow as pa

    if type_.scale == 0:
        with contextlib.suppress(pa.ArrowInvalid):
            return column.cast(pa.int64())
    return column.cast(pa.float64(), safe=False)
