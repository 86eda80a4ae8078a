"""The in-process sequential runner behind `mmflow backtest`, and the result files it writes.

The Prefect flow runs the same `backtest_security` per security on Dask workers; this module is
the single-process baseline it is compared against, and the place where the file formats users
diff against their old results are defined.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.data.source import DataSource, InputError, open_data
from engine.params import MarketMakingParams, resolve_params
from engine.results import metrics
from engine.results.summary import summarise
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import (
    SUMMARY_COLUMNS,
    TRADE_COLUMNS,
    Events,
    Failure,
    RowCounts,
    SecurityResult,
)

CSV_TRADE_COLUMNS = [c for c in TRADE_COLUMNS if c != "seq"]


@dataclass
class BacktestRun:
    """The results of one strategy over the securities of one data source."""

    strategy: str
    source: DataSource
    results: list[SecurityResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def portfolio(self) -> dict:
        """All-security metrics on the time-ordered combined daily curve (SPEC §0)."""
        return metrics.portfolio_metrics(self.results)


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


def run_backtest(
    data: str | Path | DataSource,
    strategy: str,
    *,
    config: dict | None = None,
    overrides: dict | None = None,
    securities: Sequence[str] | None = None,
    max_sheets: int | None = None,
    on_done: Callable[[str, SecurityResult | Failure], None] | None = None,
) -> BacktestRun:
    """Backtest every security in turn; bad input fails that security only, with its reason."""
    strategies.get(strategy)  # fail fast on a misspelled strategy
    resolve_params(strategies.get(strategy).Params, "", config, overrides)  # and on bad overrides
    source = (
        data
        if isinstance(data, DataSource)
        else open_data(data, securities=securities, max_sheets=max_sheets)
    )
    run = BacktestRun(strategy=strategy, source=source)
    started = time.perf_counter()
    for security in source.securities:
        try:
            outcome: SecurityResult | Failure = backtest_security(
                source, security, strategy, config, overrides
            )
            run.results.append(outcome)
        except InputError as exc:
            outcome = Failure(security=security, error_type="InputError", message=str(exc))
            run.failures.append(outcome)
        if on_done:
            on_done(security, outcome)
    run.seconds = time.perf_counter() - started
    return run


def write_trades_csv(result: SecurityResult, path: str | Path) -> None:
    """`<SECURITY>_trades.csv` in the reference format: event order, shortest round-trip floats."""
    trades = result.trades[CSV_TRADE_COLUMNS]
    trades.to_csv(path, index=False, lineterminator="\n", date_format="%Y-%m-%d %H:%M:%S")


def summary_frame(
    results: Sequence[SecurityResult], failures: Sequence[Failure] = ()
) -> pd.DataFrame:
    """One row per security (SUMMARY_COLUMNS), failed securities last with their error."""
    rows = [dict(r.summary, status="ok", error="") for r in results]
    rows += [
        {"security": f.security, "status": "failed", "error": f"{f.error_type}: {f.message}"}
        for f in failures
    ]
    return pd.DataFrame(rows, columns=[*SUMMARY_COLUMNS, "status", "error"])


def write_outputs(run: BacktestRun, out_dir: str | Path) -> Path:
    """Write every security's trades CSV and `backtest_summary.csv` into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for result in run.results:
        write_trades_csv(result, out_dir / f"{result.security}_trades.csv")
    summary = summary_frame(run.results, run.failures)
    summary.to_csv(out_dir / "backtest_summary.csv", index=False, lineterminator="\n")
    return out_dir / "backtest_summary.csv"


def total_line(run: BacktestRun) -> dict:
    """Headline figures over all securities."""
    p = run.portfolio
    return {
        "securities": len(run.results),
        "failed": len(run.failures),
        "trades": p["trades"],
        "realized_pnl": math.fsum(r.summary["realized_pnl"] for r in run.results),
        "sharpe_ratio": p["sharpe_ratio"],
        "max_drawdown": p["max_drawdown"],
    }
