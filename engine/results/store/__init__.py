"""The DuckDB results store: schema migrations, short-lived connections, the single writer, readers.

One DuckDB file holds every run. Open it read-only for SQL (`duckdb -readonly results.duckdb`), but
close the session when done: DuckDB allows one writer *or* many readers, so an idle CLI or notebook
makes the next `mmflow run` wait and then fail with `StoreLockedError`.

Tables (key columns first; every run's rows are written in one transaction, so a reader never sees
half a run, and re-writing a run_id replaces it):

* `runs`: one row per backtest or sweep cell. `run_id` (sortable, `20261128T081500-3f9a2c`),
  `sweep_id`, `flow_run_id` (Prefect), `kind` ('backtest', 'sweep', ...), `strategy`, `params` (JSON:
  overrides and resolved common parameters), `config_hash`, `data_source`, `data_hash`,
  `code_version`, `started_at`, `finished_at` (naive UTC), `status` ('completed', 'partial',
  'failed'), `securities`, `securities_ok`, `securities_failed`, `trades` (rows stored in `trades`),
  and the portfolio figures `total_pnl`, `sharpe_ratio`, `max_drawdown`, `max_drawdown_pct`,
  `calmar_ratio`, `win_rate`, `profit_factor` (NULL when undefined).
* `security_results`: one row per (run_id, security): every per-security summary figure of
  `engine.types.SUMMARY_FIELDS` (trades, volume, notional, realized/unrealized/total P&L, row counts,
  dates, Sharpe, drawdown, ...) plus `params` (JSON: the parameters resolved for that security).
* `trades`: one row per fill (SPEC §5.1): run_id, security, `seq`, `timestamp` (microseconds),
  `side` ('buy'/'sell'), `fill_price`, `fill_qty`, `realized_pnl`, `position`, `pnl`.
* `daily_pnl`: one row per security and date with fills: `date`, `realized_pnl`, `cumulative_pnl`,
  `trades`.
* `failures`: securities that could not be backtested: `attempts`, `error_type`, `message`.
* `migrations`: the applied schema migrations (`name`, `applied_at`).

Views: `v_run_summary` (one row per run, newest first) and `v_strategy_comparison` (one row per
strategy and parameter set across all stored runs; see `m002_views`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from engine.types import DAILY_COLUMNS, SUMMARY_FIELDS, TRADE_COLUMNS, Failure, SecurityResult

STATUSES = ("completed", "partial", "failed")
PORTFOLIO_FIELDS = tuple(
    "total_pnl sharpe_ratio max_drawdown max_drawdown_pct calmar_ratio win_rate profit_factor".split()
)
RUN_TABLES = ("runs", "security_results", "trades", "daily_pnl", "failures")
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("ns"),
}


def _arrow_schema(columns: str) -> pa.Schema:
    """An Arrow schema from "name TYPE, ..." in DuckDB type names."""
    pairs = (column.split() for column in columns.split(","))
    return pa.schema([(name, _ARROW_TYPES[type_]) for name, type_ in pairs])


_TRADES_SCHEMA = _arrow_schema(
    "seq BIGINT, timestamp TIMESTAMP, side VARCHAR, fill_price DOUBLE, fill_qty BIGINT, "
    "realized_pnl DOUBLE, position BIGINT, pnl DOUBLE"
)
_DAILY_SCHEMA = _arrow_schema(
    "security VARCHAR, date DATE, realized_pnl DOUBLE, cumulative_pnl DOUBLE, trades BIGINT"
)
_FAILURES_SCHEMA = _arrow_schema(
    "security VARCHAR, attempts BIGINT, error_type VARCHAR, message VARCHAR"
)


class StoreError(Exception):
    """The store cannot do what was asked; the message says what to do."""


class StoreLockedError(StoreError):
    """Another process holds the store file (DuckDB allows one writer or many readers)."""

    def __init__(self, message: str, path: str | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.path, self.pid = path, pid

    def __reduce__(self):  # keep path and pid when pickled to or from a worker
        return type(self), (str(self), self.path, self.pid)

    @classmethod
    def from_duckdb(cls, path: str, error: Exception) -> StoreLockedError:
        """Name the file, the holder and its PID (when DuckDB reports them), and what to do."""
        match = re.search(r"held in (.*?) \(PID (\d+)\)", str(error))
        pid = int(match.group(2)) if match else None
        holder = f" by {match.group(1)} (PID {pid})" if match else " by another process"
        message = (
            f"the store {path} is locked{holder}: close the other DuckDB session (CLI/notebook) "
            "or query a copy; the writer retries"
        )
        return cls(message, path, pid)


# ---- schema: ordered migrations, never edited once shipped -----------------------------------------

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next schema migration; its name is recorded once applied."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    """Create the runs, security_results, trades, daily_pnl and failures tables."""
    con.execute(
        """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, sweep_id VARCHAR, flow_run_id VARCHAR, kind VARCHAR NOT NULL,
        strategy VARCHAR, params JSON, config_hash VARCHAR, data_source VARCHAR,
        data_hash VARCHAR, code_version VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
        status VARCHAR NOT NULL, securities BIGINT, securities_ok BIGINT,
        securities_failed BIGINT, trades BIGINT, total_pnl DOUBLE, sharpe_ratio DOUBLE,
        max_drawdown DOUBLE, max_drawdown_pct DOUBLE, calmar_ratio DOUBLE, win_rate DOUBLE,
        profit_factor DOUBLE)"""
    )
    summary = ", ".join(f'"{name}" {type_}' for name, type_ in SUMMARY_FIELDS)
    con.execute(
        f"CREATE TABLE security_results (run_id VARCHAR NOT NULL, {summary}, params JSON, "
        "PRIMARY KEY (run_id, security))"
    )
    con.execute(
        """CREATE TABLE trades (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, seq BIGINT, "timestamp" TIMESTAMP,
        side VARCHAR, fill_price DOUBLE, fill_qty BIGINT, realized_pnl DOUBLE, position BIGINT,
        pnl DOUBLE)"""
    )
    con.execute(
        """CREATE TABLE daily_pnl (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, "date" DATE, realized_pnl DOUBLE,
        cumulative_pnl DOUBLE, trades BIGINT)"""
    )
    con.execute(
        """CREATE TABLE failures (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, attempts BIGINT, error_type VARCHAR,
        message VARCHAR)"""
    )


@migration
def m002_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create v_run_summary and v_strategy_comparison.

    v_strategy_comparison answers "which strategy and parameter set did best over all stored runs?":
    one row per (strategy, params JSON text of the run), with the number of runs, the per-security
    results pooled over those runs (trades, total P&L, averages of per-security P&L, Sharpe ratio,
    win rate and max drawdown) and the average portfolio Sharpe ratio of the runs. Runs over
    different data are pooled; filter `runs.data_hash` in your own query to compare like with like.
    """
    con.execute(
        """CREATE VIEW v_run_summary AS
        SELECT run_id, sweep_id, kind, started_at, finished_at,
               epoch(finished_at - started_at) AS duration_seconds, strategy, params, status,
               securities, securities_ok, securities_failed, trades, total_pnl, sharpe_ratio,
               max_drawdown, max_drawdown_pct, calmar_ratio, win_rate, profit_factor,
               data_source, code_version
        FROM runs ORDER BY started_at DESC, run_id DESC"""
    )
    con.execute(
        """CREATE VIEW v_strategy_comparison AS
        WITH per_run AS (
            SELECT strategy, CAST(params AS VARCHAR) AS params, COUNT(*) AS runs,
                   AVG(sharpe_ratio) AS avg_run_sharpe_ratio, MAX(started_at) AS last_started_at
            FROM runs GROUP BY ALL),
        per_security AS (
            SELECT r.strategy, CAST(r.params AS VARCHAR) AS params, COUNT(*) AS security_results,
                   CAST(SUM(s.trades) AS BIGINT) AS trades, SUM(s.total_pnl) AS total_pnl,
                   AVG(s.total_pnl) AS avg_security_pnl, AVG(s.sharpe_ratio) AS avg_sharpe_ratio,
                   AVG(s.win_rate) AS avg_win_rate, AVG(s.max_drawdown) AS avg_max_drawdown
            FROM runs r JOIN security_results s USING (run_id) GROUP BY ALL)
        SELECT strategy, params, runs, COALESCE(security_results, 0) AS security_results,
               COALESCE(trades, 0) AS trades, total_pnl, total_pnl / runs AS avg_run_pnl,
               avg_security_pnl, avg_sharpe_ratio, avg_run_sharpe_ratio, avg_win_rate,
               avg_max_drawdown, last_started_at
        FROM per_run LEFT JOIN per_security USING (strategy, params)
        ORDER BY total_pnl DESC NULLS LAST, strategy, params"""
    )


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the missing migrations in order, add new SUMMARY_FIELDS columns; return names applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
    )
    done = {name for (name,) in con.execute("SELECT name FROM migrations").fetchall()}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        con.execute("BEGIN")
        try:
            fn(con)
            con.execute(
                "INSERT INTO migrations VALUES (?, ?)", [fn.__name__, _naive_utc(datetime.now(UTC))]
            )
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        applied.append(fn.__name__)
    _add_summary_columns(con)
    return applied


