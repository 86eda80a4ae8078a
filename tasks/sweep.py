"""Prefect tasks of the sweep flow: evaluate a batch of cells on one security, store one cell."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine import store as results_store
from engine.data import DataSource
from engine.sweep import Cell, run_cells
from engine.types import Failure, SecurityResult
from tasks.backtest import _worth_retrying


@task(
    name="sweep-security",
    task_run_name="sweep-{security}-{batch}",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
)
def run_sweep_cells(
    source: DataSource,
    security: str,
    cells: list[Cell],
    config: dict | None = None,
    batch: str = "",
) -> list[SecurityResult]:
    """Load one security once and backtest it for every cell of the batch (`batch` names it)."""
    return run_cells(source, security, cells, config)


@task(
    name="store-cell",
    task_run_name="store-{run.run_id}",
    retries=3,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
)
def store_cell(
    store: str,
    run: results_store.RunRecord,
    results: list[SecurityResult],
    failures: list[Failure],
    portfolio: dict,
) -> str:
    """Write one sweep cell as its own run, in its own transaction; retried while locked."""
    results_store.write_run(store, run, results, failures, portfolio, retries=2, retry_delay=1.0)
    return run.run_id
