"""Prefect tasks of the backtest and sweep flows: thin, typed verbs over the engine; no business
logic here. Every store write runs under the `mmflow-store` global concurrency limit, so flows and
deployments started at the same moment write one after the other (DuckDB allows one writer)."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from engine.data.source import DataSource, InputError, open_data
from engine.results import store as results_store
from engine.run import Run
from engine.runner import backtest_security
from engine.settings import STORE_CONCURRENCY_LIMIT
from tasks.slot import held_slot

DEFAULT_STORE_TIMEOUT = 120.0  # seconds a writer waits for a store held by another process
# Bad input is deterministic: retrying cannot help, so such failures end at the first attempt.
NOT_RETRIED = (InputError,)


class _BadInputInOneLine(logging.Filter):
    """Prefect logs a failed task with its traceback; for bad input the message (file, sheet,
    row, what to do) is the whole story, so the traceback is dropped from the log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], NOT_RETRIED):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs"):
    logging.getLogger(_name).addFilter(_BadInputInOneLine())


def worth_retrying(task, task_run, state) -> bool:
    """Retry condition: anything but bad input (a killed worker, a flaky disk, ...)."""
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, NOT_RETRIED)


@task(
    name="prepare-data",
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=worth_retrying,
    cache_policy=NO_CACHE,
)
def prepare_data(
    data: str,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    cache: str | None = None,
) -> DataSource:
    """Open the data (a path or URL); a workbook is converted to its Parquet cache when it
    changed (SPEC §1.4), under `cache` (a path or URL) when given."""
    return open_data(data, securities=securities, max_sheets=max_sheets, cache_dir=cache)


# The options of every task that loads or computes data: retried, except for bad input.
RETRIED = dict(retries=2, retry_delay_seconds=1, retry_condition_fn=worth_retrying)


@cache
def undo_dask_malloc_trim() -> None:
    """Dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back to
    the OS early). Setting it switches off glibc's adaptive mmap threshold, so every array over
    128 KiB is mapped and zeroed afresh: a sweep task ran 1.5x slower in a worker than in a
    plain process. Once per worker: trim above 64 MiB, map above 32 MiB (glibc only)."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to undo
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_trim_threshold, 64 << 20)
    libc.mallopt(m_mmap_threshold, 32 << 20)


@task(name="backtest-security", task_run_name="backtest-{security}", cache_policy=NO_CACHE,
      **RETRIED)  # fmt: skip
@functools.wraps(backtest_security)
def run_backtest(*args, **kwargs):
    """Load one security's events from the cache and backtest it (the engine function)."""
    undo_dask_malloc_trim()
    return backtest_security(*args, **kwargs)


@cache
def ensure_store_limit(api_url: str | None) -> None:
    """Create the `mmflow-store` global concurrency limit (one slot) if the server lacks it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(STORE_CONCURRENCY_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=STORE_CONCURRENCY_LIMIT, limit=1)
                )
            except ObjectAlreadyExists:  # created by a flow that started at the same moment
                pass


@contextmanager
def store_slot() -> Iterator[None]:
    """Hold the one `mmflow-store` slot (creating the limit when missing) while writing. With the
    Prefect server gone, write without it: the finished results matter more than the slot, and
    the store's own file lock still admits one writer."""
    import prefect.settings

    url = prefect.settings.PREFECT_API_URL.value()
    if url and not _answers(url):
        get_run_logger().warning("the Prefect API at %s is gone; storing without the slot", url)
        yield
        return
    ensure_store_limit(url)
    with held_slot(STORE_CONCURRENCY_LIMIT):
        yield


def _answers(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect server answers at `<api_url>/health`."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


@task(name="store-results", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def store_results(store: str, runs: list[Run], timeout: float = DEFAULT_STORE_TIMEOUT) -> list[str]:
    """Write runs into the store (one transaction each), after any spills still pending; while
    another process holds the file, wait up to `timeout` s, then keep the runs as spills. Returns
    the spill folders (empty when everything was stored): finished work is never thrown away."""
    logger = get_run_logger()
    deadline = time.monotonic() + timeout
    warned = False
    while True:
        try:
            with store_slot(), results_store.connect(store):
                # One open database for the batch: write_run's own connections in this process
                # share it, so a run skips re-opening the file and checkpointing it on close.
                for run_id in results_store.load_pending_spills(store, retries=0):
                    logger.info("loaded the spilled run %s into %s", run_id, store)
                results_store.write_runs(store, runs, retries=0)
            return []
        except results_store.StoreLockedError as error:
            if time.monotonic() >= deadline:
                return _spill(store, runs, error)
            if not warned:
                logger.warning("%s; waiting up to %.0f s for it", error, timeout)
                warned = True
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _spill(store: str, runs: list[Run], error: Exception) -> list[str]:
    """Keep runs that could not be stored as spills, and say how to load them."""
    folders = [str(results_store.spill_run(store, run)) for run in runs]
    get_run_logger().error(
        "%s; kept %d run(s) in %s; load with: mmflow store load-spill --store %s",
        error,
        len(folders),
        results_store.spill_dir(store) if len(folders) > 1 else folders[0],
        store,
    )
    return folders
