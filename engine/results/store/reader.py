"""Typed reads of the store, each on a short-lived read-only connection.

`read_run` gives back the whole `Run` that was written (lineage, per-security results with their
trades and daily P&L, failures); the others answer narrower questions without loading a run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from engine.results import metrics
from engine.results.store.analytics_tables import read_analytics
from engine.results.store.connection import StoreError, _aware_utc, connect
from engine.results.store.writer import PORTFOLIO_FIELDS
from engine.run import PORTFOLIO_FIGURES, Portfolio, Run
from engine.types import (
    DAILY_ANALYTICS_COLUMNS,
    DAILY_COLUMNS,
    SUMMARY_FIELDS,
    TRADE_COLUMNS,
    Failure,
    FillStats,
    SecurityResult,
)

_LIST_RUNS = "list runs with `SELECT * FROM v_run_summary`"
# What read_sweep_cells returns per stored cell.
SWEEP_CELL_COLUMNS = (
    *("run_id", "strategy", "config_hash", "params", "status", "retryable_failures"),
    *("securities_ok", "securities_failed", "trades", *PORTFOLIO_FIGURES, "trades_stored"),
)


def read_run(path: str | Path, run_id: str) -> Run:
    """The whole stored run: lineage, results (securities in name order) and failures."""
    summary_columns = ", ".join(f'"{name}"' for name, _ in SUMMARY_FIELDS)
    trade_columns = ", ".join(f'"{c}"' for c in TRADE_COLUMNS)
    daily_columns = ", ".join(f'"{c}"' for c in (*DAILY_COLUMNS, *DAILY_ANALYTICS_COLUMNS))
    with connect(path, read_only=True) as con:
        rows = _records(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
        if not rows:
            raise StoreError(f"no run {run_id!r} in {path}; {_LIST_RUNS}")
        summaries = _records(
            con,
            f"SELECT {summary_columns}, params FROM security_results WHERE run_id = ? "
            "ORDER BY security",
            [run_id],
        )
        trades = con.sql(
            f"SELECT security, {trade_columns} FROM trades WHERE run_id = ? ORDER BY security, seq",
            params=[run_id],
        ).df()
        daily = con.sql(
            f"SELECT security, {daily_columns} FROM daily_pnl WHERE run_id = ? "
            'ORDER BY security, "date"',
            params=[run_id],
        ).df()
        failures = con.execute(
            "SELECT security, error_type, message, attempts FROM failures WHERE run_id = ? "
            "ORDER BY security",
            [run_id],
        ).fetchall()
        analytics = read_analytics(con, run_id, trades)  # ANALYTICS.md, per security
        days = con.execute("SELECT count(*) FROM run_daily WHERE run_id = ?", [run_id]).fetchall()
    trades["timestamp"] = trades["timestamp"].astype("datetime64[ns]")
    daily["date"] = daily["date"].astype("datetime64[ns]")
    trades_of, daily_of = _split(trades, TRADE_COLUMNS), _split(daily, DAILY_COLUMNS)
    with_mtm = _split(daily, (*DAILY_COLUMNS, *DAILY_ANALYTICS_COLUMNS))
    results = [  # a security with analytics has their daily columns too, as when it was written
        _security_result(
            summary,
            trades_of(summary["security"]),
            (with_mtm if summary["security"] in analytics else daily_of)(summary["security"]),
        )
        for summary in summaries
    ]
    for result in results:
        if result.security in analytics:
            result.analytics, result.markouts, result.fill_analytics = analytics[result.security]
    return _run(rows[0], results, [Failure(*row) for row in failures], days[0][0])


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    """The rows of `sql` as dicts of plain Python values (int, float, str, date, None)."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _split(frame: pd.DataFrame, columns: tuple[str, ...]):
    """security -> its rows of `frame` (given columns, fresh index); empty for a security without."""
    groups = {key: part for key, part in frame.groupby("security", sort=False)}
    empty = frame.iloc[0:0]

    def rows_of(security: str) -> pd.DataFrame:
        return groups.get(security, empty)[list(columns)].reset_index(drop=True)

    return rows_of


def _security_result(row: dict, trades: pd.DataFrame, daily: pd.DataFrame) -> SecurityResult:
    """A SecurityResult from its security_results row (NULL doubles back to NaN)."""
    summary = {name: row[name] for name, _ in SUMMARY_FIELDS}
    for name, type_ in SUMMARY_FIELDS:
        if type_ == "DOUBLE" and summary[name] is None:
            summary[name] = math.nan
    params = json.loads(row["params"]) if row["params"] is not None else {}
    kept = len(trades) == summary["trades"]  # a sweep cell may store no trades
    return SecurityResult(
        security=row["security"],
        strategy=row["strategy"],
        params=params,
        trades=trades if kept else None,
        daily=daily,
        summary=summary,
        stats=metrics.fill_stats(trades["realized_pnl"].to_numpy(np.float64))
        if kept
        else FillStats(fills=summary["trades"]),  # fmt: skip
    )


