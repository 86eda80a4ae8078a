"""What the benchmark scripts share; they put the repository root on sys.path and import this as
`bench.common` (their own folder stays off the path: bench/engine.py is named like `engine`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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


def compile_bytecode() -> None:
    """Compile mmflow's sources, as a user's install has them: pip compiles an installed package,
    and Python writes the bytecode on an editable install's first run. Where
    PYTHONDONTWRITEBYTECODE is set (as on CI machines), every fresh process would otherwise
    compile them again."""
    packages = [str(REPO / name) for name in ("engine", "mmflow", "flows", "tasks", "deployments")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
