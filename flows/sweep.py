"""The `sweep` flow: strategies × parameter grid over every security, one coarse task per security
and batch of cells (events loaded once per task, one compiled call per cell, compact results back),
each batch of cells stored in one transaction as soon as all its securities are done, and cells
already in the store skipped (resume at batch granularity).

Sweeps store what people read: every cell's run row, per-security results and daily P&L; trades
by `trades`: `all`, `none`, or `best` (the best cells by total P&L, recomputed with their trades
at the end); `auto` is `all` up to 16 cells, else `best`.

Identity: the sweep id is a hash of (data, securities, strategies, grid, config, code version), so
re-running the same sweep finds its earlier cells; inside a sweep a cell is its strategy and
`config_hash` (config + overrides). A stored cell is reused unless it has failures other than bad
input (those are worth recomputing) or `fresh` is set; a recomputed cell replaces its old run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from engine import settings
from engine.data.source import DataSource
from engine.lineage import code_version
from engine.params import load_config
from engine.results.compare import FIGURE_BASIS, parameters_label, rounded
from engine.results.store import read_sweep_cells
from engine.run import Run
from engine.sweep import (
    BEST_CELLS,
    CELL_FIGURES,
    Cell,
    SweepSummary,
    auto_batch_cells,
    batches,
    expand_grid,
    plan_cells,
    sweep_id,
    trades_for,
)
from engine.types import Failure
from flows import liveness
from flows.fanout import Item, all_failed, fan_out
from flows.runtime import make_task_runner
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
    trades: str  # all | best | none
    store_timeout: float = DEFAULT_STORE_TIMEOUT
    stored: dict[tuple[str, str], dict] = field(default_factory=dict)  # (strategy, hash) -> row
    runs: dict[Cell, Run] = field(default_factory=dict)  # computed cells, as stored
    failed: dict[str, str] = field(default_factory=dict)
    spilled: list[str] = field(default_factory=list)

    def cell_run(self, cell: Cell, run_id: str | None) -> Run:
        """A new Run for one cell (kind `sweep`), replacing `run_id` when recomputed."""
        return Run.start(kind="sweep", strategy=cell.strategy, source=self.source,
                         config_path=self.config_path, config=self.config, overrides=cell.params,
                         run_id=run_id, sweep_id=self.sweep_id, flow_run_id=flow_run.get_id())  # fmt: skip

    def table_row(self, cell: Cell) -> dict:
        """The sweep table's row of a cell: from the run computed now, else from the store."""
        run = self.runs.get(cell)
        if run is None:
            row = self.stored[(cell.strategy, cell.key(self.config))]
            figures, params = {k: row[k] for k in CELL_FIGURES}, row["params"]
            run_id, status, has_trades, this_run = row["run_id"], row["status"], row["trades_stored"], "stored"  # fmt: skip
        else:
            figures = {k: getattr(run.portfolio, k) for k in CELL_FIGURES}
            has_trades = any(r.trades is not None and len(r.trades) for r in run.results)
            run_id, status, params, this_run = run.run_id, run.status, run.params, "computed"
        return dict(run_id=run_id, strategy=cell.strategy, parameters=parameters_label(params),
                    status=status, **figures, trades_stored=bool(has_trades), this_run=this_run)  # fmt: skip


def stored_cells(store: str, sid: str) -> dict[tuple[str, str], dict]:
    """{(strategy, config_hash): stored row} of the sweep's cells (newest wins); a row's
    `reusable` is true when its failures (if any) are all bad input, not worth retrying."""
    frame = read_sweep_cells(store, sid)
    return {
        (row["strategy"], row["config_hash"]): dict(row, reusable=row["retryable_failures"] == 0)
        for row in frame.to_dict("records")
    }


def evaluate_cells(sweep: Sweep, todo: list[Cell], replace: dict[Cell, str], *, batch_cells: int,
                   keep_trades: bool, **cluster) -> list[dict]:  # fmt: skip
    """Run the cells in batches (`cluster`: dask_address, workers), with their trades or not;
    store each batch as soon as all its securities are done. Returns the tasks (security,
    batch, cells, ok)."""
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
                keep_trades=keep_trades,
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
    """Store every cell of a finished batch as its own run, all in one transaction."""
    securities = sweep.source.securities
    failures = [outcomes[s] for s in securities if isinstance(outcomes[s], Failure)]
    runs = {}
    for i, cell in enumerate(cells):
        results = [outcomes[s][i] for s in securities if not isinstance(outcomes[s], Failure)]
        runs[cell] = sweep.cell_run(cell, replace.get(cell)).finish(results, failures)
    sweep.spilled += store_results(sweep.store, quote(list(runs.values())), sweep.store_timeout)
    sweep.runs.update(runs)