def _run(row: dict, results: list[SecurityResult], failures: list[Failure], days: int) -> Run:
    """A Run from its runs row (times back to aware UTC) and its outcome; a run stored without
    its trades takes its portfolio figures from the row and its `days` from run_daily (they
    cannot be recomputed)."""
    run = Run(
        run_id=row["run_id"],
        kind=row["kind"],
        strategy=row["strategy"],
        params=json.loads(row["params"]) if row["params"] is not None else {},
        config_hash=row["config_hash"],
        data_source=row["data_source"],
        data_hash=row["data_hash"],
        started_at=_aware_utc(row["started_at"]),
        code_version=row["code_version"],
        git_commit=row["git_commit"],
        git_dirty=row["git_dirty"],
        finished_at=_aware_utc(row["finished_at"]),
        flow_run_id=row["flow_run_id"],
        sweep_id=row["sweep_id"],
        results=results,
        failures=failures,
    )
    if any(r.trades is None for r in results):
        figures = {f: row[f] if row[f] is not None else math.nan for f in PORTFOLIO_FIELDS}
        run.__dict__["portfolio"] = Portfolio(trades=row["trades"], days=days, **figures)
    return run


def read_trades(path: str | Path, run_id: str, security: str | None = None) -> pd.DataFrame:
    """The stored trades of a run (optionally one security): security + TRADE_COLUMNS, by seq."""
    columns = ", ".join(f'"{c}"' for c in ("security", *TRADE_COLUMNS))
    where, params = "run_id = ?", [run_id]
    if security is not None:
        where, params = where + " AND security = ?", [run_id, security]
    with connect(path, read_only=True) as con:
        if not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise StoreError(f"no run {run_id!r} in {path}; {_LIST_RUNS}")
        sql = f"SELECT {columns} FROM trades WHERE {where} ORDER BY security, seq"
        frame = con.sql(sql, params=params).df()
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    return frame


def latest_run_id(path: str | Path, kind: str | None = None) -> str | None:
    """The newest run's id (optionally of one kind), or None if the store has no such run."""
    where, params = ("WHERE kind = ?", [kind]) if kind is not None else ("", [])
    with connect(path, read_only=True) as con:
        rows = con.execute(
            f"SELECT run_id FROM runs {where} ORDER BY started_at DESC, run_id DESC LIMIT 1", params
        ).fetchall()
    return rows[0][0] if rows else None


def read_sweep_cells(path: str | Path, sweep_id: str) -> pd.DataFrame:
    """The stored cells of a sweep, oldest first (SWEEP_CELL_COLUMNS): ids, `params` JSON text,
    status, `retryable_failures` (failures other than bad input, worth recomputing) and the
    portfolio figures; empty if there is no store."""
    if str(path) != ":memory:" and not Path(path).exists():
        return pd.DataFrame(columns=list(SWEEP_CELL_COLUMNS))
    sql = """SELECT r.run_id, r.strategy, r.config_hash, CAST(r.params AS VARCHAR) AS params,
                    r.status, COALESCE(f.retryable_failures, 0) AS retryable_failures,
                    r.securities_ok, r.securities_failed, r.trades, {figures},
                    EXISTS (SELECT 1 FROM trades t WHERE t.run_id = r.run_id) AS trades_stored
             FROM runs r LEFT JOIN (
                 SELECT run_id, CAST(count(*) AS BIGINT) AS retryable_failures FROM failures
                 WHERE error_type <> 'InputError' GROUP BY run_id) f USING (run_id)
             WHERE r.kind = 'sweep' AND r.sweep_id = ?
             ORDER BY r.finished_at, r.run_id""".format(
        figures=", ".join(f"r.{name}" for name in PORTFOLIO_FIGURES)
    )
    with connect(path, read_only=True, retries=3) as con:
        return con.sql(sql, params=[sweep_id]).df()[list(SWEEP_CELL_COLUMNS)]


def query(path: str | Path, sql: str) -> pd.DataFrame:
    """Run one SQL query on a read-only connection and return the result as a DataFrame."""
    with connect(path, read_only=True) as con:
        relation = con.sql(sql)
        return relation.df() if relation is not None else pd.DataFrame()
