"""Every `MMFLOW_*` environment variable and its default, in one place.

Side-effect free: importing this module reads nothing and sets nothing; each function reads the
environment when called, so tests and the CLI can change it between calls. The README's
"Settings" table lists the same names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_STORE = Path("data") / "mmflow.duckdb"
DEFAULT_DATA = Path("data") / "sample.xlsx"
DEFAULT_HISTORY = Path("data") / "history"  # the tick history `mmflow ingest` writes by default
DEFAULT_STRATEGY = "v2_price_follow_qty_cooldown"
DEFAULT_MAX_SHEET_CELLS = 50_000_000  # ~1.6 GB in the reader; Excel's 1,048,576 rows x 47 columns
DEFAULT_STRATEGIES = ("v2_price_follow_qty_cooldown", "v2_1_stop_loss")  # of a sweep
# Cells per task: a task pays ~0.3 s of Prefect/Dask overhead and one data load, a cell costs
# ~0.1-0.3 s per security; a batch is stored as soon as all its securities are done.
DEFAULT_BATCH_CELLS = 4
STORE_CONCURRENCY_LIMIT = "mmflow-store"  # the Prefect global concurrency limit around writes

# name: what it sets (the README's table is generated from the same words)
VARIABLES = {
    "MMFLOW_STORE": "the DuckDB results store (default data/mmflow.duckdb)",
    "MMFLOW_DATA": "the default --data of run/sweep (default data/sample.xlsx)",
    "MMFLOW_WORKERS": "worker processes of the local Dask cluster (default: one per core)",
    "MMFLOW_DASK_ADDRESS": "an existing Dask scheduler, e.g. tcp://10.0.0.5:8786",
    "MMFLOW_TASK_RUNNER": "`threads` swaps Dask for Prefect's thread pool (tests, debugging)",
    "MMFLOW_NO_SERVER": "`1` ignores a running `mmflow server` and its cluster (as --no-server)",
    "MMFLOW_CACHE_DIR": "mmflow's cache folder: kernels, Parquet files (default ~/.cache/mmflow)",
    "MMFLOW_PARQUET_CACHE": "the Parquet cache of workbooks, a path or a URL such as "
    "s3://bucket/cache (default <MMFLOW_CACHE_DIR>/parquet)",
    "MMFLOW_MAX_SHEET_CELLS": "the largest sheet read, in cells (rows x columns; default 50000000)",
    "MMFLOW_NIGHTLY_SETTINGS": "the nightly settings file (default deployments/nightly.toml)",
    "MMFLOW_NIGHTLY_DATA": "the data the nightly deployment backtests",
    "MMFLOW_NIGHTLY_STRATEGIES": "comma-separated strategies of the nightly deployment",
    "MMFLOW_NIGHTLY_DROP": "the drop folder the nightly run ingests (needs a history)",
    "MMFLOW_NIGHTLY_HISTORY": "the tick history the nightly run ingests into and backtests",
    "MMFLOW_NIGHTLY_NOTIFY": "where nightly alarms go: an apprise URL (json://, mailto://, ...) or http(s)://",
}


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def store_path(store: str | os.PathLike | None = None, environ=None) -> str:
    """The store to use: the argument, else $MMFLOW_STORE, else data/mmflow.duckdb."""
    return str(store or _env(environ).get("MMFLOW_STORE") or DEFAULT_STORE)


def default_data(environ=None) -> str:
    """The data `mmflow run` and `sweep` read when --data is not given."""
    return str(_env(environ).get("MMFLOW_DATA") or DEFAULT_DATA)


def workers(given: int | None = None, environ=None) -> int:
    """Local Dask worker processes: the argument, else $MMFLOW_WORKERS, else one per core."""
    return given or int(_env(environ).get("MMFLOW_WORKERS") or 0) or os.cpu_count() or 1


def dask_address(given: str | None = None, environ=None) -> str | None:
    """An existing Dask scheduler to use: the argument, else $MMFLOW_DASK_ADDRESS, else None."""
    return given or _env(environ).get("MMFLOW_DASK_ADDRESS") or None


def task_runner_kind(environ=None) -> str:
    """`dask` (default) or `threads` ($MMFLOW_TASK_RUNNER)."""
    return _env(environ).get("MMFLOW_TASK_RUNNER") or "dask"


def no_server(environ=None) -> bool:
    """Whether to ignore the recorded `mmflow server` ($MMFLOW_NO_SERVER=1, set by --no-server)."""
    return _env(environ).get("MMFLOW_NO_SERVER", "").strip().lower() in ("1", "true", "yes")


def server_file(environ=None) -> Path:
    """Where `mmflow server` records its Prefect API and Dask scheduler (in cache_dir())."""
    return cache_dir(environ) / "server.json"


def cache_dir(environ=None) -> Path:
    """$MMFLOW_CACHE_DIR, else $XDG_CACHE_HOME/mmflow, else ~/.cache/mmflow."""
    env = _env(environ)
    if env.get("MMFLOW_CACHE_DIR"):
        return Path(env["MMFLOW_CACHE_DIR"]).expanduser()
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmflow"


def parquet_cache_dir(environ=None) -> Path:
    """Root of the workbooks' local Parquet cache: $MMFLOW_PARQUET_CACHE (when a path), else
    cache_dir() / "parquet"."""
    given = parquet_cache_setting(environ)
    if given and "://" not in given:
        return Path(given).expanduser()
    return cache_dir(environ) / "parquet"


def parquet_cache_setting(environ=None) -> str | None:
    """$MMFLOW_PARQUET_CACHE as given: a path, or a URL the workers read the cache from."""
    return _env(environ).get("MMFLOW_PARQUET_CACHE") or None


def max_sheet_cells(given: int | None = None, environ=None) -> int:
    """The largest sheet to read, in cells: the argument, else $MMFLOW_MAX_SHEET_CELLS, else 50 M."""
    if given is not None:
        return int(given)
    text = _env(environ).get("MMFLOW_MAX_SHEET_CELLS")
    try:
        return int(text.replace("_", "")) if text else DEFAULT_MAX_SHEET_CELLS
    except ValueError:
        raise ValueError(
            f"MMFLOW_MAX_SHEET_CELLS must be a whole number of cells, got {text!r}"
        ) from None


def nightly_settings_file(environ=None) -> str | None:
    """$MMFLOW_NIGHTLY_SETTINGS, when set."""
    return _env(environ).get("MMFLOW_NIGHTLY_SETTINGS") or None
