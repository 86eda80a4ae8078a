"""Prefect tasks of the sweep flow: evaluate a batch of cells on one security (cells are stored
with the backtest flow's `store_results`)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.data.source import DataSource
from engine.sweep import Cell, run_cells
from engine.types import SecurityResult
from tasks.backtest import RETRIED, undo_dask_malloc_trim


@task(
    name="sweep-security",
    task_run_name="sweep-{security}-{batch}",
    cache_policy=NO_CACHE,
    **RETRIED,
)
def run_sweep_cells(
    source: DataSource,
    security: str,
    cells: list[Cell],
    config: dict | None = None,
    batch: str = "",
    keep_trades: bool = True,
) -> list[SecurityResult]:
    """Load one security once and backtest it for every cell of the batch (`batch` names it);
    compact results (no trade tables) unless `keep_trades`."""
    undo_dask_malloc_trim()
    return run_cells(source, security, cells, config, keep_trades=keep_trades)
