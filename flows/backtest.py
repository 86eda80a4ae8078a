"""The `backtest` flow: one strategy over every security of a workbook or Parquet folder, fanned
out over Dask, failed securities retried, and the run stored in DuckDB by a single writer."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Failed

from engine.data.source import DataSource
from engine.lineage import code_version
from engine.params import config_hash, load_config, resolve_params
from engine.results import metrics
from engine.results.report import headline
from engine.results.store import RunRecord, new_run_id
from engine.sim import strategies
from engine.types import KEY_FIGURES, Failure, SecurityResult
from flows.runtime import DEFAULT_DATA, DEFAULT_STRATEGY, make_task_runner, store_path
from tasks.backtest import prepare_data, run_backtest, store_results
from tasks.report import report_or_none, write_run_report


def _attempts(task_run_id) -> int:
    """How often the task ran. Task states reach the API as events, a moment after the flow has
    the result, so wait (up to 5 s) until the API has the final state before reading run_count."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for _ in range(50):
            task_run = client.read_task_run(task_run_id)
            if task_run.state is not None and task_run.state.is_final():
                break
            time.sleep(0.1)
    return task_run.run_count or 1


def _failure(future, security: str, exc: object) -> Failure:
    """What a user needs to know about a security whose task failed for good."""
    if hasattr(exc, "allowed_failures"):  # Dask's KilledWorker: its worker died on every try
        return Failure(security, type(exc).__name__, str(exc), exc.allowed_failures + 1)
    attempts = 1
    try:
        attempts = _attempts(future.task_run_id)
    except Exception:  # noqa: BLE001 - the attempt count is informative only
        pass
    if isinstance(exc, BaseException):
        return Failure(security, type(exc).__name__, str(exc) or repr(exc), attempts)
    return Failure(security, "TaskFailed", str(future.state.message), attempts)


def backtest_securities(
    source: DataSource,
    strategy: str,
    config: dict | None,
    overrides: dict | None,
    *,
    dask_address: str | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[list[SecurityResult], list[Failure]]:
    """Map `run_backtest` over the securities on Dask; results in the source's security order.
    `timings`, when given, receives the seconds of cluster_start, compute and cluster_stop."""
    logger = get_run_logger()
    securities = list(source.securities)
    done: dict[str, SecurityResult | Failure] = {}
    started = time.perf_counter()
    with make_task_runner(dask_address, workers) as runner:
        getattr(runner, "client", None)  # Dask's runner starts its cluster on first use: now
        submitted = time.perf_counter()
        futures = {
            runner.submit(
                run_backtest,
                parameters=dict(
                    source=source,
                    security=security,
                    strategy=strategy,
                    config=config,
                    overrides=overrides,
                ),
            ): security
            for security in securities
        }
        for future in as_completed(list(futures)):
            security = futures[future]
            try:
                outcome = future.result(raise_on_failure=False)
            except Exception as exc:  # noqa: BLE001 - Dask's KilledWorker (worker died on every
                outcome = exc  # try) comes from outside the task: fail this security, not the run
            if isinstance(outcome, SecurityResult):
                result = done[security] = outcome
                logger.info(
                    "[%d/%d] %s: %d trades, realized P&L %s",
                    len(done),
                    len(securities),
                    security,
                    result.summary["trades"],
                    f"{result.summary['realized_pnl']:,.2f}",
                )
            else:
                failure = done[security] = _failure(future, security, outcome)
                logger.warning(
                    "[%d/%d] %s FAILED after %d attempt(s): %s: %s",
                    len(done),
                    len(securities),
                    security,
                    failure.attempts,
                    failure.error_type,
                    failure.message,
                )
        computed = time.perf_counter()
    if timings is not None:
        timings["cluster_start"] = submitted - started
        timings["compute"] = computed - submitted
        timings["cluster_stop"] = time.perf_counter() - computed
    results = [done[s] for s in securities if isinstance(done[s], SecurityResult)]
    failures = [done[s] for s in securities if isinstance(done[s], Failure)]
    return results, failures


def publish_artifacts(
    store: str, run_id: str, results: list[SecurityResult], failures: list[Failure], report
) -> None:
    """A summary table and the headline with the report's path (and any failures), on the
    flow run in the UI."""
    rows = [{k: r.summary[k] for k in KEY_FIGURES} for r in results]
    create_table_artifact(
        key="backtest-summary", table=rows, description=f"Run {run_id}: per-security results"
    )
    lines = [headline(store, run_id, report) if report else f"### Run `{run_id}` (no report)"]
    if failures:
        lines += [
            "",
            "#### Failed securities",
            "",
            "| security | attempts | error |",
            "|---|---|---|",
        ]
        lines += [
            f"| {f.security} | {f.attempts} | {f.error_type}: {f.message.splitlines()[0][:300]} |"
            for f in failures
        ]
    create_markdown_artifact(
        key="backtest-report", markdown="\n".join(lines), description=f"Run {run_id}"
    )


@flow(name="backtest")
def backtest(
    data: str = str(DEFAULT_DATA),
    strategy: str = DEFAULT_STRATEGY,
    config: str | None = None,
    overrides: dict[str, float] | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    store: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict:
    """Backtest `strategy` over every security of `data` and store the run; returns its summary."""
    started = datetime.now(UTC)
    config_values = load_config(config)
    resolve_params(strategies.get(strategy).Params, "", config_values, overrides)  # fail fast
    source = prepare_data(data, securities, max_sheets)
    timings: dict[str, float] = {}
    results, failures = backtest_securities(
        source,
        strategy,
        config_values,
        overrides,
        dask_address=dask_address,
        workers=workers,
        timings=timings,
    )
    portfolio = metrics.portfolio_metrics(results)
    status = "completed" if not failures else ("partial" if results else "failed")
    run = RunRecord(
        run_id=new_run_id(),
        kind="backtest",
        strategy=strategy,
        params={"config": config, "overrides": overrides or {}},
        config_hash=config_hash(config_values, overrides or {}),
        data_source=str(source.path),
        data_hash=source.content_hash,
        code_version=code_version(),
        started_at=started,
        finished_at=datetime.now(UTC),
        status=status,
        flow_run_id=flow_run.get_id(),
    )
    target = store_path(store)
    storing = time.perf_counter()
    store_results(target, run, results, failures, portfolio)
    timings["store"] = time.perf_counter() - storing
    report = report_or_none(write_run_report, target, run.run_id)
    publish_artifacts(target, run.run_id, results, failures, report)
    summary = {
        "run_id": run.run_id,
        "store": target,
        "status": status,
        "strategy": strategy,
        "securities_ok": len(results),
        "securities_failed": len(failures),
        "failed": {f.security: f"{f.error_type}: {f.message}" for f in failures},
        "report": str(report) if report else None,
        **portfolio,
        "timings": timings,  # seconds per phase, for bench/flow.py
    }
    if not results:
        return Failed(message=f"all {len(failures)} securities failed", data=summary)
    return summary
