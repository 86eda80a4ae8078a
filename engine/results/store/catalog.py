"""The store's catalog of the tick history and the nightly loop (tables of m007_nightly).

* `ingested_files`: one row per drop file ingested (or failed) into a history: path, content
  hash, size, sheets, rows, first and last date, status (`ingested`, `partial`: some sheets
  failed, `failed`), error, and how many days were new, revised or unchanged.
* `history_days`: one row per revision of a stored day: security, date, rows, the content hash of
  the day's rows, the source file, the revision number (1, 2, ...) and a warning (e.g. a
  replacement with fewer rows). Old revisions are kept; the current one has the highest number.
* `run_days`: the day hashes each nightly run used; `nightly_runs`: one row per night and
  strategy; `nightly_diffs`: the regression diff of `engine.results.diff`.

Each write is one transaction on a short-lived connection; inserts go through Arrow (fast).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from engine.results.diff import DayDiff, DayFigures, RunDays
from engine.results.store.connection import _naive_utc, _rollback, connect
from engine.results.store.writer import _insert_arrow

_TYPES = {
    "V": pa.string(),
    "B": pa.int64(),
    "F": pa.float64(),
    "D": pa.date32(),
    "T": pa.timestamp("us"),
}
INGESTED_FILES = (
    "history_id:V path:V content_hash:V size:B sheets:B rows:B rows_dropped:B first_date:D "
    "last_date:D ingested_at:T status:V error:V days_new:B days_revised:B days_unchanged:B"
)
HISTORY_DAYS = (
    "history_id:V security:V date:D rows:B content_hash:V source_file:V source_hash:V "
    "revision:B ingested_at:T warning:V"
)
RUN_DAYS = "run_id:V security:V date:D content_hash:V"
NIGHTLY_RUNS = (
    "night_id:V flow_run_id:V started_at:T strategy:V source:V run_id:V previous_run_id:V "
    "status:V error:V"
)
NIGHTLY_DIFFS = (
    "run_id:V previous_run_id:V strategy:V security:V date:D status:V revised_from:D reason:V "
    "realized_pnl_before:F realized_pnl_after:F trades_before:B trades_after:B "
    "net_pnl_before:F net_pnl_after:F"
)


def _schema(spec: str) -> pa.Schema:
    return pa.schema([(n, _TYPES[t]) for n, t in (c.split(":") for c in spec.split())])


def _insert(con: duckdb.DuckDBPyConnection, table: str, spec: str, rows: Sequence[dict]) -> None:
    """Insert `rows` (dicts keyed by the columns of `spec`) through one Arrow table."""
    if rows:
        _insert_arrow(con, table, pa.Table.from_pylist(list(rows), schema=_schema(spec)))


def _transaction(con: duckdb.DuckDBPyConnection, work) -> None:
    con.execute("BEGIN")
    try:
        work()
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def now() -> dt.datetime:
    """The catalog's timestamps: naive UTC."""
    return _naive_utc(dt.datetime.now(dt.UTC))


# ---- the tick history ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredDay:
    """The current revision of a stored day."""

    content_hash: str
    rows: int
    revision: int


@dataclass
class HistoryState:
    """What the catalog knows of a history: file hashes ingested, the current day revisions."""

    ingested: set[str]
    days: dict[tuple[str, dt.date], StoredDay]


def history_state(con: duckdb.DuckDBPyConnection, history_id: str) -> HistoryState:
    """The ingested file hashes (`ingested` or `partial`) and current days of a history."""
    files = con.execute(
        "SELECT DISTINCT content_hash FROM ingested_files WHERE history_id = ? "
        "AND status IN ('ingested', 'partial')",
        [history_id],
    ).fetchall()
    days = con.execute(
        'SELECT security, "date", content_hash, "rows", revision FROM history_days '
        "WHERE history_id = ? QUALIFY revision = max(revision) OVER (PARTITION BY "
        'security, "date")',
        [history_id],
    ).fetchall()
    return HistoryState(
        ingested={h for (h,) in files},
        days={(s, d): StoredDay(h, int(r), int(v)) for s, d, h, r, v in days},
    )


def record_file(con: duckdb.DuckDBPyConnection, file_row: dict, day_rows: Sequence[dict]) -> None:
    """One drop file's catalog rows (its `ingested_files` row and new day revisions), in one
    transaction; call it only once the day files are in place."""

    def work() -> None:
        _insert(con, "ingested_files", INGESTED_FILES, [file_row])
        _insert(con, "history_days", HISTORY_DAYS, day_rows)

    _transaction(con, work)


