"""The single writer: one finished `Run` into every run table in one transaction.

The Arrow tables are built before connecting, so the file is locked only for the transaction;
rows of the run_id are deleted first, so re-writing a run replaces it (idempotent retries).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from engine.results.store.analytics_tables import ANALYTICS_TABLES, analytics_tables
from engine.results.store.connection import StoreError, _naive_utc, _rollback, connect
from engine.run import PORTFOLIO_ANALYTICS, PORTFOLIO_FIGURES, Run
from engine.types import (
    DAILY_COLUMNS,
    SUMMARY_FIELDS,
    TRADE_COLUMNS,
    Failure,
    SecurityResult,
)

RUN_TABLES = (
    *("runs", "security_results", "trades", "daily_pnl", "failures", *ANALYTICS_TABLES),
    "run_daily",
)
# The Portfolio figures stored in `runs` (NULL when NaN); `days` is recomputed from daily_pnl.
PORTFOLIO_FIELDS = (*PORTFOLIO_FIGURES, *PORTFOLIO_ANALYTICS)  # analytics pooled (m006)
LINEAGE_FIELDS = (
    "run_id",
    "sweep_id",
    "flow_run_id",
    "kind",
    "strategy",
    "config_hash",
    "data_source",
    "data_hash",
    "code_version",
    "git_commit",
    "git_dirty",
)
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("ns"),
    "BOOLEAN": pa.bool_(),
}


def _arrow_schema(columns: str) -> pa.Schema:
    """An Arrow schema from "name TYPE, ..." in DuckDB type names."""
    pairs = (column.split() for column in columns.split(","))
    return pa.schema([(name, _ARROW_TYPES[type_]) for name, type_ in pairs])


_RUNS_SCHEMA = _arrow_schema(
    "sweep_id VARCHAR, flow_run_id VARCHAR, kind VARCHAR, strategy VARCHAR, config_hash VARCHAR, "
    "data_source VARCHAR, data_hash VARCHAR, code_version VARCHAR, git_commit VARCHAR, "
    "git_dirty BOOLEAN, params VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, "
    "status VARCHAR, securities BIGINT, securities_ok BIGINT, securities_failed BIGINT, "
    "trades BIGINT, " + ", ".join(f"{name} DOUBLE" for name in PORTFOLIO_FIELDS)
)
_TRADES_SCHEMA = _arrow_schema(
    "seq BIGINT, timestamp TIMESTAMP, side VARCHAR, fill_price DOUBLE, fill_qty BIGINT, "
    "realized_pnl DOUBLE, position BIGINT, pnl DOUBLE"
)
_DAILY_SCHEMA = _arrow_schema(
    "security VARCHAR, date DATE, realized_pnl DOUBLE, cumulative_pnl DOUBLE, trades BIGINT, "
    "mtm_pnl DOUBLE, fees DOUBLE"
)
_FAILURES_SCHEMA = _arrow_schema(
    "security VARCHAR, attempts BIGINT, error_type VARCHAR, message VARCHAR"
)


def write_run(path: str | Path, run: Run, *, retries: int = 3, retry_delay: float = 1.0) -> None:
    """Store one finished run in one transaction, replacing any earlier write of the same run_id."""
    write_runs(path, [run], retries=retries, retry_delay=retry_delay)


def write_runs(
    path: str | Path, runs: Sequence[Run], *, retries: int = 3, retry_delay: float = 1.0
) -> None:
    """Store finished runs (e.g. a batch of sweep cells) in one transaction: one insert per
    table for all of them, each run replacing any earlier write of its run_id."""
    write_batch(path, [run.run_id for run in runs], batch_tables(runs), retries, retry_delay)


def batch_tables(runs: Sequence[Run]) -> dict[str, pa.Table]:
    """The rows of finished runs for every run table (`RUN_TABLES`), each table built once for
    all the runs, with a leading run_id column: what `write_batch` inserts."""
    for run in runs:
        _check_securities(run.results, run.failures)
    owned = [(run.run_id, r) for run in runs for r in run.results]
    failures = [dict(run_id=run.run_id, **asdict(f)) for run in runs for f in run.failures]
    full = [(run_id, r) for run_id, r in owned if r.trades is not None]  # compact: no rows
    tables = {
        "security_results": _summary_table(owned),
        "trades": _trades_table(full),
        "daily_pnl": _daily_table([(run_id, r.security, r.daily) for run_id, r in full]),
        "run_daily": _run_daily_table(runs),
        "failures": pa.Table.from_pylist(failures, schema=_with_id(_FAILURES_SCHEMA)),
        **analytics_tables(owned),
    }
    rows = [_runs_row(run) for run in runs]  # after the checks: the portfolio reads the frames
    return {"runs": pa.Table.from_pylist(rows, schema=_with_id(_RUNS_SCHEMA)), **tables}


def run_tables(run: Run) -> dict[str, pa.Table]:
    """The rows of one finished run for every run table, without the run_id column: what a
    spill keeps on disk and `write_tables` inserts."""
    return {name: t.drop_columns(["run_id"]) for name, t in batch_tables([run]).items()}


def write_tables(
    path: str | Path,
    run_id: str,
    tables: dict[str, pa.Table],
    *,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> None:
    """Replace the rows of `run_id` in every run table by `tables` (no run_id column), in one
    transaction; a table missing from `tables` (an older spill) is stored empty."""
    with_ids = {name: _with_run_id(table, run_id) for name, table in tables.items()}
    write_batch(path, [run_id], with_ids, retries, retry_delay)


def write_batch(
    path: str | Path,
    run_ids: Sequence[str],
    tables: dict[str, pa.Table],
    retries: int,
    retry_delay: float,
) -> None:
    """Replace the rows of `run_ids` in every run table by `tables` (with run_id columns), all
    in one transaction."""
    with connect(path, retries=retries, retry_delay=retry_delay) as con:
        _check_summary_columns(con)
        con.execute("BEGIN")
        try:
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [list(run_ids)])
            for table in RUN_TABLES:
                if table in tables:
                    _insert_arrow(con, table, tables[table])
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise


def _with_run_id(data: pa.Table, run_id: str) -> pa.Table:
    return data.add_column(0, "run_id", pa.repeat(pa.scalar(run_id), data.num_rows))


def _with_id(schema: pa.Schema) -> pa.Schema:
    return schema.insert(0, pa.field("run_id", pa.string()))


def _check_securities(results: Sequence[SecurityResult], failures: Sequence[Failure]) -> None:
    """Each security appears once, and each summary has exactly the SUMMARY_FIELDS keys."""
    names = [r.security for r in results] + [f.security for f in failures]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise StoreError(f"securities appear more than once in results/failures: {duplicates}")
    expected = {name for name, _ in SUMMARY_FIELDS}
    for r in results:
        missing, extra = expected - r.summary.keys(), r.summary.keys() - expected
        if missing or extra:
            raise StoreError(
                f"security {r.security}: summary keys differ from SUMMARY_FIELDS "
                f"(missing {sorted(missing)}, unknown {sorted(extra)}); add new figures to "
                "SUMMARY_FIELDS in engine/types.py"
            )
        if r.summary["security"] != r.security:
            raise StoreError(f"security {r.security}: summary names {r.summary['security']!r}")


def _check_summary_columns(con: duckdb.DuckDBPyConnection) -> None:
    """The store's security_results columns are SUMMARY_FIELDS (a check: migrations make them)."""
    stored = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "'main' AND table_name = 'security_results' AND column_name NOT IN ('run_id', 'params') "
        "ORDER BY ordinal_position"
    ).fetchall()
    if stored != list(SUMMARY_FIELDS):
        new = [f"{n} {t}" for n, t in SUMMARY_FIELDS if (n, t) not in stored]
        old = [f"{n} {t}" for n, t in stored if (n, t) not in SUMMARY_FIELDS]
        raise StoreError(
            f"security_results does not match SUMMARY_FIELDS (new: {new}, stored only: {old}); "
            "add a migration to engine/results/store/schema.py that makes them equal"
        )


