"""What the benchmark scripts share; they put the repository root on sys.path and import this as
`bench.common` (their own folder stays off the path: bench/engine.py is named like `engine`)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(fn: Callable[[], object], repeat: int, warm_up: bool = False) -> float:
    """Best wall time of `repeat` calls (after one untimed call if `warm_up`)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)
