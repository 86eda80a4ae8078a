"""The DuckDB results store: frozen schema migrations, short-lived connections, the single writer
and typed readers.

One DuckDB file holds every run. Open it read-only for SQL (`duckdb -readonly results.duckdb`), but
close the session when done: DuckDB allows one writer *or* many readers, so an idle CLI or notebook
makes the next `mmflow run` wait (`--store-timeout`) and then keep its results as a spill
(`spill.py`) that `mmflow store load-spill`, or the next run, loads.

Tables (key columns first; every run's rows are written in one transaction, so a reader never sees
half a run, and re-writing a run_id replaces it). One name, one meaning: in both `runs` and
`security_results`, `realized_pnl` is the sum of closed fills' P&L, `unrealized_pnl` marks the open
position to the last in-window trade price, and `total_pnl = realized_pnl + unrealized_pnl`.

* `runs`: one row per backtest or sweep cell (a `engine.run.Run`). `run_id` (sortable,
  `20261128T081500-3f9a2c`), `sweep_id`, `flow_run_id` (Prefect), `kind` ('backtest', 'sweep'),
  `strategy`, `params` (JSON: `{"config": ..., "overrides": {...}}`), `config_hash`,
  `data_source`, `data_hash`, `code_version`, `started_at`, `finished_at` (naive UTC), `status`
  ('completed', 'partial', 'failed'), `securities`, `securities_ok`, `securities_failed`, `trades`
  (rows stored in `trades`), the portfolio figures `total_pnl`, `sharpe_ratio`, `max_drawdown`,
  `max_drawdown_pct`, `calmar_ratio`, `win_rate`, `profit_factor` (NULL when undefined; the
  ratios are on the combined daily realized curve), then `realized_pnl`, `unrealized_pnl`,
  `git_commit` and `git_dirty` (the checkout's HEAD and uncommitted changes; NULL outside git).
* `security_results`: one row per (run_id, security): every per-security summary figure of
  `engine.types.SUMMARY_FIELDS` in its order (trades, volume, notional, realized/unrealized/total
  P&L, row counts, dates, Sharpe, drawdown, ...) plus `params` (JSON: the parameters resolved for
  that security). A test keeps the two equal; a new figure needs a new migration.
* `trades`: one row per fill (SPEC §5.1): run_id, security, `seq`, `timestamp` (microseconds),
  `side` ('buy'/'sell'), `fill_price`, `fill_qty`, `realized_pnl`, `position`, `pnl`.
* `daily_pnl`: one row per security and date with fills: `date`, `realized_pnl`, `cumulative_pnl`,
  `trades`, `mtm_pnl`, `fees` (none for a sweep cell stored without trades).
* `run_daily`: one row per run and date: the portfolio's daily P&L (every run, m008).
* `failures`: securities that could not be backtested: `attempts`, `error_type`, `message`.
* `migrations`: the applied schema migrations (`name`, `applied_at`), see `schema.py`.

Views (`views.py`): `v_run_summary` (one row per run, newest first, with lineage and the three P&L
figures) and `v_strategy_comparison` (one row per strategy, parameter set and `data_hash` across
stored runs; identical reruns, same strategy, config_hash, data_hash and code_version, count once).

Modules: `schema` (migrations), `views` (view text), `connection` (`connect`, errors), `writer`
(`write_run`), `reader` (`read_run` and the narrower reads), `spill` (runs kept on disk while
the store is locked).
"""

from __future__ import annotations

from engine.results.store.connection import StoreError, StoreLockedError, connect
from engine.results.store.reader import (
    SWEEP_CELL_COLUMNS,
    latest_run_id,
    query,
    read_run,
    read_sweep_cells,
    read_trades,
)
from engine.results.store.schema import MIGRATIONS, migrate
from engine.results.store.spill import (
    load_pending_spills,
    load_spill,
    pending_spills,
    spill_dir,
    spill_run,
)
from engine.results.store.writer import RUN_TABLES, write_run, write_runs
from engine.run import STATUSES, new_run_id

__all__ = [
    "load_pending_spills",
    "load_spill",
    "pending_spills",
    "spill_dir",
    "spill_run",
    "MIGRATIONS",
    "RUN_TABLES",
    "STATUSES",
    "SWEEP_CELL_COLUMNS",
    "StoreError",
    "StoreLockedError",
    "connect",
    "latest_run_id",
    "migrate",
    "new_run_id",
    "query",
    "read_run",
    "read_sweep_cells",
    "read_trades",
    "write_run",
    "write_runs",
]
