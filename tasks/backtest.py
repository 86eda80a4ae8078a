"""Prefect tasks of the backtest flow: thin, typed verbs over the engine; no business logic here."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.data.source import DataSource, InputError, open_data
from engine.results import store as results_store
from engine.runner import backtest_security
from engine.types import Failure, SecurityResult

# Bad input is deterministic: retrying cannot help, so such failures end at the first attempt.
NOT_RETRIED = (InputError,)


def worth_retrying(task, task_run, state) -> bool:
    """Retry condition: anything but bad input (a killed worker, a flaky disk, ...)."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, NOT_RETRIED)


@task(name="prepare-data", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def prepare_data(
    data: str, securities: list[str] | None = None, max_sheets: int | None = None
) -> DataSource:
    """Open the data; a workbook is converted to its Parquet cache when it changed (SPEC §1.4)."""
    return open_data(data, securities=securities, max_sheets=max_sheets)


@task(
    name="backtest-security",
    task_run_name="backtest-{security}",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=worth_retrying,
    cache_policy=NO_CACHE,
)
def run_backtest(
    source: DataSource,
    security: str,
    strategy: str,
    config: dict | None = None,
    overrides: dict | None = None,
) -> SecurityResult:
    """Load one security's events from the cache and backtest it."""
    return backtest_security(source, security, strategy, config, overrides)


@task(name="store-results", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE)
def store_results(
    store: str,
    run: results_store.RunRecord,
    results: list[SecurityResult],
    failures: list[Failure],
    portfolio: dict,
) -> str:
    """Write one run into the DuckDB store in a single transaction; retried while it is locked."""
    results_store.write_run(store, run, results, failures, portfolio, retries=2, retry_delay=1.0)
    return run.run_id
