"""The `sweep` flow: strategies × parameter grid over every security, one coarse task per security
and batch of cells (data loaded once per task), each cell stored as its own run as soon as its
batch is done, and cells already in the store skipped (resume).

Identity: the sweep id is a hash of (data, securities, strategies, grid, config, code version), so
re-running the same sweep finds its earlier cells; inside a sweep a cell is its strategy and
`config_hash` (config + overrides). A stored cell is reused unless it has failures other than bad
input (those are worth recomputing) or `fresh` is set; a recomputed cell replaces its old run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Failed

from engine import settings
from engine.data.source import DataSource
from engine.lineage import code_version
from engine.params import load_config
from engine.results.compare import RUN_FIGURES, parameters_label, rounded
from engine.results.store import read_sweep_cells
from engine.run import Run
from engine.sweep import (
    DEFAULT_BATCH_CELLS,
    DEFAULT_STRATEGIES,
    Cell,
    SweepSummary,
    batches,
    expand_grid,
    plan_cells,
    sweep_id,
)
from engine.types import Failure
from flows import liveness
from flows.fanout import Item, fan_out
from tasks.backtest import DEFAULT_STORE_TIMEOUT, prepare_data, store_results
from tasks.report import report_or_none, write_sweep_report
from tasks.sweep import run_sweep_cells


@dataclass
class Sweep:
    """One sweep run in progress: what it runs on, its cells' stored rows, and what it computed."""

    source: DataSource
    config: dict
    config_path: str | None
    store: str
    sweep_id: str
    stored: dict[tuple[str, str], dict] = field(default_factory=dict)  # (strategy, hash) -> row
    runs: dict[Cell, Run] = field(default_factory=dict)  # computed cells, as stored
    failed: dict[str, str] = field(default_factory=dict)
    store_timeout: float = DEFAULT_STORE_TIMEOUT
    spilled: list[str] = field(default_factory=list)

    def cell_run(self, cell: Cell, run_id: str | None) -> Run:
        """A new Run for one cell (kind `sweep`), replacing `run_id` when recomputed."""
        return Run.start(
            kind="sweep",
            strategy=cell.strategy,
            source=self.source,
            config_path=self.config_path,
            config=self.config,
            overrides=cell.params,
            run_id=run_id,
            sweep_id=self.sweep_id,
            flow_run_id=flow_run.get_id(),
        )


def stored_cells(store: str, sid: str) -> dict[tuple[str, str], dict]:
    """{(strategy, config_hash): stored row} of the sweep's cells (newest wins); a row's
    `reusable` is true when its failures (if any) are all bad input, not worth retrying."""
    frame = read_sweep_cells(store, sid)
    return {
        (row["strategy"], row["config_hash"]): dict(row, reusable=row["retryable_failures"] == 0)
        for row in frame.to_dict("records")
    }


def _table_row(sweep: Sweep, cell: Cell) -> dict:
    """The sweep table's row of a cell: from the run computed now, else from the store."""
    run = sweep.runs.get(cell)
    if run is None:
        row = sweep.stored[(cell.strategy, cell.key(sweep.config))]
        figures, params = {k: row[k] for k in RUN_FIGURES}, row["params"]
        run_id, status, this_run = row["run_id"], row["status"], "stored"
    else:
        figures = {k: getattr(run.portfolio, k) for k in RUN_FIGURES}
        run_id, status, params, this_run = run.run_id, run.status, run.params, "computed"
    label = parameters_label(params)
    return dict(run_id=run_id, strategy=cell.strategy, parameters=label, status=status,
                **figures, this_run=this_run)  # fmt: skip


