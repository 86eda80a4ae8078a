"""Spills: finished runs kept on disk when the store stays locked, loaded into it later.

When another process (an idle notebook, a DuckDB CLI) holds the store for longer than the writer
waits, the run is not thrown away: its rows for every run table go to Parquet files under
`<store dir>/spill/<run_id>/`, beside a `lineage.json`, exactly as the writer would insert them.
`load_spill` inserts them in one transaction (the run's earlier rows replaced) and removes the
folder, so a loaded spill is row for row what an uninterrupted write stores. The folder is written
under a temporary name and renamed, so a crash never leaves half a spill to load.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from engine.results.store.connection import StoreError
from engine.results.store.writer import RUN_TABLES, run_tables, write_tables
from engine.run import Run

LINEAGE_FILE = "lineage.json"
# Every spill has these; tables added later (e.g. the analytics) are empty in an older spill.
CORE_TABLES = ("runs", "security_results", "trades", "daily_pnl", "failures")


def spill_dir(store: str | Path) -> Path:
    """`<store dir>/spill`: where the runs of this store wait when it was locked."""
    return Path(store).resolve().parent / "spill"


def spill_run(store: str | Path, run: Run) -> Path:
    """Write a finished run's rows under `spill/<run_id>/`; returns that folder."""
    tables = run_tables(run)
    folder = spill_dir(store) / run.run_id  # run ids are our own: digits, T, dash and hex
    partial = folder.with_name(f".{run.run_id}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, table in tables.items():
        pq.write_table(table, partial / f"{name}.parquet")
    lineage = {k: _plain(v) for k, v in run.lineage().items()}
    lineage["store"] = str(Path(store).resolve())
    (partial / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, sort_keys=True))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def pending_spills(store: str | Path) -> list[Path]:
    """The complete spill folders of this store, oldest run first."""
    root = spill_dir(store)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / LINEAGE_FILE).is_file())


def load_spill(
    store: str | Path, folder: str | Path, *, retries: int = 3, retry_delay: float = 1.0
) -> str:
    """Insert a spilled run into the store (one transaction) and remove its folder; its run id."""
    folder = Path(folder)
    try:
        run_id = json.loads((folder / LINEAGE_FILE).read_text())["run_id"]
        tables = {name: pq.read_table(folder / f"{name}.parquet") for name in RUN_TABLES
                  if (folder / f"{name}.parquet").exists() or name in CORE_TABLES}  # fmt: skip
    except (OSError, ValueError, KeyError) as error:
        raise StoreError(
            f"{folder} is not a complete spill ({error}); spills are the folders under "
            f"{spill_dir(store)}"
        ) from error
    write_tables(store, run_id, tables, retries=retries, retry_delay=retry_delay)
    shutil.rmtree(folder)
    return run_id


def load_pending_spills(store: str | Path, **retry) -> list[str]:
    """Load every pending spill of the store; the run ids loaded."""
    return [load_spill(store, folder, **retry) for folder in pending_spills(store)]


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value