def _add_summary_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Add SUMMARY_FIELDS columns that are newer than the store (the contract lives in types.py)."""
    existing = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = 'security_results'"
        ).fetchall()
    )
    for name, type_ in SUMMARY_FIELDS:
        if name not in existing:
            con.execute(f'ALTER TABLE security_results ADD COLUMN "{name}" {type_}')
        elif existing[name] != type_:
            raise StoreError(
                f"security_results.{name} is {existing[name]} in the store but {type_} in "
                "SUMMARY_FIELDS; add a migration to engine/results/store.py that converts it"
            )


# ---- connections -------------------------------------------------------------------------------


@contextmanager
def connect(
    path: str | Path, *, read_only: bool = False, retries: int = 0, retry_delay: float = 1.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a short-lived connection (migrated when read-write), retrying a locked file; close on exit."""
    target = str(path)
    on_disk = target != ":memory:"
    if read_only and on_disk and not Path(target).exists():
        raise StoreError(f"no store at {target}; run `mmflow run` first")
    if not read_only and on_disk:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    con = _open(target, read_only, retries, retry_delay)
    try:
        if not read_only:
            migrate(con)
        yield con
    finally:
        con.close()


def _open(target: str, read_only: bool, retries: int, retry_delay: float):
    """duckdb.connect, translating lock conflicts into StoreLockedError after `retries` retries."""
    for attempt in range(retries + 1):
        try:
            return duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as error:
            if "Could not set lock" not in str(error):
                raise StoreError(f"cannot open the store {target}: {error}") from error
            if attempt == retries:
                raise StoreLockedError.from_duckdb(target, error) from error
            time.sleep(retry_delay)
        except duckdb.ConnectionException as error:
            if "different configuration" not in str(error):
                raise
            raise StoreError(
                f"the store {target} is already open in this process in the other mode "
                "(read-only vs read-write); close that connection first"
            ) from error
    raise AssertionError("unreachable")