# ---- nightly runs -------------------------------------------------------------------------------


def previous_nightly_run(
    store: str | Path, strategy: str, source: str, night_id: str
) -> str | None:
    """The run of the latest earlier night of `strategy` on the same data `source` (a history id
    or a data path) that stored a run that did not fail entirely; None if there is none."""
    with connect(store, read_only=True, retries=30) as con:
        rows = con.execute(
            "SELECT n.run_id FROM nightly_runs n JOIN runs r USING (run_id) "
            "WHERE n.strategy = ? AND n.source = ? AND n.night_id < ? AND r.status <> 'failed' "
            "ORDER BY n.night_id DESC LIMIT 1",
            [strategy, source, night_id],
        ).fetchall()
    return rows[0][0] if rows else None


def read_run_days(
    store: str | Path, run_id: str, days: dict[tuple[str, dt.date], str | None] | None = None
) -> RunDays:
    """A stored run as the diff sees it: lineage, daily figures of the securities it backtested,
    and its days: `days` when given, else the `run_days` recorded for it (without any, the dates
    it has fills on, hashes unknown)."""
    with connect(store, read_only=True, retries=30) as con:
        lineage = con.execute(
            "SELECT code_version, config_hash, data_hash FROM runs WHERE run_id = ?", [run_id]
        ).fetchall()
        if not lineage:
            raise KeyError(f"no run {run_id!r} in {store}")
        figures = _figures(con, run_id)
        if days is None:
            days = _recorded_days(con, run_id) or dict.fromkeys(figures)
    code, config, data = (value or "" for value in lineage[0])
    return RunDays(run_id, code, config, data, days, figures)


def _figures(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """(security, date) -> DayFigures from daily_pnl; net P&L is realized P&L less `fees` once
    the store has them (m006), a `net_pnl` column if one appears, else realized P&L."""
    names = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'daily_pnl'"
        ).fetchall()
    }
    net = "realized_pnl"
    if "net_pnl" in names:
        net = "net_pnl"
    elif "fees" in names:
        net = "realized_pnl - COALESCE(fees, 0)"
    rows = con.execute(
        f'SELECT security, "date", realized_pnl, trades, {net} FROM daily_pnl WHERE run_id = ?',
        [run_id],
    ).fetchall()
    return {(s, d): DayFigures(float(r), int(t), float(n)) for s, d, r, t, n in rows}


def _recorded_days(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    rows = con.execute(
        'SELECT security, "date", content_hash FROM run_days WHERE run_id = ?', [run_id]
    ).fetchall()
    return {(s, d): h for s, d, h in rows}


def record_night(
    store: str | Path,
    night: dict,
    days: dict[tuple[str, dt.date], str | None],
    diffs: Sequence[DayDiff],
) -> None:
    """One strategy's night in one transaction: its `nightly_runs` row, the days its run used
    and its diff (a re-record of the same night and strategy replaces them)."""
    run_id = night.get("run_id")
    run_days = [
        dict(run_id=run_id, security=s, date=d, content_hash=h) for (s, d), h in days.items()
    ]
    rows = [_diff_row(night, diff) for diff in diffs]

    def work() -> None:
        con.execute(
            "DELETE FROM nightly_runs WHERE night_id = ? AND strategy = ?",
            [night["night_id"], night["strategy"]],
        )
        if run_id:
            con.execute("DELETE FROM run_days WHERE run_id = ?", [run_id])
            con.execute("DELETE FROM nightly_diffs WHERE run_id = ?", [run_id])
        _insert(con, "nightly_runs", NIGHTLY_RUNS, [night])
        _insert(con, "run_days", RUN_DAYS, run_days if run_id and any(days.values()) else [])
        _insert(con, "nightly_diffs", NIGHTLY_DIFFS, rows)

    with connect(store, retries=30) as con:
        _transaction(con, work)


def _diff_row(night: dict, diff: DayDiff) -> dict:
    before, after = diff.before, diff.after
    return dict(
        run_id=night["run_id"],
        previous_run_id=night.get("previous_run_id"),
        strategy=night["strategy"],
        security=diff.security,
        date=diff.date,
        status=diff.status,
        revised_from=diff.revised_from,
        reason=diff.reason or None,
        realized_pnl_before=None if before is None else before.realized_pnl,
        realized_pnl_after=None if after is None else after.realized_pnl,
        trades_before=None if before is None else before.trades,
        trades_after=None if after is None else after.trades,
        net_pnl_before=None if before is None else before.net_pnl,
        net_pnl_after=None if after is None else after.net_pnl,
    )
