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

# The latest of identical reruns (same strategy, config_hash, data_hash and code_version), by
# (finished_at, run_id): the first CTE of v_strategy_comparison (m004) and v_markout_curve (m006),
# shipped as part of their text (frozen).
LATEST_RUNS = """        WITH latest AS (
            SELECT * FROM runs
            QUALIFY row_number() OVER (
                PARTITION BY strategy, config_hash, data_hash, code_version
                ORDER BY finished_at DESC NULLS LAST, run_id DESC) = 1),"""

# One row per (strategy, params JSON text, data_hash). Identical reruns (same strategy,
# config_hash, data_hash and code_version) count once: only the latest by (finished_at, run_id).
# The join keys may be NULL (a run without strategy or data hash), hence IS NOT DISTINCT FROM.
V_STRATEGY_COMPARISON_M004 = f"""CREATE OR REPLACE VIEW v_strategy_comparison AS
{LATEST_RUNS}
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

# ---- m006_analytics (shipped; frozen) ----------------------------------------------------------

# The markout curve (ANALYTICS.md A6) of each strategy, parameter set (params JSON text), data_hash
# and fill kind ('all' and each kind): one row per horizon (0 = the edge at the print, then 1, 5,
# 30, 60 and 300 s), pooled exactly over securities and runs: 1e4 * sum of markouts / sum of
# p * q over the fills with that mid defined. Identical reruns count once, as in
# v_strategy_comparison.
V_MARKOUT_CURVE_M006 = f"""CREATE VIEW v_markout_curve AS
{LATEST_RUNS}
        pooled AS (
            SELECT r.strategy, CAST(r.params AS VARCHAR) AS params, r.data_hash, m.kind,
                   COUNT(DISTINCT r.run_id) AS runs, COUNT(*) AS security_results,
                   CAST(SUM(m.fills) AS BIGINT) AS fills,
                   SUM(m.edge_total) AS total_0, SUM(m.notional_mid_0) AS notional_0,
                   SUM(m.markout_total_1) AS total_1, SUM(m.notional_mid_1) AS notional_1,
                   SUM(m.markout_total_5) AS total_5, SUM(m.notional_mid_5) AS notional_5,
                   SUM(m.markout_total_30) AS total_30, SUM(m.notional_mid_30) AS notional_30,
                   SUM(m.markout_total_60) AS total_60, SUM(m.notional_mid_60) AS notional_60,
                   SUM(m.markout_total_300) AS total_300, SUM(m.notional_mid_300) AS notional_300
            FROM latest r JOIN security_markouts m USING (run_id) GROUP BY ALL),
        curve AS (
            SELECT p.strategy, p.params, p.data_hash, p.kind, p.runs, p.security_results,
                   p.fills, h.horizon_sec,
                   CASE h.horizon_sec WHEN 0 THEN total_0 WHEN 1 THEN total_1
                        WHEN 5 THEN total_5 WHEN 30 THEN total_30 WHEN 60 THEN total_60
                        ELSE total_300 END AS markout_total,
                   CASE h.horizon_sec WHEN 0 THEN notional_0 WHEN 1 THEN notional_1
                        WHEN 5 THEN notional_5 WHEN 30 THEN notional_30 WHEN 60 THEN notional_60
                        ELSE notional_300 END AS notional
            FROM pooled p CROSS JOIN (VALUES (0), (1), (5), (30), (60), (300)) h(horizon_sec))
        SELECT strategy, params, data_hash, kind, horizon_sec, runs, security_results, fills,
               markout_total, 1e4 * markout_total / NULLIF(notional, 0) AS markout_bps
        FROM curve
        ORDER BY strategy, params, data_hash, kind, horizon_sec"""

# Edge against adverse selection per run and security (ANALYTICS.md A6, A10, A11), newest run
# first: what the spread paid (edge), what the market took back within 60 s, and the P&L split.
# adverse_selection_bps_60 = edge_bps - markout_bps_60 (equal to 1e4 * adverse_selection_60 /
# notional when every fill has both mids).
V_EDGE_VS_ADVERSE_SELECTION_M006 = """CREATE VIEW v_edge_vs_adverse_selection AS
        SELECT r.run_id, r.strategy, CAST(r.params AS VARCHAR) AS params, r.data_hash,
               r.started_at, a.security, a.fills, a.quote_fills, a.notional, a.edge_total,
               a.edge_bps, a.markout_total_60, a.markout_bps_60, a.adverse_selection_60,
               a.edge_bps - a.markout_bps_60 AS adverse_selection_bps_60, a.spread_capture,
               a.inventory_pnl, a.fees, a.total_mtm, a.realized_pnl, a.net_pnl,
               a.uptime_two_sided, a.fill_ratio, a.avg_abs_position
        FROM runs r JOIN security_analytics a USING (run_id)
        ORDER BY r.started_at DESC, r.run_id DESC, a.security"""

# ---- m007_nightly (shipped; frozen) ------------------------------------------------------------

# One row per nightly run and strategy: its run, the run it was compared with, and how many days
# got each diff status (engine/results/diff.py); alarms = unexplained + missing days.
V_NIGHTLY_SUMMARY_M007 = """CREATE VIEW v_nightly_summary AS
        SELECT n.night_id, n.started_at, n.strategy, n.run_id, n.previous_run_id, n.status,
               n.error, count(d.status) AS days,
               count(*) FILTER (WHERE d.status = 'new') AS new,
               count(*) FILTER (WHERE d.status = 'unchanged') AS unchanged,
               count(*) FILTER (WHERE d.status = 'data_revised') AS data_revised,
               count(*) FILTER (WHERE d.status = 'code_changed') AS code_changed,
               count(*) FILTER (WHERE d.status = 'config_changed') AS config_changed,
               count(*) FILTER (WHERE d.status = 'unexplained') AS unexplained,
               count(*) FILTER (WHERE d.status = 'missing') AS missing,
               count(*) FILTER (WHERE d.status IN ('unexplained', 'missing')) AS alarms
        FROM nightly_runs n LEFT JOIN nightly_diffs d ON d.run_id = n.run_id
        GROUP BY ALL ORDER BY n.started_at DESC, n.night_id DESC, n.strategy"""
