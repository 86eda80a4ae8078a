"""The `nightly` flow: the `backtest` flow once per strategy (a subflow each, one after the other,
so one writer at a time), every run stored; a strategy that fails does not stop the others."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from engine.sim import strategies as registry
from flows.backtest import backtest
from flows.runtime import DEFAULT_DATA, DEFAULT_STRATEGY, store_path

SUMMARY_COLUMNS = ("strategy", "run_id", "status", "trades", "total_pnl", "sharpe_ratio")


def _outcome(state) -> dict:
    """A backtest subflow's summary, or {"status": "failed", "error": ...} when it has none."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, dict):
        return result
    if isinstance(state.data, dict):  # Failed(data=summary): every security failed
        return state.data
    return {"status": "failed", "error": f"{type(result).__name__}: {result}"}


@flow(name="nightly")
def nightly(
    data: str = str(DEFAULT_DATA),
    strategies: list[str] | None = None,
    store: str | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict:
    """Backtest each of `strategies` over `data` and store every run; returns one row per strategy."""
    logger = get_run_logger()
    names = list(strategies or [DEFAULT_STRATEGY])
    for name in names:
        registry.get(name)  # unknown names fail before any work, with a "did you mean"
    target = store_path(store)
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
        outcome = _outcome(state)
        rows.append({"strategy": name, **{k: outcome.get(k) for k in SUMMARY_COLUMNS[1:]}})
        rows[-1]["error"] = outcome.get("error") or "; ".join(
            f"{s}: {e}" for s, e in (outcome.get("failed") or {}).items()
        )
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
