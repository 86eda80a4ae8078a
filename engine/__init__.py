"""mmflow's engine: pure functions of tick data and parameters (never imports Prefect).

Compiled kernels are cached on disk per version of the engine's source. numba's own cache only
notices edits to the file of the cached function itself, not to the kernels it calls in other
files, so a cache shared across versions could run stale code; keying the folder by a hash of the
whole engine rules that out, and keeps the cache out of the source tree.
"""

import os
import sys
from pathlib import Path

from engine.lineage import code_version


def _kernel_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mmflow" / "numba" / code_version()


if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = str(_kernel_cache_dir())
    if "numba" in sys.modules:  # imported before us: its config was read already
        sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
