"""The `nightly` flow: the `backtest` flow once per strategy (a subflow each, one after the other,
so one writer at a time), every run stored; a strategy that fails does not stop the others."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from engine import settings
from engine.run import RunSummary
from engine.sim import strategies as registry
from flows.backtest import backtest


def _row(name: str, state) -> dict:
    """One line of the nightly table: the backtest subflow's summary, or its error."""
    result = state.result(raise_on_failure=False)
    if not isinstance(result, RunSummary) and isinstance(state.data, RunSummary):
        result = state.data  # Failed(data=summary): every security failed
    if not isinstance(result, RunSummary):
        error = f"{type(result).__name__}: {result}"
        return dict(
            strategy=name,
            run_id=None,
            status="failed",
            trades=None,
            total_pnl=None,
            sharpe_ratio=None,
            error=error,
        )
    return dict(
        strategy=name,
        run_id=result.run_id,
        status=result.status,
        trades=result.portfolio.trades,
        total_pnl=round(result.portfolio.total_pnl, 2),
        sharpe_ratio=round(result.portfolio.sharpe_ratio, 2),
        error="; ".join(f"{s}: {e}" for s, e in result.failed.items()),
    )


@flow(name="nightly")
def nightly(
    data: str = str(settings.DEFAULT_DATA),
    strategies: list[str] | None = None,
    store: str | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict:
    """Backtest each of `strategies` over `data` and store every run; returns one row per strategy."""
    logger = get_run_logger()
    names = list(strategies or [settings.DEFAULT_STRATEGY])
    for name in names:
        registry.get(name)  # unknown names fail before any work, with a "did you mean"
    target = settings.store_path(store)
    rows = []
    for name in names:
        state = backtest(
            data=data,
            strategy=name,
            securities=securities,
            max_sheets=max_sheets,
            store=target,
            dask_address=dask_address,
            workers=workers,
            return_state=True,
        )
        rows.append(_row(name, state))
        logger.info(
            "%s: run %s %s", name, rows[-1]["run_id"] or "-", rows[-1]["status"] or "failed"
        )
    create_table_artifact(
        key="nightly-summary", table=rows, description=f"Nightly backtests of {data}"
    )
    report = {"data": data, "store": target, "runs": rows}
    failed = [r["strategy"] for r in rows if r["status"] in (None, "failed")]
    if failed:
        return Failed(
            message=f"{len(failed)} of {len(rows)} strategies failed: {failed}", data=report
        )
    return report
