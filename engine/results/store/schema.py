"""The store's schema: an ordered list of named migrations, each fixed DDL text, frozen once shipped.

Nothing here derives a table from current code: a new column or a changed view is a new migration
appended to `MIGRATIONS`, and `migrate` applies the ones a store has not recorded in `migrations`
(name, applied_at), each in its own transaction. A store made by any earlier version upgrades to
the same schema as a new one (tests/engine/test_store_migrations.py checks it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb

from engine.results.store.views import (
    V_EDGE_VS_ADVERSE_SELECTION_M006,
    V_MARKOUT_CURVE_M006,
    V_NIGHTLY_SUMMARY_M007,
    V_RUN_SUMMARY_M002,
    V_RUN_SUMMARY_M004,
    V_STRATEGY_COMPARISON_M002,
    V_STRATEGY_COMPARISON_M004,
)

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register `fn` as the next schema migration; its name is recorded once applied."""
    MIGRATIONS.append(fn)
    return fn


# ---- shipped migrations: never edit one; append a new one ------------------------------------


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
    con.execute(
        """CREATE TABLE security_results (
        run_id VARCHAR NOT NULL, security VARCHAR, strategy VARCHAR, trades BIGINT,
        buy_trades BIGINT, sell_trades BIGINT, volume BIGINT, notional DOUBLE,
        final_position BIGINT, realized_pnl DOUBLE, unrealized_pnl DOUBLE, total_pnl DOUBLE,
        last_price DOUBLE, rows_read BIGINT, rows_kept BIGINT, rows_in_window BIGINT,
        bid_rows BIGINT, ask_rows BIGINT, trade_rows BIGINT, dropped_bad_timestamp BIGINT,
        dropped_bad_price BIGINT, dropped_nonpositive_price BIGINT, market_dates BIGINT,
        strategy_dates BIGINT, first_date DATE, last_date DATE, stop_loss_triggers BIGINT,
        avg_pnl_per_trade DOUBLE, sharpe_ratio DOUBLE, max_drawdown DOUBLE,
        max_drawdown_pct DOUBLE, calmar_ratio DOUBLE, win_rate DOUBLE, profit_factor DOUBLE,
        params JSON, PRIMARY KEY (run_id, security))"""
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
    """Create v_run_summary and v_strategy_comparison (replaced by m004_views)."""
    con.execute(V_RUN_SUMMARY_M002)
    con.execute(V_STRATEGY_COMPARISON_M002)


@migration
def m003_pnl_names_and_git(con: duckdb.DuckDBPyConnection) -> None:
    """runs: realized_pnl, unrealized_pnl, git_commit, git_dirty; total_pnl = realized + unrealized.

    Until now `runs.total_pnl` held the portfolio's *realized* P&L while
    `security_results.total_pnl` held realized + unrealized. Existing runs keep their realized
    figure as `realized_pnl`, get the sum of their securities' `unrealized_pnl` (0 when none), and
    `total_pnl` becomes their sum, so the name means the same in both tables.
    """
    con.execute("ALTER TABLE runs ADD COLUMN realized_pnl DOUBLE")
    con.execute("ALTER TABLE runs ADD COLUMN unrealized_pnl DOUBLE")
    con.execute("ALTER TABLE runs ADD COLUMN git_commit VARCHAR")
    con.execute("ALTER TABLE runs ADD COLUMN git_dirty BOOLEAN")
    con.execute(
        """UPDATE runs
        SET realized_pnl = total_pnl,
            unrealized_pnl = u.unrealized_pnl,
            total_pnl = total_pnl + u.unrealized_pnl
        FROM (SELECT r.run_id, COALESCE(SUM(s.unrealized_pnl), 0) AS unrealized_pnl
              FROM runs r LEFT JOIN security_results s USING (run_id)
              GROUP BY r.run_id) u
        WHERE u.run_id = runs.run_id"""
    )


@migration
def m004_views(con: duckdb.DuckDBPyConnection) -> None:
    """Replace both views: lineage and the three P&L figures per run; comparison per data_hash."""
    con.execute(V_RUN_SUMMARY_M004)
    con.execute(V_STRATEGY_COMPARISON_M004)


@migration
def m005_input_rule_counts(con: duckdb.DuckDBPyConnection) -> None:
    """security_results counts the rows dropped by the two newer input rules (0 for older runs)."""
    for name in ("dropped_nonfinite_price", "dropped_bad_size"):
        con.execute(f"ALTER TABLE security_results ADD COLUMN {name} BIGINT DEFAULT 0")


# m006_analytics's tables (shipped; frozen), ANALYTICS.md: one row per run and security, per run,
# security and fill kind, and per fill.
SECURITY_ANALYTICS_M006 = """CREATE TABLE security_analytics (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, fills BIGINT, quote_fills BIGINT,
        eod_flatten_fills BIGINT, stop_loss_fills BIGINT, notional DOUBLE, edge_total DOUBLE,
        edge_bps DOUBLE, markout_total_1 DOUBLE, markout_total_5 DOUBLE,
        markout_total_30 DOUBLE, markout_total_60 DOUBLE, markout_total_300 DOUBLE,
        markout_bps_1 DOUBLE, markout_bps_5 DOUBLE, markout_bps_30 DOUBLE, markout_bps_60 DOUBLE,
        markout_bps_300 DOUBLE, adverse_selection_1 DOUBLE, adverse_selection_5 DOUBLE,
        adverse_selection_30 DOUBLE, adverse_selection_60 DOUBLE, adverse_selection_300 DOUBLE,
        undefined_mid_0 BIGINT, undefined_mid_1 BIGINT, undefined_mid_5 BIGINT,
        undefined_mid_30 BIGINT, undefined_mid_60 BIGINT, undefined_mid_300 BIGINT,
        quotes_placed BIGINT, fill_ratio DOUBLE, uptime_two_sided DOUBLE, uptime_any DOUBLE,
        window_seconds DOUBLE, max_abs_position BIGINT, avg_abs_position DOUBLE,
        time_at_limit DOUBLE, inventory_half_life_min DOUBLE, total_mtm DOUBLE,
        spread_capture DOUBLE, inventory_pnl DOUBLE, fees DOUBLE, realized_pnl DOUBLE,
        net_pnl DOUBLE, PRIMARY KEY (run_id, security))"""

SECURITY_MARKOUTS_M006 = """CREATE TABLE security_markouts (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, kind VARCHAR NOT NULL, fills BIGINT,
        notional DOUBLE, edge_total DOUBLE, edge_bps DOUBLE, markout_total_1 DOUBLE,
        markout_total_5 DOUBLE, markout_total_30 DOUBLE, markout_total_60 DOUBLE,
        markout_total_300 DOUBLE, markout_bps_1 DOUBLE, markout_bps_5 DOUBLE,
        markout_bps_30 DOUBLE, markout_bps_60 DOUBLE, markout_bps_300 DOUBLE,
        adverse_selection_1 DOUBLE, adverse_selection_5 DOUBLE, adverse_selection_30 DOUBLE,
        adverse_selection_60 DOUBLE, adverse_selection_300 DOUBLE, undefined_mid_0 BIGINT,
        undefined_mid_1 BIGINT, undefined_mid_5 BIGINT, undefined_mid_30 BIGINT,
        undefined_mid_60 BIGINT, undefined_mid_300 BIGINT, notional_mid_0 DOUBLE,
        notional_mid_1 DOUBLE, notional_mid_5 DOUBLE, notional_mid_30 DOUBLE,
        notional_mid_60 DOUBLE, notional_mid_300 DOUBLE, PRIMARY KEY (run_id, security, kind))"""

FILL_ANALYTICS_M006 = """CREATE TABLE fill_analytics (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, seq BIGINT, "row" BIGINT,
        kind VARCHAR, fee DOUBLE, mid_0 DOUBLE, mid_1 DOUBLE, mid_5 DOUBLE, mid_30 DOUBLE,
        mid_60 DOUBLE, mid_300 DOUBLE, edge DOUBLE, markout_1 DOUBLE, markout_5 DOUBLE,
        markout_30 DOUBLE, markout_60 DOUBLE, markout_300 DOUBLE)"""


@migration
def m006_analytics(con: duckdb.DuckDBPyConnection) -> None:
    """Fill quality, inventory and fees (ANALYTICS.md): the security_analytics, security_markouts
    and fill_analytics tables, `mtm_pnl` and `fees` in daily_pnl, the portfolio's analytics in
    runs, and the v_markout_curve and v_edge_vs_adverse_selection views. Runs stored before had
    no fees: their `fees` become 0 and `net_pnl` their realized P&L; the rest stays NULL."""
    for name in (
        "fees",
        "net_pnl",
        "edge_bps",
        "markout_bps_60",
        "uptime_two_sided",
        "fill_ratio",
        "avg_abs_position",
    ):
        con.execute(f"ALTER TABLE runs ADD COLUMN {name} DOUBLE")
    con.execute("UPDATE runs SET fees = 0, net_pnl = realized_pnl")
    con.execute("ALTER TABLE daily_pnl ADD COLUMN mtm_pnl DOUBLE")
    con.execute("ALTER TABLE daily_pnl ADD COLUMN fees DOUBLE")
    con.execute("UPDATE daily_pnl SET fees = 0")
    for ddl in (SECURITY_ANALYTICS_M006, SECURITY_MARKOUTS_M006, FILL_ANALYTICS_M006):
        con.execute(ddl)
    con.execute(V_MARKOUT_CURVE_M006)
    con.execute(V_EDGE_VS_ADVERSE_SELECTION_M006)


@migration
def m007_nightly(con: duckdb.DuckDBPyConnection) -> None:
    """The tick history's catalog (ingested_files, history_days: every revision of a day kept),
    the days each run used (run_days), the nightly runs, their regression diffs and a view."""
    con.execute(
        """CREATE TABLE ingested_files (
        history_id VARCHAR NOT NULL, path VARCHAR NOT NULL, content_hash VARCHAR NOT NULL,
        size BIGINT, sheets BIGINT, rows BIGINT, rows_dropped BIGINT, first_date DATE,
        last_date DATE, ingested_at TIMESTAMP, status VARCHAR NOT NULL, error VARCHAR,
        days_new BIGINT, days_revised BIGINT, days_unchanged BIGINT)"""
    )
    con.execute(
        """CREATE TABLE history_days (
        history_id VARCHAR NOT NULL, security VARCHAR NOT NULL, "date" DATE NOT NULL,
        "rows" BIGINT, content_hash VARCHAR NOT NULL, source_file VARCHAR, source_hash VARCHAR,
        revision BIGINT NOT NULL, ingested_at TIMESTAMP, warning VARCHAR,
        PRIMARY KEY (history_id, security, "date", revision))"""
    )
    con.execute(
        """CREATE TABLE run_days (
        run_id VARCHAR NOT NULL, security VARCHAR NOT NULL, "date" DATE NOT NULL,
        content_hash VARCHAR)"""
    )
    con.execute(
        """CREATE TABLE nightly_runs (
        night_id VARCHAR NOT NULL, flow_run_id VARCHAR, started_at TIMESTAMP,
        strategy VARCHAR NOT NULL, source VARCHAR, run_id VARCHAR, previous_run_id VARCHAR,
        status VARCHAR NOT NULL, error VARCHAR)"""
    )
    con.execute(
        """CREATE TABLE nightly_diffs (
        run_id VARCHAR NOT NULL, previous_run_id VARCHAR, strategy VARCHAR,
        security VARCHAR NOT NULL, "date" DATE NOT NULL, status VARCHAR NOT NULL,
        revised_from DATE, reason VARCHAR, realized_pnl_before DOUBLE, realized_pnl_after DOUBLE,
        trades_before BIGINT, trades_after BIGINT, net_pnl_before DOUBLE, net_pnl_after DOUBLE)"""
    )
    con.execute(V_NIGHTLY_SUMMARY_M007)


@migration
def m008_run_daily(con: duckdb.DuckDBPyConnection) -> None:
    """The portfolio's daily P&L of every run (run_daily: SPEC §0's combined curve, one row per
    date with fills), so a sweep cell stored without trades keeps its daily P&L in one row per
    date instead of one per security and date. Runs stored before get theirs from daily_pnl
    (fsum per date; mtm_pnl and fees NULL where any security lacked them)."""
    con.execute(
        """CREATE TABLE run_daily (
        run_id VARCHAR NOT NULL, "date" DATE NOT NULL, realized_pnl DOUBLE,
        cumulative_pnl DOUBLE, trades BIGINT, mtm_pnl DOUBLE, fees DOUBLE)"""
    )
    con.execute(
        """INSERT INTO run_daily
        SELECT run_id, "date", realized_pnl,
               sum(realized_pnl) OVER (PARTITION BY run_id ORDER BY "date"), trades, mtm_pnl, fees
        FROM (SELECT run_id, "date", fsum(realized_pnl) AS realized_pnl,
                     CAST(sum(trades) AS BIGINT) AS trades,
                     CASE WHEN count(mtm_pnl) = count(*) THEN fsum(mtm_pnl) END AS mtm_pnl,
                     CASE WHEN count(fees) = count(*) THEN fsum(fees) END AS fees
              FROM daily_pnl GROUP BY run_id, "date")"""
    )


# ---- applying them -----------------------------------------------------------------------------


def migrate(con: duckdb.DuckDBPyConnection, *, upto: str | None = None) -> list[str]:
    """Apply the missing migrations in order (up to and including `upto`); return names applied."""
    names = [fn.__name__ for fn in MIGRATIONS]
    if upto is not None and upto not in names:
        raise ValueError(f"no migration {upto!r}; migrations are {names}")
    con.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)"
    )
    done = {name for (name,) in con.execute("SELECT name FROM migrations").fetchall()}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ not in done:
            _apply(con, fn)
            applied.append(fn.__name__)
        if fn.__name__ == upto:
            break
    return applied


def pending(con: duckdb.DuckDBPyConnection) -> list[str] | None:
    """The migrations a store lacks, in order; None if it has no `migrations` table (no store)."""
    has_log = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = 'migrations'"
    ).fetchall()[0][0]
    if not has_log:
        return None
    done = {name for (name,) in con.execute("SELECT name FROM migrations").fetchall()}
    return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in done]


def _apply(con: duckdb.DuckDBPyConnection, fn: Migration) -> None:
    """Run one migration and record it, in one transaction."""
    con.execute("BEGIN")
    try:
        fn(con)
        applied_at = datetime.now(UTC).replace(tzinfo=None)  # TIMESTAMP: naive UTC
        con.execute("INSERT INTO migrations VALUES (?, ?)", [fn.__name__, applied_at])
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # must not hide the original error
            con.execute("ROLLBACK")
        raise