# ---- the single writer -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """What the caller knows about a run; write_run adds the counts and portfolio figures."""

    run_id: str
    kind: str
    strategy: str
    params: dict
    config_hash: str
    data_source: str
    data_hash: str
    code_version: str
    started_at: datetime
    finished_at: datetime
    status: str
    sweep_id: str | None = None
    flow_run_id: str | None = None

    def __post_init__(self) -> None:
        if not self.run_id or not self.kind:
            raise ValueError(f"run_id and kind must not be empty (run_id={self.run_id!r})")
        if self.status not in STATUSES:
            raise ValueError(f"run {self.run_id}: status {self.status!r} is not one of {STATUSES}")


def new_run_id() -> str:
    """A sortable run id: UTC time to the second, a dash and 6 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def write_run(
    path: str | Path,
    run: RunRecord,
    results: Sequence[SecurityResult],
    failures: Sequence[Failure],
    portfolio: dict,
    *,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> None:
    """Store one run in one transaction, replacing any earlier write of the same run_id."""
    _check_securities(results, failures)
    row = _runs_row(run, results, failures, portfolio)
    tables = {  # built before connecting, so the file is locked only for the transaction
        "security_results": _summary_table(results),
        "trades": _trades_table(results),
        "daily_pnl": _daily_table(results),
        "failures": _failures_table(failures),
    }
    with connect(path, retries=retries, retry_delay=retry_delay) as con:
        con.execute("BEGIN")
        try:
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run.run_id])
            _insert_runs_row(con, row)
            for table, data in tables.items():
                _insert_arrow(con, table, run.run_id, data)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise


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


def _runs_row(run: RunRecord, results, failures, portfolio: dict) -> dict:
    """The runs row: the record, counts derived from results/failures, portfolio figures or NULL."""
    row = {name: getattr(run, name) for name in run.__dataclass_fields__}
    row["params"] = _json(run.params)
    row["started_at"], row["finished_at"] = _naive_utc(run.started_at), _naive_utc(run.finished_at)
    row["securities"] = len(results) + len(failures)
    row["securities_ok"], row["securities_failed"] = len(results), len(failures)
    row["trades"] = sum(len(r.trades) for r in results)
    for name in PORTFOLIO_FIELDS:
        value = portfolio.get(name)
        row[name] = None if value is None or math.isnan(value) else float(value)
    return row


def _insert_runs_row(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    """Insert the runs row."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", list(row.values()))


