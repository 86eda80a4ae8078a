"""The `backtest` flow: one strategy over every security of a workbook or Parquet folder, fanned
out over Dask, failed securities retried, and the run stored in DuckDB by a single writer."""

from __future__ import annotations

import time

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from engine import settings
from engine.params import load_config, resolve_params
from engine.results.compare import FIGURE_BASIS, rounded
from engine.results.report import headline
from engine.run import Run, RunSummary
from engine.runner import start_backtest
from engine.sim import strategies
from engine.types import KEY_FIGURES, SecurityResult
from flows import liveness
from flows.fanout import Item, all_failed, fan_out
from tasks.backtest import DEFAULT_STORE_TIMEOUT, prepare_data, run_backtest, store_results
from tasks.report import report_or_none, write_run_report


def _describe(result: SecurityResult) -> str:
    return (
        f"{result.summary['trades']:,} trades, realized P&L {result.summary['realized_pnl']:,.2f}"
    )


def publish_artifacts(run: Run, report) -> None:
    """A summary table and the headline with the report's path (and any failures), on the
    flow run in the UI; rendered from the run in memory."""
    rows = [rounded({k: r.summary[k] for k in KEY_FIGURES}) for r in run.results]
    create_table_artifact(
        key="backtest-summary",
        table=rows,
        description=f"Run {run.run_id}: per-security results. {FIGURE_BASIS}",
    )
    lines = [headline(run, report)]
    if run.failures:
        lines += [
            "",
            "#### Failed securities",
            "",
            "| security | attempts | error |",
            "|---|---|---|",
        ]
        lines += [
            f"| {f.security} | {f.attempts} | {f.error_type}: {f.message.splitlines()[0][:300]} |"
            for f in run.failures
        ]
    create_markdown_artifact(
        key="backtest-report", markdown="\n".join(lines), description=f"Run {run.run_id}"
    )


@flow(name="backtest", **liveness.HOOKS)
def backtest(
    data: str = str(settings.DEFAULT_DATA),
    strategy: str = settings.DEFAULT_STRATEGY,
    config: str | None = None,
    overrides: dict[str, float] | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    cache: str | None = None,
    store: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    store_timeout: float = DEFAULT_STORE_TIMEOUT,
) -> RunSummary:
    """Backtest `strategy` over every security of `data` and store the run; returns its summary."""
    liveness.record(flow_run.get_id())
    config_values = load_config(config)
    resolve_params(strategies.get(strategy).Params, "", config_values, overrides)  # fail fast
    source = prepare_data(data, securities, max_sheets, cache)
    run = start_backtest(
        strategy,
        source,
        config_path=config,
        config=config_values,
        overrides=overrides,
        flow_run_id=flow_run.get_id(),
    )
    task_args = dict(source=source, strategy=strategy, config=config_values, overrides=overrides)
    items = [Item(s, s, dict(task_args, security=s)) for s in source.securities]
    done = fan_out(
        run_backtest, items, describe=_describe, dask_address=dask_address, workers=workers
    )
    outcomes = [done.outcomes[s] for s in source.securities]
    run.finish(
        [o for o in outcomes if isinstance(o, SecurityResult)],
        [o for o in outcomes if not isinstance(o, SecurityResult)],
    )
    target = settings.store_path(store)
    storing = time.perf_counter()
    spilled = store_results(target, quote([run]), store_timeout)
    done.timings["store"] = time.perf_counter() - storing
    liveness.hand_over(run.summary(store=target, timings=done.timings, spilled=tuple(spilled)))
    report = report_or_none(write_run_report, run, target)
    publish_artifacts(run, report)
    report_path = str(report) if report else None
    summary = run.summary(
        store=target, report=report_path, timings=done.timings, spilled=tuple(spilled)
    )
    if run.status == "failed":
        return all_failed(f"all {len(run.failures)} securities failed", summary)
    return summary
