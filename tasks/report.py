"""Prefect tasks that write HTML reports next to the store (engine/results/report does the work)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from engine.results import report
from engine.run import Run


@task(name="write-run-report", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def write_run_report(run: Run, store: str) -> Path:
    """The run's HTML report, rendered from memory, to `reports/run-<run_id>.html` beside the store."""
    return report.write_run_report(run, report.default_report_path(store, f"run-{run.run_id}"))


@task(name="write-sweep-report", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def write_sweep_report(store: str, sweep_id: str) -> Path:
    """The sweep's HTML report in `reports/` beside the store (its reads retry a locked store)."""
    return report.write_sweep_report(store, sweep_id)


def report_or_none(task_obj, *args) -> Path | None:
    """Run a report task; a report that cannot be written is logged by Prefect, never fatal."""
    state = task_obj(*args, return_state=True)
    return state.result() if state.is_completed() else None
