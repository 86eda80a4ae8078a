"""The in-process sequential runner behind `mmflow backtest`: data in, a finished `Run` out.

The Prefect flow runs the same `backtest_security` per security on Dask workers; this module is
the single-process baseline it is compared against. The files it writes are `results.files`'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from engine.data.source import DataSource, InputError, open_data
from engine.params import MarketMakingParams, resolve_params
from engine.results.summary import summarise
from engine.run import Run
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import (
    Events,
    Failure,
    RowCounts,
    SecurityResult,
)


def run_security(
    security: str,
    strategy: str,
    events: Events,
    params: MarketMakingParams,
    counts: RowCounts | None = None,
) -> SecurityResult:
    """Simulate one security's events and summarise the result (SPEC §3-§5)."""
    return summarise(security, strategy, events, params, simulate(strategy, events, params), counts)


def backtest_security(
    source: DataSource,
    security: str,
    strategy: str,
    config: dict | None = None,
    overrides: dict | None = None,
) -> SecurityResult:
    """Load one security's events and backtest it: the unit of work of every runner."""
    params = resolve_params(strategies.get(strategy).Params, security, config, overrides)
    events, counts = source.load(security)
    return run_security(security, strategy, events, params, counts)


def start_backtest(
    strategy: str,
    source: DataSource,
    *,
    config_path: str | None,
    config: dict | None,
    overrides: dict | None,
    **lineage,
) -> Run:
    """A new backtest `Run` of `strategy` over `source`, as every backtest runner starts one
    (`lineage`: further `Run` fields, e.g. the Prefect `flow_run_id`)."""
    return Run.start(
        kind="backtest",
        strategy=strategy,
        source=source,
        config_path=config_path,
        config=config,
        overrides=overrides,
        **lineage,
    )


def run_backtest(
    data: str | Path | DataSource,
    strategy: str,
    *,
    config: dict | None = None,
    config_path: str | None = None,
    overrides: dict | None = None,
    securities: Sequence[str] | None = None,
    max_sheets: int | None = None,
    on_done: Callable[[str, SecurityResult | Failure], None] | None = None,
) -> Run:
    """Backtest every security in turn; bad input fails that security only, with its reason."""
    strategies.get(strategy)  # fail fast on a misspelled strategy
    resolve_params(strategies.get(strategy).Params, "", config, overrides)  # and on bad overrides
    source = (
        data
        if isinstance(data, DataSource)
        else open_data(data, securities=securities, max_sheets=max_sheets)
    )
    run = start_backtest(
        strategy, source, config_path=config_path, config=config, overrides=overrides
    )
    results: list[SecurityResult] = []
    failures: list[Failure] = []
    for security in source.securities:
        try:
            outcome: SecurityResult | Failure = backtest_security(
                source, security, strategy, config, overrides
            )
            results.append(outcome)
        except InputError as exc:
            outcome = Failure(security=security, error_type="InputError", message=str(exc))
            failures.append(outcome)
        if on_done:
            on_done(security, outcome)
    return run.finish(results, failures)
