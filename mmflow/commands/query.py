"""`mmflow query "SQL"`: one read-only SQL statement over the results store, printed as a table
(or CSV with `--csv`). Tables: runs, security_results, trades, daily_pnl, failures; views:
v_run_summary, v_strategy_comparison. Write statements are refused."""

from __future__ import annotations

import argparse
import sys

import duckdb
import numpy as np
import pandas as pd
from rich.markup import escape

from mmflow.cli import UserError
from mmflow.commands.options import add_store
from mmflow.console import console, table

# Statement types that only read. MULTI is DuckDB's PIVOT/UNPIVOT (several reads); EXPLAIN
# ANALYZE of a write is still stopped by the read-only connection, the second line of defence.
READ_TYPES = frozenset(
    duckdb.StatementType.__members__[name]
    for name in ("SELECT", "EXPLAIN", "PRAGMA", "MULTI")
    if name in duckdb.StatementType.__members__
)


def add_parser(subparsers) -> None:
    """Register `mmflow query`."""
    p = subparsers.add_parser(
        "query", help="run a read-only SQL query on the results store", description=__doc__
    )
    p.add_argument("sql", help='one SQL statement, e.g. "SELECT * FROM v_run_summary LIMIT 5"')
    p.add_argument("--csv", action="store_true", help="print CSV to stdout instead of a table")
    add_store(p)
    p.set_defaults(handler=run)


def check_read_only(sql: str) -> str:
    """The one statement of `sql` if it only reads; UserError for writes or several statements."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise UserError(f"the SQL does not parse: {exc}") from None
    if not statements:
        raise UserError("no SQL statement given")
    if len(statements) > 1:
        raise UserError(f"give one statement at a time ({len(statements)} given)")
    kind = statements[0].type
    if kind not in READ_TYPES:
        name = getattr(kind, "name", str(kind))
        raise UserError(
            f"refused: {name} statements change the store; `mmflow query` only reads "
            "(SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, PRAGMA). Results are written by "
            "`mmflow run` / `mmflow sweep`."
        )
    return sql


def run(args: argparse.Namespace) -> int:
    """Check, run on a read-only connection, print."""
    from engine.results.store import query
    from flows.runtime import store_path

    sql = check_read_only(args.sql)
    try:
        frame = query(store_path(args.store), sql)
    except duckdb.Error as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    if args.csv:
        frame.to_csv(sys.stdout, index=False, lineterminator="\n")
        return 0
    console.print(table(_for_display(frame)))
    console.print(f"{len(frame):,} row(s)", highlight=False)
    return 0


def _for_display(frame: pd.DataFrame) -> pd.DataFrame:
    """DATE columns (datetimes at midnight) as dates; LIST/STRUCT values as text; text escaped
    from rich markup (a value like `[1, 2]` would otherwise vanish)."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            if values.dropna().eq(values.dropna().dt.normalize()).all():
                frame[column] = values.dt.date
        elif values.dtype == object and values.map(_nested).any():
            frame[column] = values.map(
                lambda v: str(v.tolist()) if isinstance(v, np.ndarray) else v
            )
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(_escape)
    return frame


def _nested(value) -> bool:
    """A LIST (numpy array or list) or STRUCT/MAP (dict) value."""
    return isinstance(value, list | dict | np.ndarray)


def _escape(value):
    """Text safe from rich markup; missing values stay missing (shown blank)."""
    if not isinstance(value, list | dict | np.ndarray) and pd.isna(value):
        return None
    return escape(str(value))
