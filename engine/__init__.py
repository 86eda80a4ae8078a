"""mmflow's engine: pure functions of tick data and parameters (never imports Prefect).

Layout (each subpackage's docstring says what it owns and what it must not import):

* `sim/`: the compiled simulation (book, fills, quoting, accounting, session, strategies); no I/O.
* `data/`: workbooks, the Parquet cache, data sources, the synthetic sample.
* `results/`: summaries, metrics, comparisons, the DuckDB store and the HTML reports.
* `run.py` (the one `Run` type), `params.py`, `types.py`, `lineage.py`, `settings.py` at the top,
  with `runner.py` (the in-process runner) and `sweep.py` (parameter grids), which compose them.

Compiled kernels are cached on disk per version of the engine's source. numba's own cache only
notices edits to the file of the cached function itself, not to the kernels it calls in other
files, so a cache shared across versions could run stale code; keying the folder by a hash of the
whole engine rules that out, and keeps the cache out of the source tree.
"""

import os
import sys

from engine.lineage import code_version
from engine.settings import cache_dir

if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba" / code_version())
    if "numba" in sys.modules:  # imported before us: its config was read already
        sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