def _runs_row(run: Run) -> dict:
    """The runs row: lineage, counts from results/failures, portfolio figures (NaN as NULL)."""
    if run.finished_at is None:
        raise StoreError(f"run {run.run_id} is not finished; call run.finish(results, failures)")
    row = {name: getattr(run, name) for name in LINEAGE_FIELDS}
    row["params"] = _json(run.params)
    row["started_at"], row["finished_at"] = _naive_utc(run.started_at), _naive_utc(run.finished_at)
    row["status"] = run.status
    row["securities"] = len(run.results) + len(run.failures)
    row["securities_ok"], row["securities_failed"] = len(run.results), len(run.failures)
    row["trades"] = run.trades
    for name in PORTFOLIO_FIELDS:
        value = getattr(run.portfolio, name)
        row[name] = None if value is None or math.isnan(value) else float(value)
    return row


def _insert_arrow(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    """Bulk-insert an Arrow table's columns (by name) into `table`."""
    if data.num_rows == 0:
        return
    columns = ", ".join(f'"{name}"' for name in data.column_names)
    con.register("store_source", data)
    try:
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM store_source")
    finally:  # a failed insert aborts the transaction: its error, not this one, is the news
        with contextlib.suppress(duckdb.Error):
            con.unregister("store_source")


def _summary_table(owned: Sequence[tuple[str, SecurityResult]]) -> pa.Table:
    """One row per result: run_id, the SUMMARY_FIELDS columns (NaN stored as NULL), params JSON."""
    columns = {"run_id": pa.array([run_id for run_id, _ in owned], type=pa.string())}
    for name, type_ in SUMMARY_FIELDS:
        values = [r.summary[name] for _, r in owned]
        if type_ == "DATE":
            values = pd.to_datetime(pd.Series(values, dtype=object)).to_numpy("datetime64[D]")
        columns[name] = pa.array(values, type=_ARROW_TYPES[type_], from_pandas=True)
    columns["params"] = pa.array([_json(r.params) for _, r in owned], type=pa.string())
    return pa.table(columns)


def _trades_table(owned: Sequence[tuple[str, SecurityResult]]) -> pa.Table:
    """All kept trades in one Arrow table, with leading run_id and security columns."""
    parts = []
    for run_id, r in owned:
        if r.trades is None:  # compact results keep no trades
            continue
        frame = _columns(r, "trades", r.trades, TRADE_COLUMNS)
        try:
            body = pa.Table.from_pandas(frame, schema=_TRADES_SCHEMA, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise StoreError(
                f"security {r.security}: trades have unexpected types: {error}"
            ) from error
        body = body.replace_schema_metadata(None)
        body = body.add_column(0, "security", pa.repeat(pa.scalar(r.security), len(body)))
        parts.append(body.add_column(0, "run_id", pa.repeat(pa.scalar(run_id), len(body))))
    if not parts:
        return _with_id(_TRADES_SCHEMA.insert(0, pa.field("security", pa.string()))).empty_table()
    return pa.concat_tables(parts)


def _daily_table(owned: Sequence[tuple[str, str, pd.DataFrame]]) -> pa.Table:
    """(run_id, security, daily frame) triples as one daily_pnl table (one concatenation); dates
    may be datetime64 (floored to the day) or datetime.date; frames without the analytics
    columns store NULL there."""
    if not owned:
        return _with_id(_DAILY_SCHEMA).empty_table()
    for _, security, daily in owned:
        _check_columns(security, "daily", daily, DAILY_COLUMNS)
    frame = pd.concat([daily for _, _, daily in owned], ignore_index=True)
    sizes = [len(daily) for _, _, daily in owned]
    arrays = [
        pa.array(np.repeat(np.array([i for i, _, _ in owned], dtype=object), sizes), pa.string()),
        pa.array(np.repeat(np.array([s for _, s, _ in owned], dtype=object), sizes)),
    ]
    try:
        arrays.append(np.asarray(frame["date"].to_numpy()).astype("datetime64[D]"))
        for name in _DAILY_SCHEMA.names[2:]:
            values = frame[name] if name in frame else np.full(len(frame), np.nan)
            arrays.append(pa.array(values, _DAILY_SCHEMA.field(name).type, from_pandas=True))
    except (pa.ArrowException, TypeError, ValueError) as error:
        culprit = next((s for _, s, daily in owned if not _plain_daily(daily)), owned[0][1])
        raise StoreError(f"security {culprit}: daily has unexpected types: {error}") from error
    return pa.Table.from_arrays(arrays, schema=_with_id(_DAILY_SCHEMA))


def _run_daily_table(runs: Sequence[Run]) -> pa.Table:
    """Each run's portfolio daily P&L (`Run.daily`) as run_daily rows."""
    table = _daily_table([(run.run_id, "", run.daily) for run in runs])
    return table.drop_columns(["security"])


def _plain_daily(daily: pd.DataFrame) -> bool:
    """Whether a daily frame's columns convert to the stored types (to name a bad frame)."""
    try:
        np.asarray(daily["date"].to_numpy()).astype("datetime64[D]")
        for name in ("realized_pnl", "cumulative_pnl", "trades"):
            pa.array(daily[name], _DAILY_SCHEMA.field(name).type, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return False
    return True


def _check_columns(security: str, what: str, frame: pd.DataFrame, columns) -> None:
    """A StoreError naming the security and the columns `frame` lacks, if any."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StoreError(f"security {security}: {what} lack columns {missing}")


def _columns(result: SecurityResult, what: str, frame: pd.DataFrame, columns) -> pd.DataFrame:
    """`frame[columns]`, or a StoreError naming the security and the missing columns."""
    _check_columns(result.security, what, frame, columns)
    return frame[list(columns)]


def _json(value: dict | None) -> str | None:
    """Canonical JSON text (sorted keys), so equal parameter sets compare equal as text."""
    return None if value is None else json.dumps(value, sort_keys=True, default=str)
