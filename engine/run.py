"""The one `Run` type: a strategy over the securities of one data source, from start to stored.

A `Run` carries its lineage (who, what, on which data, with which code), its outcome (per-security
results and failures), the one status rule, the portfolio figures and a typed `RunSummary` (no
trades: small enough to return from a flow, print, publish or benchmark). Backtests and sweep
cells are both `Run`s; the store writes one and reads one back, and reports render one.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import cached_property

import pandas as pd

from engine.lineage import code_version, git_revision
from engine.params import config_hash
from engine.results import metrics
from engine.results.analytics_portfolio import portfolio_figures
from engine.types import KEY_FIGURES, Failure, SecurityResult

STATUSES = ("completed", "partial", "failed")
KINDS = ("backtest", "sweep")


class RunFailed(Exception):
    """What calling a flow raises when every one of its items failed: the flow's Failed state
    carries it, and `summary` keeps the flow's own summary (a RunSummary, a SweepSummary or the
    nightly report) with every failure in it."""

    def __init__(self, message: str, summary: object) -> None:
        super().__init__(message)
        self.summary = summary

    def __reduce__(self):
        return type(self), (str(self), self.summary)


def outcome(state) -> object:
    """A finished flow run's summary (`state` from `flow(..., return_state=True)`), also when every
    item failed; an exception when the flow itself broke."""
    result = state.result(raise_on_failure=False)
    return result.summary if isinstance(result, RunFailed) else result


class _Issued:
    """The run ids this process issued in the current second (a sweep makes hundreds in one)."""

    lock = threading.Lock()
    second = ""
    ids: set[str] = set()


def new_run_id() -> str:
    """A sortable run id: UTC time to the second, a dash and 6 random hex digits; never one this
    process issued before (24 random bits collide within a second's few hundred ids otherwise)."""
    with _Issued.lock:
        second = f"{datetime.now(UTC):%Y%m%dT%H%M%S}"
        if second != _Issued.second:
            _Issued.second, _Issued.ids = second, set()
        while (run_id := f"{second}-{secrets.token_hex(3)}") in _Issued.ids:
            pass
        _Issued.ids.add(run_id)
        return run_id


def count_of(name: str, doc: str) -> property:
    """A read-only property: how many items the attribute `name` holds (`doc`: its docstring)."""
    return property(lambda self: len(getattr(self, name)), doc=doc)


@dataclass(frozen=True)
class Portfolio:
    """All securities together (SPEC §0): P&L sums and the metrics of SPEC §5.3 on the
    time-ordered combined daily realized curve of `days` dates (their basis)."""

    trades: int = 0
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    total_pnl: float = 0.0  # realized + unrealized
    sharpe_ratio: float = 0.0  # daily, over `days` dates
    max_drawdown: float = 0.0
    max_drawdown_pct: float = 0.0
    calmar_ratio: float = 0.0
    win_rate: float = 0.0
    profit_factor: float = 0.0
    days: int = 0
    # ANALYTICS.md, pooled over securities (engine.results.analytics_portfolio says how); NaN
    # when some result has no analytics (a run stored before them).
    fees: float = 0.0  # A11, summed
    net_pnl: float = 0.0  # realized_pnl - fees
    edge_bps: float = math.nan  # A6 over all fills pooled
    markout_bps_60: float = math.nan
    uptime_two_sided: float = math.nan  # A7, weighted by each security's quoting time
    fill_ratio: float = math.nan  # A7, quote fills / quotes placed
    avg_abs_position: float = math.nan  # A8, weighted by each security's quoting time

    @classmethod
    def of(cls, results: list[SecurityResult], daily: pd.DataFrame | None = None) -> Portfolio:
        """The portfolio figures of `results` (exact sums, SPEC §5.3 on the combined curve;
        `daily`: their `metrics.combined_daily`, when already computed)."""
        daily = metrics.combined_daily(results) if daily is None else daily
        stats = metrics.portfolio_metrics(results, daily)
        realized = stats.pop("total_pnl")
        unrealized = math.fsum(r.summary["unrealized_pnl"] for r in results)
        analytics = portfolio_figures(results, realized)
        return cls(
            realized_pnl=realized,
            unrealized_pnl=unrealized,
            total_pnl=realized + unrealized,
            days=len(daily),
            **stats,
            **(dict.fromkeys(PORTFOLIO_ANALYTICS, math.nan) if analytics is None else analytics),
        )


# Portfolio's fields in order: `trades`, the SPEC §5.3 figures (PORTFOLIO_FIGURES, in the order
# tables show and store them), `days` (their basis), then the pooled ANALYTICS.md figures.
_PORTFOLIO_FIELDS = tuple(f.name for f in fields(Portfolio))
PORTFOLIO_FIGURES = _PORTFOLIO_FIELDS[1 : _PORTFOLIO_FIELDS.index("days")]
PORTFOLIO_ANALYTICS = _PORTFOLIO_FIELDS[_PORTFOLIO_FIELDS.index("days") + 1 :]


@dataclass(frozen=True)
class RunSummary:
    """What a finished run tells people: ids, status, portfolio and one row of key figures per
    security (no trades). Flows return it; the CLI, nightly flow, artifacts and bench read it."""

    run_id: str
    kind: str
    strategy: str
    status: str
    store: str | None
    portfolio: Portfolio
    securities: tuple[dict, ...]  # KEY_FIGURES (+ rows_kept) of each security, source order
    failed: dict[str, str]  # security -> "ErrorType: message"
    sweep_id: str | None = None
    data_hash: str = ""
    config_hash: str = ""
    report: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    spilled: tuple[str, ...] = ()  # spill folders, when the store stayed locked (not stored yet)

    securities_ok = count_of("securities", "How many securities were backtested.")
    securities_failed = count_of("failed", "How many securities failed.")


@dataclass
class Run:
    """One run: lineage, then the outcome (`results`, `failures`) once `finish` is called."""

    run_id: str
    kind: str
    strategy: str
    params: dict  # {"config": <config path or None>, "overrides": {...}}, as stored
    config_hash: str
    data_source: str
    data_hash: str
    started_at: datetime
    code_version: str = field(default_factory=code_version)
    git_commit: str | None = field(default_factory=lambda: git_revision().commit)
    git_dirty: bool | None = field(default_factory=lambda: git_revision().dirty)
    finished_at: datetime | None = None
    flow_run_id: str | None = None
    sweep_id: str | None = None
    results: list[SecurityResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.run_id or self.kind not in KINDS:
            raise ValueError(f"run {self.run_id!r}: kind {self.kind!r} is not one of {KINDS}")

    @classmethod
    def start(
        cls,
        *,
        kind: str,
        strategy: str,
        source,
        config_path: str | None,
        config: dict | None,
        overrides: Mapping | None,
        run_id: str | None = None,
        **lineage,
    ) -> Run:
        """A new run of `strategy` over a data source (anything with `path` and `content_hash`)."""
        overrides = dict(overrides or {})
        return cls(
            run_id=run_id or new_run_id(),
            kind=kind,
            strategy=strategy,
            params={"config": config_path, "overrides": overrides},
            config_hash=config_hash(dict(config or {}), overrides),
            data_source=str(source.path),
            data_hash=source.content_hash,
            started_at=lineage.pop("started_at", None) or datetime.now(UTC),
            **lineage,
        )

    def finish(self, results: list[SecurityResult], failures: list[Failure]) -> Run:
        """Record the outcome and the finishing time; returns self."""
        self.results, self.failures = list(results), list(failures)
        self.finished_at = datetime.now(UTC)
        self.__dict__.pop("portfolio", None)
        self.__dict__.pop("daily", None)
        return self

    @property
    def status(self) -> str:
        """The one rule: `completed` with no failure, `failed` with no result, else `partial`."""
        if not self.failures:
            return "completed"
        return "partial" if self.results else "failed"

    @cached_property
    def daily(self) -> pd.DataFrame:
        """The portfolio's daily P&L (SPEC §0: every security summed per date, exactly)."""
        return metrics.combined_daily(self.results)

    @cached_property
    def portfolio(self) -> Portfolio:
        """The portfolio figures of the results."""
        return Portfolio.of(self.results, self.daily)

    @property
    def trades(self) -> int:
        """Fills over all securities."""
        return sum(r.summary["trades"] for r in self.results)

    @property
    def failed(self) -> dict[str, str]:
        """security -> "ErrorType: message" of each failed security."""
        return {f.security: f"{f.error_type}: {f.message}" for f in self.failures}

    def summary(
        self, *, store: str | None = None, report: str | None = None, **extra
    ) -> RunSummary:
        """The typed summary of this run (no trades)."""
        rows = tuple({k: r.summary[k] for k in (*KEY_FIGURES, "rows_kept")} for r in self.results)
        return RunSummary(
            run_id=self.run_id,
            kind=self.kind,
            strategy=self.strategy,
            status=self.status,
            store=store,
            portfolio=self.portfolio,
            securities=rows,
            failed=self.failed,
            sweep_id=self.sweep_id,
            data_hash=self.data_hash,
            config_hash=self.config_hash,
            report=report,
            **extra,
        )

    def lineage(self) -> dict:
        """The lineage fields as a dict (no outcome), e.g. for a spill file or a log line."""
        skip = {"results", "failures"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def with_lineage(self, **changes) -> Run:
        """A copy with some lineage fields changed (same outcome)."""
        return replace(self, **changes)
