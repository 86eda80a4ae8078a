"""The fill-quality rows of a run (ANALYTICS.md) for the tables of migration m006_analytics:
`security_analytics` (one row per security, ANALYTICS_FIELDS), `security_markouts` (one row per
security and kind, MARKOUT_KIND_FIELDS) and `fill_analytics` (one row per fill, joined to
`trades` on (run_id, security, seq)); and reading them back into a run's results.

A result without analytics (read from a store written before them) writes no analytics rows; a
compact result (a sweep cell that keeps no trades) writes no fill rows and only the 'all' row of
its markouts (the one that pools into the portfolio's figures; `mmflow rerun` recomputes the rest).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from engine.results.analytics_portfolio import all_row
from engine.types import (
    ANALYTICS_FIELDS,
    FILL_ANALYTICS_COLUMNS,
    MARKOUT_KIND_FIELDS,
    TRADE_COLUMNS,
    SecurityResult,
)

ANALYTICS_TABLES = ("security_analytics", "security_markouts", "fill_analytics")
# fill_analytics holds what `trades` does not: the A3 row and kind, the fee, the mids and values.
STORED_FILL_COLUMNS = tuple(
    c for c in FILL_ANALYTICS_COLUMNS if c == "seq" or c not in TRADE_COLUMNS
)
_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
_FILL_TYPES = {"seq": pa.int64(), "row": pa.int64(), "kind": pa.string()}


def _schema(fields) -> pa.Schema:
    return pa.schema([(name, _TYPES[type_]) for name, type_ in fields])


_ID = (("run_id", "VARCHAR"),)
_ANALYTICS_SCHEMA = _schema((*_ID, *ANALYTICS_FIELDS))
_MARKOUTS_SCHEMA = _schema((*_ID, ("security", "VARCHAR"), *MARKOUT_KIND_FIELDS))
_FILLS_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("security", pa.string())]
    + [(c, _FILL_TYPES.get(c, pa.float64())) for c in STORED_FILL_COLUMNS]
)


def analytics_tables(owned: Sequence[tuple[str, SecurityResult]]) -> dict[str, pa.Table]:
    """The rows of every analytics table for (run_id, result) pairs, each table built once."""
    done = [(run_id, r) for run_id, r in owned if r.analytics and r.markouts is not None]
    kept = [(run_id, r) for run_id, r in done if r.fill_analytics is not None]
    # A compact result (a sweep cell without trades) keeps only the 'all' row: what pools.
    full = [(run_id, r) for run_id, r in done if r.trades is not None]
    compact = [(run_id, r) for run_id, r in done if r.trades is None]
    all_rows = [
        dict(all_row(r.markouts), run_id=run_id, security=r.security) for run_id, r in compact
    ]
    return {
        "security_analytics": pa.Table.from_pylist(
            [dict(r.analytics, run_id=run_id) for run_id, r in done], schema=_ANALYTICS_SCHEMA
        ),
        "security_markouts": pa.concat_tables(
            [
                _frame_table(full, [r.markouts for _, r in full], _MARKOUTS_SCHEMA),
                _rows_table(all_rows, _MARKOUTS_SCHEMA),
            ]
        ),
        "fill_analytics": _frame_table(
            kept, [r.fill_analytics[list(STORED_FILL_COLUMNS)] for _, r in kept], _FILLS_SCHEMA
        ),
    }


def _rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Dicts (NaN as NULL, as `_frame_table` stores it) as an Arrow table of `schema`."""
    return pa.table(
        [pa.array([row[f.name] for row in rows], f.type, from_pandas=True) for f in schema],
        schema=schema,
    )


def _frame_table(owned, frames: list[pd.DataFrame], schema: pa.Schema) -> pa.Table:
    """Frames (NaN as NULL), one per (run_id, result) of `owned`, as one Arrow table of
    `schema` (run_id and security columns added)."""
    if not frames:
        return schema.empty_table()
    frame = pd.concat(frames, ignore_index=True)
    sizes = [len(f) for f in frames]
    for name, values in (
        ("run_id", [i for i, _ in owned]),
        ("security", [r.security for _, r in owned]),
    ):
        frame[name] = np.repeat(np.array(values, dtype=object), sizes)
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def read_analytics(con: duckdb.DuckDBPyConnection, run_id: str, trades: pd.DataFrame) -> dict:
    """security -> (analytics dict, markouts frame, fill frame or None) of a stored run; the fill
    frames join the run's `trades` (security + TRADE_COLUMNS) on seq."""
    analytics = con.sql(
        "SELECT * EXCLUDE (run_id) FROM security_analytics WHERE run_id = ?", params=[run_id]
    ).df()
    markouts = con.sql(
        "SELECT * EXCLUDE (run_id) FROM security_markouts WHERE run_id = ? "
        "ORDER BY security, CASE kind WHEN 'all' THEN 0 WHEN 'quote' THEN 1 "
        "WHEN 'eod_flatten' THEN 2 ELSE 3 END",
        params=[run_id],
    ).df()
    columns = ", ".join(f'"{c}"' for c in STORED_FILL_COLUMNS)
    fills = con.sql(
        f"SELECT security, {columns} FROM fill_analytics WHERE run_id = ? ORDER BY security, seq",
        params=[run_id],
    ).df()
    fills = fills.merge(trades, on=["security", "seq"], how="left", validate="one_to_one")
    fills["timestamp"] = fills["timestamp"].astype("datetime64[ns]")
    out = {}
    by_kind = dict(tuple(markouts.groupby("security", sort=False)))
    by_fill = dict(tuple(fills.groupby("security", sort=False)))
    for row in analytics.to_dict(orient="records"):
        security = row["security"]
        figures = {name: _plain(row[name], type_) for name, type_ in ANALYTICS_FIELDS}
        kinds = by_kind[security].drop(columns="security").reset_index(drop=True)
        frame = by_fill.get(security)
        if frame is not None:
            frame = frame[list(FILL_ANALYTICS_COLUMNS)].reset_index(drop=True)
        out[security] = (figures, kinds, frame)
    return out


def _plain(value, type_: str):
    """A stored value as the engine made it: int for BIGINT, float (NULL as NaN) for DOUBLE."""
    if type_ == "BIGINT":
        return int(value)
    if type_ == "DOUBLE":
        return float(value) if value is not None and not pd.isna(value) else np.nan
    return value
