"""Parameter sweeps: the grid of cells (strategy × parameter values), the identity of a sweep and of
its cells, and evaluating several cells on one security whose events are loaded once.

Pure: no Prefect and no store. `flows/sweep.py` decides which cells are missing and where they run.

A *cell* is one strategy with one set of parameter overrides; it is stored as its own run. A
parameter that a strategy does not have (e.g. `stop_loss_threshold_pct` for v2) is not swept for
that strategy, so the strategy gets one cell per combination of the parameters it does have.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engine.data.source import DataSource
from engine.params import (
    ConfigError,
    config_hash,
    format_param,
    param_names,
    parse_value,
    resolve_params,
)
from engine.results.summary import event_facts, summarise
from engine.run import PORTFOLIO_FIGURES, count_of
from engine.settings import DEFAULT_BATCH_CELLS, DEFAULT_STRATEGIES  # noqa: F401 - re-exported
from engine.sim import strategies
from engine.sim.backtest import simulate
from engine.types import SecurityResult


@dataclass(frozen=True)
class Cell:
    """One strategy with one set of overrides (name, value) in grid order: one stored run."""

    strategy: str
    overrides: tuple[tuple[str, float], ...] = ()

    @property
    def params(self) -> dict[str, float]:
        """The overrides as a dict (the `overrides` of the run's params JSON)."""
        return dict(self.overrides)

    @property
    def label(self) -> str:
        """`strategy k=v k=v` for logs and tables."""
        return " ".join([self.strategy, *(f"{k}={format_param(v)}" for k, v in self.overrides)])

    def key(self, config: Mapping | None = None) -> str:
        """The cell's identity within a sweep: the run's `config_hash` (config + overrides)."""
        return config_hash(dict(config or {}), self.params)


@dataclass(frozen=True)
class Grid:
    """The expanded sweep: its cells in order, and the parameters not swept per strategy."""

    strategies: tuple[str, ...]
    values: dict[str, tuple[float, ...]]  # as given: name -> values (one value = fixed)
    cells: tuple[Cell, ...]
    not_swept: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line per strategy that lacks a grid parameter, saying what happened instead."""
        lines = []
        for strategy, names in self.not_swept.items():
            full = math.prod(len(self.values[n]) for n in self.values)
            mine = sum(1 for c in self.cells if c.strategy == strategy)
            lines.append(
                f"{strategy} has no parameter {', '.join(names)}: not swept for it "
                f"({mine} cell(s) instead of {full})"
            )
        return lines


def parse_grid(items: Sequence[str] | None) -> dict[str, tuple[float, ...]]:
    """`["refill_interval_sec=5,10,30", "stop_loss_threshold_pct=2"]` to {name: values}."""
    grid: dict[str, tuple[float, ...]] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(
                f"--set expects key=value[,value...], got {item!r} "
                "(e.g. --set refill_interval_sec=5,10,30,60)"
            )
        if key in grid:
            raise ConfigError(f"--set {key} is given twice; list all its values in one --set")
        values = [parse_value(v.strip()) for v in text.split(",") if v.strip()]
        grid[key] = tuple(dict.fromkeys(values))  # duplicates dropped, order kept
    return grid


def expand_grid(strategy_names: Sequence[str], grid: Mapping[str, Sequence[float]]) -> Grid:
    """Strategies × the cartesian product of each strategy's own grid parameters, validated."""
    names = tuple(dict.fromkeys(strategy_names))
    if not names:
        raise ConfigError("a sweep needs at least one strategy (--strategies NAME ...)")
    known = {name: param_names(strategies.get(name).Params) for name in names}
    values = {key: tuple(v) for key, v in grid.items()}
    everything = sorted(set().union(*known.values()))
    for key, vals in values.items():
        if not any(key in k for k in known.values()):
            close = difflib.get_close_matches(key, everything, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Known: {', '.join(everything)}."
            raise ConfigError(f"no strategy of the sweep has a parameter {key!r}.{hint}")
        if not vals:
            raise ConfigError(f"--set {key} has no values")
    cells: list[Cell] = []
    not_swept: dict[str, tuple[str, ...]] = {}
    for name in names:
        mine = [key for key in values if key in known[name]]
        missing = tuple(key for key in values if key not in known[name])
        if missing:
            not_swept[name] = missing
        for combo in itertools.product(*(values[key] for key in mine)):
            cell = Cell(name, tuple(zip(mine, combo, strict=True)))
            resolve_params(strategies.get(name).Params, "", None, cell.params)  # validate now
            cells.append(cell)
    return Grid(names, values, tuple(cells), not_swept)


def sweep_id(
    *,
    data_hash: str,
    securities: Sequence[str],
    grid: Grid,
    config: Mapping | None,
    code_version: str,
) -> str:
    """A deterministic id: the same data, securities, grid, config and code give the same sweep."""
    blob = json.dumps(
        {
            "data": data_hash,
            "securities": list(securities),
            "strategies": list(grid.strategies),
            "grid": {k: list(v) for k, v in grid.values.items()},
            "config": config_hash(dict(config or {}), {}),
            "code": code_version,
        },
        sort_keys=True,
    ).encode()
    return f"sweep-{hashlib.sha256(blob).hexdigest()[:12]}"


def plan_cells(
    grid: Grid, config: dict, stored: dict[tuple[str, str], dict], fresh: bool
) -> tuple[list[Cell], list[Cell], dict[Cell, str]]:
    """(cells to compute, cells reused, run id to replace per recomputed stored cell)."""
    todo, reused, replace = [], [], {}
    for cell in grid.cells:
        row = stored.get((cell.strategy, cell.key(config)))
        if row is not None and row["reusable"] and not fresh:
            reused.append(cell)
            continue
        todo.append(cell)
        if row is not None:
            replace[cell] = row["run_id"]
    return todo, reused, replace


def batches(cells: Sequence[Cell], size: int) -> list[tuple[Cell, ...]]:
    """`cells` in consecutive groups of at most `size` (a batch is stored as soon as it is done)."""
    if size < 1:
        raise ConfigError(f"the batch size must be at least 1 cell, got {size}")
    return [tuple(cells[i : i + size]) for i in range(0, len(cells), size)]


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: its cells (computed now or reused from the store), one table row per
    cell (`table`, in grid order), per-task outcomes, failures and notes."""

    sweep_id: str
    store: str
    cells: int
    securities: tuple[str, ...]
    computed_cells: tuple[str, ...]  # labels, grid order
    computed_run_ids: tuple[str, ...]
    reused_cells: tuple[str, ...]
    table: tuple[dict, ...]  # run_id, strategy, parameters, status, figures, this_run
    tasks: tuple[dict, ...] = ()  # security, batch, cells, ok
    failed: dict[str, str] = field(default_factory=dict)  # security -> "ErrorType: message"
    notes: tuple[str, ...] = ()
    not_swept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    report: str | None = None
    spilled: tuple[str, ...] = ()  # spill folders, when the store stayed locked (not stored yet)

    computed = count_of("computed_cells", "How many cells were computed by this sweep run.")
    reused = count_of("reused_cells", "How many cells were already stored.")


def run_cells(
    source: DataSource,
    security: str,
    cells: Sequence[Cell],
    config: Mapping | None = None,
    *,
    keep_trades: bool = True,
) -> list[SecurityResult]:
    """Load one security once and backtest every cell on it, in the order of `cells`: one
    compiled call per cell, the events' own figures computed once. Without `keep_trades` each
    result is compact (summary, daily P&L, exact fill statistics; no trade table). A sweep
    keeps no per-fill analytics (fill_analytics: 20 values per fill, rarely read for a cell):
    `mmflow rerun` of the cell gives them."""
    resolved = [
        resolve_params(strategies.get(c.strategy).Params, security, dict(config or {}), c.params)
        for c in cells
    ]
    events, counts = source.load(security)
    facts = event_facts(events, with_market=True)
    return [
        summarise(
            security,
            cell.strategy,
            events,
            params,
            simulate(cell.strategy, events, params),
            counts,
            keep_trades=keep_trades,
            keep_fills=False,
            facts=facts,
        )  # fmt: skip
        for cell, params in zip(cells, resolved, strict=True)
    ]


def auto_batch_cells(cells: int, securities: int, workers: int) -> int:
    """Cells per task: few, large tasks (each pays ~0.3 s of Prefect and Dask and one data load)
    but at least two per worker for balance, and at most 250 cells, so a batch is stored (and
    resume saves work) every few seconds."""
    batches = max(math.ceil(cells / 250), math.ceil(2 * workers / max(securities, 1)), 1)
    return max(1, math.ceil(cells / min(batches, max(cells, 1))))


# A cell's portfolio figures in the sweep's table (engine.run.Portfolio attributes).
CELL_FIGURES = ("trades", *PORTFOLIO_FIGURES)
TRADES_POLICIES = ("auto", "none", "best", "all")
BEST_CELLS = 3  # cells whose trades `best` (and `auto` on big grids) stores
AUTO_ALL_TRADES = 16  # `auto` stores every cell's trades up to this many cells


def trades_for(policy: str, cells: int) -> str:
    """What a sweep stores of trades: `all`, `best` (the best cells, added at the end) or `none`."""
    if policy not in TRADES_POLICIES:
        raise ConfigError(f"--trades must be one of {', '.join(TRADES_POLICIES)}, got {policy!r}")
    if policy == "auto":
        return "all" if cells <= AUTO_ALL_TRADES else "best"
    return policy
