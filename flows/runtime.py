"""Where flows run: the Prefect API (a running server, or a temporary one we start), and the
Dask task runner (a local cluster, or an existing scheduler by address)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from engine import settings

# Settings that suit a 2-core machine, applied before Prefect is imported (facts §2).
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "DASK_LOGGING__DISTRIBUTED": "warning",  # cluster start/stop chatter hides the run's progress
}
for _key, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_key, _value)


def make_task_runner(dask_address: str | None = None, workers: int | None = None):
    """A DaskTaskRunner: the scheduler at `dask_address` (or $MMFLOW_DASK_ADDRESS) if given,
    else a local cluster of single-threaded worker processes, one per core by default.
    MMFLOW_TASK_RUNNER=threads swaps in Prefect's thread pool (tests, debugging)."""
    if settings.task_runner_kind() == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers or 2)
    from prefect_dask import DaskTaskRunner

    address = settings.dask_address(dask_address)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.workers(workers),
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def _drain_workers() -> None:
    """Send buffered run logs and events before a temporary server goes away (as Prefect's own
    test harness does); otherwise the process waits on retries to a server that is gone."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        except RuntimeError:  # the worker never started
            pass
        result = EventsWorker.drain_all()
        if inspect.isawaitable(result):
            await result

    try:
        run_coro_as_sync(drain())
    except Exception:  # noqa: BLE001 - best effort: a lost log line must not mask the outcome
        pass


def _reconcile(liveness) -> None:
    """Mark Crashed our flow runs whose process died (they would show RUNNING forever)."""
    crashed = liveness.reconcile()
    if crashed:
        print(f"marked {len(crashed)} flow run(s) Crashed whose process is gone: "
              f"{', '.join(crashed)}")  # fmt: skip


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use $PREFECT_API_URL when set; otherwise start one temporary local server for this process.

    Starting it here (rather than letting each Prefect client start its own "ephemeral" server)
    matters with Dask: the URL travels to the worker processes, so they all report to one server
    instead of each starting another (facts §2).
    """
    import prefect.settings

    from flows import liveness

    url = prefect.settings.PREFECT_API_URL.value()
    if url:
        _reconcile(liveness)
        yield url
        return
    from prefect.server.api.server import SubprocessASGIServer  # 2-10 s import: only when needed

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    SubprocessASGIServer._instances[None] = (
        server  # Prefect internals reuse it, never start another
    )
    try:
        with prefect.settings.temporary_settings(
            {prefect.settings.PREFECT_API_URL: server.api_url}
        ):
            try:
                _reconcile(liveness)
                yield server.api_url
            finally:  # also on Ctrl-C: otherwise log shipping retries against a dead server
                _drain_workers()
    finally:
        server.stop()
        SubprocessASGIServer._instances.pop(None, None)
