"""The `sweep` flow: strategies × parameter grid over every security, one coarse task per security
and batch of cells (data loaded once per task), each cell stored as its own run as soon as its
batch is done, and cells already in the store skipped (resume).

Identity: the sweep id is a hash of (data, securities, strategies, grid, config, code version), so
re-running the same sweep finds its earlier cells; inside a sweep a cell is its strategy and
`config_hash` (config + overrides). A stored cell is reused unless it has failures other than bad
input (those are worth recomputing) or `fresh` is set; a recomputed cell replaces its old run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Failed

from engine.lineage import code_version
from engine.params import load_config
from engine.results import metrics
from engine.results.compare import compare_runs, records
from engine.results.store import RunRecord, connect, new_run_id, read_sweep_cells
from engine.sweep import (
    DEFAULT_BATCH_CELLS,
    DEFAULT_STRATEGIES,
    Cell,
    Grid,
    batches,
    expand_grid,
    run_params,
    sweep_id,
)
from engine.types import Failure, SecurityResult
from flows.runtime import DEFAULT_DATA, make_task_runner, store_path
from tasks.backtest import prepare_data, store_results
from tasks.report import report_or_none, write_sweep_report
from tasks.sweep import run_sweep_cells


def plan_cells(
    grid: Grid, config: dict, stored: dict[tuple[str, str], tuple[str, bool]], fresh: bool
) -> tuple[list[Cell], list[Cell], dict[Cell, str]]:
    """(cells to compute, cells reused, run id to replace per recomputed stored cell).

    `stored` maps (strategy, config_hash) to (run_id, reusable); a cell is reused when it is
    stored and reusable, unless `fresh`. A recomputed stored cell keeps its run id (replaced).
    """
    todo, reused, replace = [], [], {}
    for cell in grid.cells:
        run_id, reusable = stored.get((cell.strategy, cell.key(config)), (None, False))
        if run_id is not None and reusable and not fresh:
            reused.append(cell)
            continue
        todo.append(cell)
        if run_id is not None:
            replace[cell] = run_id
    return todo, reused, replace


def stored_cells(store: str, sid: str) -> dict[tuple[str, str], tuple[str, bool]]:
    """{(strategy, config_hash): (run_id, reusable)} of the sweep's stored cells (newest wins);
    a cell whose failures are all bad input is reusable, any other failure is worth retrying."""
    frame = read_sweep_cells(store, sid)
    return {
        (row.strategy, row.config_hash): (row.run_id, row.retryable_failures == 0)
        for row in frame.itertuples(index=False)
    }


def _failure(future, security: str, outcome: object) -> Failure:
    """A security whose task failed for good: its exception (bad input fails at once)."""
    attempts = 1
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            attempts = client.read_task_run(future.task_run_id).run_count or 1
    except Exception:  # noqa: BLE001 - the attempt count is informative only
        pass
    if isinstance(outcome, BaseException):
        return Failure(security, type(outcome).__name__, str(outcome) or repr(outcome), attempts)
    return Failure(security, "TaskFailed", str(future.state.message), attempts)


def _cell_run(context: dict, cell: Cell, run_id: str, started: datetime, status: str) -> RunRecord:
    """The runs row of one sweep cell (params in the backtest flow's shape)."""
    return RunRecord(
        run_id=run_id,
        kind="sweep",
        strategy=cell.strategy,
        params=run_params(cell, context["config_path"]),
        config_hash=cell.key(context["config"]),
        data_source=str(context["source"].path),
        data_hash=context["source"].content_hash,
        code_version=context["code_version"],
        started_at=started,
        finished_at=datetime.now(UTC),
        status=status,
        sweep_id=context["sweep_id"],
        flow_run_id=flow_run.get_id(),
    )


def _store_batch(
    context: dict,
    cells: tuple[Cell, ...],
    outcomes: dict[str, list[SecurityResult] | Failure],
    started: datetime,
    replace: dict[Cell, str],
) -> list[str]:
    """Store every cell of a finished batch as its own run (one transaction each); run ids."""
    logger = get_run_logger()
    securities = context["source"].securities
    failures = [outcomes[s] for s in securities if isinstance(outcomes[s], Failure)]
    run_ids = []
    # Keep the database open for the batch: write_run's own connections in this process share
    # the instance, so a cell skips re-opening the file and checkpointing it on close (~0.3 s
    # each); every cell still commits in its own transaction.
    with connect(context["store"], retries=3):
        for i, cell in enumerate(cells):
            clock = time.perf_counter()
            results = [outcomes[s][i] for s in securities if isinstance(outcomes[s], list)]
            portfolio = metrics.portfolio_metrics(results)
            status = "completed" if not failures else ("partial" if results else "failed")
            run = _cell_run(context, cell, replace.get(cell) or new_run_id(), started, status)
            store_results(context["store"], run, results, failures, portfolio)
            run_ids.append(run.run_id)
            logger.info(
                "stored %s as run %s in %.1f s: %d trades, total P&L %s, Sharpe %.3f",
                cell.label,
                run.run_id,
                time.perf_counter() - clock,
                portfolio["trades"],
                f"{portfolio['total_pnl']:,.2f}",
                portfolio["sharpe_ratio"],
            )
    return run_ids


def submit_batches(runner, context: dict, groups: list[tuple[Cell, ...]]):
    """One `run_sweep_cells` task per (batch, security), batch by batch, so the first batch
    finishes first; returns {future: (batch index, security, task index)} and the task list."""
    futures, tasks = {}, []
    for b, cells in enumerate(groups):
        name = f"batch{b + 1}of{len(groups)}"
        for security in context["source"].securities:
            parameters = dict(
                source=context["source"],
                security=security,
                cells=list(cells),
                config=context["config"],
                batch=name,
            )
            futures[runner.submit(run_sweep_cells, parameters=parameters)] = (
                b,
                security,
                len(tasks),
            )
            tasks.append({"security": security, "batch": name, "cells": [c.label for c in cells]})
    return futures, tasks


def _outcome(future, security: str, where: str) -> list[SecurityResult] | Failure:
    """A finished task's results, or its Failure; logs one progress line either way."""
    logger = get_run_logger()
    outcome = future.result(raise_on_failure=False)
    if isinstance(outcome, list):
        trades = sum(r.summary["trades"] for r in outcome)
        logger.info("%s %s: %d cells, %s trades", where, security, len(outcome), f"{trades:,}")
        return outcome
    failure = _failure(future, security, outcome)
    logger.warning(
        "%s %s FAILED after %d attempt(s): %s: %s",
        where,
        security,
        failure.attempts,
        failure.error_type,
        failure.message,
    )
    return failure


def evaluate_cells(
    context: dict,
    todo: list[Cell],
    replace: dict[Cell, str],
    *,
    batch_cells: int,
    dask_address: str | None,
    workers: int | None,
) -> tuple[list[dict], dict[str, str], list[str]]:
    """Run the cells in batches and store each batch as soon as all its securities are done.

    Returns (the tasks with their cells, failure per security, run ids stored)."""
    groups = batches(todo, batch_cells)
    failed: dict[str, str] = {}
    stored: list[str] = []
    if not groups:
        return [], failed, stored
    n_securities = len(context["source"].securities)
    outcomes: dict[int, dict] = {b: {} for b in range(len(groups))}
    with make_task_runner(dask_address, workers) as runner:
        started = datetime.now(UTC)
        futures, tasks = submit_batches(runner, context, groups)
        clock = time.perf_counter()
        for done, future in enumerate(as_completed(list(futures)), start=1):
            b, security, index = futures[future]
            where = (
                f"[{done}/{len(futures)} tasks, {time.perf_counter() - clock:.1f} s] "
                f"batch {b + 1}/{len(groups)}"
            )
            outcome = outcomes[b][security] = _outcome(future, security, where)
            tasks[index]["ok"] = isinstance(outcome, list)
            if isinstance(outcome, Failure):
                failed[security] = f"{outcome.error_type}: {outcome.message}"
            if len(outcomes[b]) == n_securities:
                stored += _store_batch(context, groups[b], outcomes.pop(b), started, replace)
                get_run_logger().info(
                    "batch %d/%d stored (%d cells)", b + 1, len(groups), len(groups[b])
                )
    return tasks, failed, stored


def _summary(context: dict, grid: Grid, todo, reused, tasks, failed, stored) -> dict:
    """What the sweep did, with the final table (every cell of the sweep, as stored)."""
    comparison = compare_runs(context["store"], sweep_id=context["sweep_id"])
    table = records(comparison.summary.drop(columns=["label"]))
    create_table_artifact(
        key="sweep-summary",
        table=table,
        description=f"Sweep {context['sweep_id']}: portfolio figures per cell",
    )
    return {
        "sweep_id": context["sweep_id"],
        "store": context["store"],
        "cells": len(grid.cells),
        "computed": len(todo),
        "reused": len(reused),
        "computed_cells": [c.label for c in todo],
        "computed_run_ids": stored,
        "reused_cells": [c.label for c in reused],
        "not_swept": {k: list(v) for k, v in grid.not_swept.items()},
        "notes": grid.notes(),
        "securities": list(context["source"].securities),
        "tasks": tasks,
        "failed": failed,
        "results": table,
    }


@flow(name="sweep")
def sweep(
    data: str = str(DEFAULT_DATA),
    strategies: list[str] | None = None,
    grid: dict[str, list[float]] | None = None,
    config: str | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    store: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    fresh: bool = False,
    batch_cells: int = DEFAULT_BATCH_CELLS,
) -> dict:
    """Sweep `strategies` x `grid` over `data`; store missing cells (all with `fresh`); summary."""
    logger = get_run_logger()
    config_values = load_config(config)
    expanded = expand_grid(list(strategies or DEFAULT_STRATEGIES), grid or {})
    batches(expanded.cells, batch_cells)  # validates the batch size before any work
    source = prepare_data(data, securities, max_sheets)
    context = dict(source=source, config=config_values, config_path=config)
    context["code_version"] = code_version()
    context["store"] = store_path(store)
    context["sweep_id"] = sweep_id(
        data_hash=source.content_hash,
        securities=source.securities,
        grid=expanded,
        config=config_values,
        code_version=context["code_version"],
    )
    stored = stored_cells(context["store"], context["sweep_id"])
    todo, reused, replace = plan_cells(expanded, config_values, stored, fresh)
    for note in expanded.notes():
        logger.info(note)
    logger.info(
        "sweep %s: %d cells x %d securities; %d to compute, %d already stored%s",
        context["sweep_id"],
        len(expanded.cells),
        len(source.securities),
        len(todo),
        len(reused),
        " (--fresh: recomputing all)" if fresh else "",
    )
    tasks, failed, computed = evaluate_cells(
        context, todo, replace, batch_cells=batch_cells, dask_address=dask_address, workers=workers
    )
    summary = _summary(context, expanded, todo, reused, tasks, failed, computed)
    report = report_or_none(write_sweep_report, context["store"], context["sweep_id"])
    summary["report"] = str(report) if report else None
    if report:
        logger.info("sweep report: %s", report)
    if tasks and not any(t["ok"] for t in tasks):
        return Failed(message=f"all {len(tasks)} tasks failed", data=summary)
    return summary