def _insert_arrow(con: duckdb.DuckDBPyConnection, table: str, run_id: str, data: pa.Table) -> None:
    """Bulk-insert an Arrow table's columns (by name) plus run_id into `table`."""
    if data.num_rows == 0:
        return
    columns = ", ".join(f'"{name}"' for name in data.column_names)
    con.register("store_source", data)
    try:
        con.execute(
            f"INSERT INTO {table} (run_id, {columns}) SELECT ?, {columns} FROM store_source",
            [run_id],
        )
    finally:
        con.unregister("store_source")


def _summary_table(results: Sequence[SecurityResult]) -> pa.Table:
    """One row per security: the SUMMARY_FIELDS columns (NaN stored as NULL) and params JSON."""
    columns = {}
    for name, type_ in SUMMARY_FIELDS:
        values = [r.summary[name] for r in results]
        if type_ == "DATE":
            values = pd.to_datetime(pd.Series(values, dtype=object)).to_numpy("datetime64[D]")
        columns[name] = pa.array(values, type=_ARROW_TYPES[type_], from_pandas=True)
    columns["params"] = pa.array([_json(r.params) for r in results], type=pa.string())
    return pa.table(columns)


def _trades_table(results: Sequence[SecurityResult]) -> pa.Table:
    """All securities' trades in one Arrow table, with a leading security column."""
    parts = []
    for r in results:
        frame = _columns(r, "trades", r.trades, TRADE_COLUMNS)
        try:
            body = pa.Table.from_pandas(frame, schema=_TRADES_SCHEMA, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise StoreError(
                f"security {r.security}: trades have unexpected types: {error}"
            ) from error
        body = body.replace_schema_metadata(None)
        parts.append(body.add_column(0, "security", pa.repeat(pa.scalar(r.security), len(body))))
    if not parts:
        return _TRADES_SCHEMA.insert(0, pa.field("security", pa.string())).empty_table()
    return pa.concat_tables(parts)


def _daily_table(results: Sequence[SecurityResult]) -> pa.Table:
    """All securities' daily P&L; dates may be datetime64 (floored to the day) or datetime.date."""
    parts = []
    for r in results:
        daily = _columns(r, "daily", r.daily, DAILY_COLUMNS)
        try:
            arrays = [
                pa.repeat(pa.scalar(r.security), len(daily)),
                pd.to_datetime(daily["date"]).to_numpy("datetime64[D]"),
                *(daily[c].to_numpy("float64") for c in ("realized_pnl", "cumulative_pnl")),
                daily["trades"].to_numpy("int64"),
            ]
            parts.append(pa.Table.from_arrays(arrays, schema=_DAILY_SCHEMA))
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise StoreError(
                f"security {r.security}: daily has unexpected types: {error}"
            ) from error
    return pa.concat_tables(parts) if parts else _DAILY_SCHEMA.empty_table()


def _failures_table(failures: Sequence[Failure]) -> pa.Table:
    """One row per failed security."""
    return pa.Table.from_pylist([asdict(f) for f in failures], schema=_FAILURES_SCHEMA)


def _columns(result: SecurityResult, what: str, frame: pd.DataFrame, columns) -> pd.DataFrame:
    """`frame[columns]`, or a StoreError naming the security and the missing columns."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StoreError(f"security {result.security}: {what} lack columns {missing}")
    return frame[list(columns)]


# ---- readers (read-only, short-lived connections) ------------------------------------------------


def read_run(path: str | Path, run_id: str) -> dict:
    """The runs row of `run_id` as a dict (params decoded), or StoreError if there is none."""
    with connect(path, read_only=True) as con:
        cursor = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    if not rows:
        raise StoreError(
            f"no run {run_id!r} in {path}; list runs with `SELECT * FROM v_run_summary`"
        )
    row = dict(zip(names, rows[0], strict=True))
    row["params"] = json.loads(row["params"]) if row["params"] is not None else None
    return row


def read_trades(path: str | Path, run_id: str, security: str | None = None) -> pd.DataFrame:
    """The stored trades of a run (optionally one security): security + TRADE_COLUMNS, by seq."""
    columns = ", ".join(f'"{c}"' for c in ("security", *TRADE_COLUMNS))
    where, params = "run_id = ?", [run_id]
    if security is not None:
        where, params = where + " AND security = ?", [run_id, security]
    with connect(path, read_only=True) as con:
        if not con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
            raise StoreError(
                f"no run {run_id!r} in {path}; list runs with `SELECT * FROM v_run_summary`"
            )
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
    """The stored cells of a sweep, oldest first: run_id, strategy, config_hash, status, and
    `retryable_failures` (failures other than bad input, worth recomputing); empty if no store."""
    columns = ["run_id", "strategy", "config_hash", "status", "retryable_failures"]
    if str(path) != ":memory:" and not Path(path).exists():
        return pd.DataFrame(columns=columns)
    sql = """SELECT r.run_id, r.strategy, r.config_hash, r.status,
                    CAST(count(f.security) FILTER (WHERE f.error_type <> 'InputError') AS BIGINT)
                        AS retryable_failures
             FROM runs r LEFT JOIN failures f USING (run_id)
             WHERE r.kind = 'sweep' AND r.sweep_id = ?
             GROUP BY ALL ORDER BY max(r.finished_at), r.run_id"""
    with connect(path, read_only=True, retries=3) as con:
        return con.sql(sql, params=[sweep_id]).df()[columns]


def query(path: str | Path, sql: str) -> pd.DataFrame:
    """Run one SQL query on a read-only connection and return the result as a DataFrame."""
    with connect(path, read_only=True) as con:
        relation = con.sql(sql)
        return relation.df() if relation is not None else pd.DataFrame()


# ---- small helpers -----------------------------------------------------------------------------


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; a failure to roll back must not hide the original error."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _json(value: dict | None) -> str | None:
    """Canonical JSON text (sorted keys), so equal parameter sets compare equal as text."""
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _naive_utc(moment: datetime) -> datetime:
    """A naive UTC datetime (TIMESTAMP has no zone); aware datetimes are converted to UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