def evaluate_cells(
    sweep: Sweep, todo: list[Cell], replace: dict[Cell, str], *, batch_cells: int, **cluster
) -> list[dict]:
    """Run the cells in batches (`cluster`: dask_address, workers); store each batch as soon as
    all its securities are done. Returns the tasks (security, batch, cells, ok)."""
    groups = batches(todo, batch_cells)
    securities = sweep.source.securities
    items = [
        Item(
            (b, security),
            security,
            label=f"batch {b + 1}/{len(groups)}",
            parameters=dict(
                source=sweep.source,
                security=security,
                cells=list(cells),
                config=sweep.config,
                batch=f"batch{b + 1}of{len(groups)}",
            ),
        )  # fmt: skip
        for b, cells in enumerate(groups)
        for security in securities
    ]
    pending: dict[int, dict[str, object]] = {b: {} for b in range(len(groups))}

    def on_outcome(item: Item, outcome) -> None:
        b, security = item.key
        if isinstance(outcome, Failure):
            sweep.failed[security] = f"{outcome.error_type}: {outcome.message}"
        pending[b][security] = outcome
        if len(pending[b]) == len(securities):
            _store_batch(sweep, groups[b], pending.pop(b), replace)
            get_run_logger().info("batch %d/%d stored (%d cells)", b + 1, len(groups),
                                  len(groups[b]))  # fmt: skip

    done = fan_out(run_sweep_cells, items, describe=_describe, on_outcome=on_outcome, **cluster)
    return [
        {
            "security": item.security,
            "batch": item.parameters["batch"],
            "cells": [c.label for c in item.parameters["cells"]],
            "ok": not isinstance(done.outcomes[item.key], Failure),
        }  # fmt: skip
        for item in items
    ]


def _describe(results: list) -> str:
    return f"{len(results)} cells, {sum(r.summary['trades'] for r in results):,} trades"


def _store_batch(
    sweep: Sweep, cells, outcomes: dict[str, object], replace: dict[Cell, str]
) -> None:
    """Store every cell of a finished batch as its own run (one transaction each)."""
    securities = sweep.source.securities
    failures = [outcomes[s] for s in securities if isinstance(outcomes[s], Failure)]
    runs = {}
    for i, cell in enumerate(cells):
        results = [outcomes[s][i] for s in securities if not isinstance(outcomes[s], Failure)]
        runs[cell] = sweep.cell_run(cell, replace.get(cell)).finish(results, failures)
    sweep.spilled += store_results(sweep.store, list(runs.values()), sweep.store_timeout)
    sweep.runs.update(runs)


@flow(name="sweep", **liveness.HOOKS)
def sweep(
    data: str = str(settings.DEFAULT_DATA),
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
    store_timeout: float = DEFAULT_STORE_TIMEOUT,
) -> SweepSummary:
    """Sweep `strategies` x `grid` over `data`; store missing cells (all with `fresh`); summary."""
    liveness.record(flow_run.get_id())
    logger = get_run_logger()
    config_values = load_config(config)
    expanded = expand_grid(list(strategies or DEFAULT_STRATEGIES), grid or {})
    batches(expanded.cells, batch_cells)  # validates the batch size before any work
    source = prepare_data(data, securities, max_sheets)
    sid = sweep_id(
        data_hash=source.content_hash,
        securities=source.securities,
        grid=expanded,
        config=config_values,
        code_version=code_version(),
    )
    target = settings.store_path(store)
    state = Sweep(source, config_values, config, target, sid, stored_cells(target, sid))
    state.store_timeout = store_timeout
    todo, reused, replace = plan_cells(expanded, config_values, state.stored, fresh)
    for note in expanded.notes():
        logger.info(note)
    logger.info(
        "sweep %s: %d cells x %d securities; %d to compute, %d already stored%s",
        sid,
        len(expanded.cells),
        len(source.securities),
        len(todo),
        len(reused),
        " (--fresh: recomputing all)" if fresh else "",
    )
    tasks = evaluate_cells(
        state, todo, replace, batch_cells=batch_cells, dask_address=dask_address, workers=workers
    )
    table = tuple(_table_row(state, cell) for cell in expanded.cells)
    create_table_artifact(
        key="sweep-summary",
        table=[rounded(r) for r in table],
        description=f"Sweep {sid}: portfolio figures per cell",
    )
    report = report_or_none(write_sweep_report, target, sid)
    if report:
        logger.info("sweep report: %s", report)
    summary = SweepSummary(
        sweep_id=sid,
        store=target,
        cells=len(expanded.cells),
        securities=source.securities,
        computed_cells=tuple(c.label for c in todo),
        computed_run_ids=tuple(state.runs[c].run_id for c in todo if c in state.runs),
        reused_cells=tuple(c.label for c in reused),
        table=table,
        tasks=tuple(tasks),
        failed=state.failed,
        notes=tuple(expanded.notes()),
        not_swept={k: tuple(v) for k, v in expanded.not_swept.items()},
        report=str(report) if report else None,
        spilled=tuple(state.spilled),
    )
    if tasks and not any(t["ok"] for t in tasks):
        return Failed(message=f"all {len(tasks)} tasks failed", data=summary)
    return summary
