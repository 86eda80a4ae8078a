"""The strategy registry: every module in this package is one strategy.

A strategy module defines `NAME`, a frozen `Params` dataclass (defaults included) and a compiled
`run_nb(timestamp, kind, price, volume, params, state, quotes, out, start) -> int` that runs
SPEC §3.2 over rows [start, n) and returns the row to resume from; it calls
`session.track_nb(st, bid, ask, now)` on every in-window row before applying it (the fill-quality
counters of ANALYTICS.md A1/A7 depend on it). Adding a strategy is adding a file here; nothing
else changes.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import cache
from types import ModuleType


class UnknownStrategyError(ValueError):
    """A strategy name that is not in the registry."""


@cache
def available() -> tuple[str, ...]:
    """Names of all strategies, sorted (the package is scanned once per process)."""
    return tuple(
        sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    )


@cache
def _module(name: str) -> ModuleType:
    module = importlib.import_module(f"{__name__}.{name}")
    assert module.NAME == name, f"{module.__name__} declares NAME={module.NAME!r}"
    return module


def get(name: str) -> ModuleType:
    """The strategy module called `name`; unknown names fail with a "did you mean"."""
    names = available()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise UnknownStrategyError(
            f"unknown strategy {name!r}. {hint}Available: {', '.join(names)}"
        )
    return _module(name)
