"""The view definitions of the store, one constant per view and migration: frozen text.

A shipped constant is never edited: a changed view is a new constant used by a new migration
(`schema.py`), so a store upgraded from any version ends with the same text as a new one.
"""

from __future__ import annotations

# ---- m002_views (shipped; frozen) --------------------------------------------------------------

V_RUN_SUMMARY_M002 = """CREATE VIEW v_run_summary AS
        SELECT run_id, sweep_id, kind, started_at, finished_at,
               epoch(finished_at - started_at) AS duration_seconds, strategy, params, status,
               securities, securities_ok, securities_failed, trades, total_pnl, sharpe_ratio,
               max_drawdown, max_drawdown_pct, calmar_ratio, win_rate, profit_factor,
               data_source, code_version
        FROM runs ORDER BY started_at DESC, run_id DESC"""

V_STRATEGY_COMPARISON_M002 = """CREATE VIEW v_strategy_comparison AS
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

# ---- m004_views (shipped; frozen) --------------------------------------------------------------

# One row per run, newest first, with its lineage and its P&L (total = realized + unrealized).
V_RUN_SUMMARY_M004 = """CREATE OR REPLACE VIEW v_run_summary AS
        SELECT run_id, sweep_id, kind, started_at, finished_at,
               epoch(finished_at - started_at) AS duration_seconds, strategy, params, status,
               securities, securities_ok, securities_failed, trades, realized_pnl,
               unrealized_pnl, total_pnl, sharpe_ratio, max_drawdown, max_drawdown_pct,
               calmar_ratio, win_rate, profit_factor, data_source, data_hash, config_hash,
               code_version, git_commit, git_dirty
        FROM runs ORDER BY started_at DESC, run_id DESC"""

# One row per (strategy, params JSON text, data_hash). Identical reruns (same strategy,
# config_hash, data_hash and code_version) count once: only the latest by (finished_at, run_id).
# The join keys may be NULL (a run without strategy or data hash), hence IS NOT DISTINCT FROM.
V_STRATEGY_COMPARISON_M004 = """CREATE OR REPLACE VIEW v_strategy_comparison AS
        WITH latest AS (
            SELECT * FROM runs
            QUALIFY row_number() OVER (
                PARTITION BY strategy, config_hash, data_hash, code_version
                ORDER BY finished_at DESC NULLS LAST, run_id DESC) = 1),
        per_run AS (
            SELECT strategy, CAST(params AS VARCHAR) AS params, data_hash, COUNT(*) AS runs,
                   CAST(COALESCE(SUM(trades), 0) AS BIGINT) AS trades,
                   SUM(realized_pnl) AS realized_pnl, SUM(total_pnl) AS total_pnl,
                   AVG(sharpe_ratio) AS avg_run_sharpe_ratio, MAX(started_at) AS last_started_at
            FROM latest GROUP BY ALL),
        per_security AS (
            SELECT r.strategy, CAST(r.params AS VARCHAR) AS params, r.data_hash,
                   COUNT(*) AS security_results, AVG(s.total_pnl) AS avg_security_pnl,
                   AVG(s.sharpe_ratio) AS avg_sharpe_ratio, AVG(s.win_rate) AS avg_win_rate,
                   AVG(s.max_drawdown) AS avg_max_drawdown
            FROM latest r JOIN security_results s USING (run_id) GROUP BY ALL)
        SELECT p.strategy, p.params, p.data_hash, p.runs,
               COALESCE(s.security_results, 0) AS security_results, p.trades, p.realized_pnl,
               p.total_pnl, p.total_pnl / p.runs AS avg_run_pnl, s.avg_security_pnl,
               s.avg_sharpe_ratio, p.avg_run_sharpe_ratio, s.avg_win_rate, s.avg_max_drawdown,
               p.last_started_at
        FROM per_run p LEFT JOIN per_security s
            ON p.strategy IS NOT DISTINCT FROM s.strategy
           AND p.params IS NOT DISTINCT FROM s.params
           AND p.data_hash IS NOT DISTINCT FROM s.data_hash
        ORDER BY p.total_pnl DESC NULLS LAST, p.strategy, p.params, p.data_hash"""