def store_best_trades(sweep: Sweep, cells: tuple[Cell, ...], table: tuple[dict, ...],
                      **cluster) -> list[str]:  # fmt: skip
    """Recompute the best cells by total P&L with their trades, on the cluster, and store them
    (same run ids); the run ids that gained trades. `table` rows are the `cells`' rows."""
    ranked = sorted((i for i, r in enumerate(table) if r["total_pnl"] == r["total_pnl"]),
                    key=lambda i: table[i]["total_pnl"], reverse=True)  # fmt: skip
    best = {
        cells[i]: table[i]["run_id"] for i in ranked[:BEST_CELLS] if not table[i]["trades_stored"]
    }
    if best:
        evaluate_cells(sweep, list(best), best, batch_cells=len(best), keep_trades=True, **cluster)
    return list(best.values())


@flow(name="sweep", **liveness.HOOKS)
def sweep(
    data: str = str(settings.DEFAULT_DATA),
    strategies: list[str] | None = None,
    grid: dict[str, list[float]] | None = None,
    config: str | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    cache: str | None = None,
    store: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    fresh: bool = False,
    batch_cells: int | None = None,
    trades: str = "auto",
    store_timeout: float = DEFAULT_STORE_TIMEOUT,
) -> SweepSummary:
    """Sweep `strategies` x `grid` over `data`; store missing cells (all with `fresh`); summary."""
    liveness.record(flow_run.get_id())
    logger = get_run_logger()
    config_values = load_config(config)
    expanded = expand_grid(list(strategies or settings.DEFAULT_STRATEGIES), grid or {})
    policy = trades_for(trades, len(expanded.cells))
    source = prepare_data(data, securities, max_sheets, cache)
    sid = sweep_id(data_hash=source.content_hash, securities=source.securities, grid=expanded,
                   config=config_values, code_version=code_version())  # fmt: skip
    target = settings.store_path(store)
    state = Sweep(source, config_values, config, target, sid, policy, store_timeout,
                  stored_cells(target, sid))  # fmt: skip
    todo, reused, replace = plan_cells(expanded, config_values, state.stored, fresh)
    size = batch_cells or auto_batch_cells(
        len(todo), len(source.securities), settings.workers(workers)
    )
    for note in expanded.notes():
        logger.info(note)
    logger.info("sweep %s: %d cells x %d securities; %d to compute in batches of %d, %d already "
                "stored; trades: %s%s", sid, len(expanded.cells), len(source.securities),
                len(todo), size, len(reused), policy, " (--fresh: recomputing all)" if fresh else "")  # fmt: skip
    with make_task_runner(dask_address, workers) as runner:  # one cluster for both passes
        tasks = evaluate_cells(state, todo, replace, batch_cells=size,
                               keep_trades=policy == "all", runner=runner)  # fmt: skip
        table = tuple(state.table_row(cell) for cell in expanded.cells)
        if policy == "best" and (
            with_trades := store_best_trades(state, expanded.cells, table, runner=runner)
        ):
            logger.info("stored the trades of the best cells: %s", ", ".join(with_trades))
            table = tuple(dict(r, trades_stored=r["trades_stored"] or r["run_id"] in with_trades)
                          for r in table)  # fmt: skip
    summary = SweepSummary(
        sweep_id=sid, store=target, cells=len(expanded.cells), securities=source.securities,
        computed_cells=tuple(c.label for c in todo),
        computed_run_ids=tuple(state.runs[c].run_id for c in todo if c in state.runs),
        reused_cells=tuple(c.label for c in reused), table=table, tasks=tuple(tasks),
        failed=state.failed, notes=tuple(expanded.notes()),
        not_swept={k: tuple(v) for k, v in expanded.not_swept.items()},
        spilled=tuple(state.spilled),
    )  # fmt: skip
    liveness.hand_over(summary)  # stored: a command whose server is lost may finish now
    create_table_artifact(key="sweep-summary", table=[rounded(r) for r in table],
                          description=f"Sweep {sid}: portfolio figures per cell. {FIGURE_BASIS}")  # fmt: skip
    report = report_or_none(write_sweep_report, target, sid)
    summary = dataclasses.replace(summary, report=str(report) if report else None)
    if tasks and not any(t["ok"] for t in tasks):
        return all_failed(f"all {len(tasks)} tasks failed", summary)
    return summary
