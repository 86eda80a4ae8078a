"""Checks the commands run before starting any Prefect server or Dask cluster: every argument that
can be judged locally, in well under a second, so a typo costs a line, not 20 s of start-up.

Each check raises `UserError` with one line saying what is wrong and what to do. Nothing here
imports prefect, dask or duckdb.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from mmflow.cli import UserError, heavy_imports

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
PARQUET_MAGIC = b"PAR1"


def check_strategies(names) -> None:
    """Every strategy name exists (a "did you mean" otherwise)."""
    from engine.sim import strategies

    for name in names:
        strategies.get(name)


def check_parameters(strategy: str, config: str | None, overrides: dict | None) -> dict:
    """The config file parses and its keys and the overrides are parameters of `strategy` with
    valid values; returns the config."""
    from engine.params import load_config, resolve_params
    from engine.sim import strategies

    values = load_config(config)
    params_cls = strategies.get(strategy).Params
    resolve_params(params_cls, "", values, overrides)
    for security in values:
        resolve_params(params_cls, security, values, overrides)
    return values


def check_data(data: str) -> None:
    """The data exists and is of a kind we read: a workbook (a zip), a Parquet file, or a folder
    holding Parquet files. A URL is left to the reader."""
    if "://" in data:
        return
    path = Path(data)
    if not path.exists():
        raise UserError(
            f"--data {data} does not exist; give a workbook, a .parquet file or a folder"
        )
    if path.is_dir():
        if (path / "history.json").is_file():  # a tick history made by `mmflow ingest`
            return
        if not any(p.suffix.lower() == ".parquet" for p in path.iterdir()):
            raise UserError(f"--data {data} is a folder without .parquet files")
        return
    suffix = path.suffix.lower()
    magic = {**dict.fromkeys(WORKBOOK_SUFFIXES, ZIP_MAGIC), ".parquet": PARQUET_MAGIC}.get(suffix)
    if magic is None:
        raise UserError(
            f"--data {data}: unsupported file type {suffix or '(none)'!r}; "
            "give an .xlsx workbook, a .parquet file or a folder of them"
        )
    with path.open("rb") as file:
        head = file.read(4)
    if head != magic:
        kind = "an Excel workbook (.xlsx is a zip archive)" if magic == ZIP_MAGIC else "Parquet"
        raise UserError(
            f"--data {data} is not {kind}; re-export it (a CSV renamed to .xlsx will not do)"
        )


def check_store_writable(store: str) -> None:
    """The store file (or the folder it will be created in) can be written."""
    path = Path(store)
    if path.is_dir():
        raise UserError(
            f"--store {store} is a folder; give a file such as {path / 'mmflow.duckdb'}"
        )
    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    target = path if path.exists() else existing
    if not os.access(target, os.W_OK):
        raise UserError(f"--store {store} cannot be written here ({target}); pick another path")


def check_prefect_api(timeout: float = 2.0) -> None:
    """When $PREFECT_API_URL is set, a Prefect server answers there."""
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        return
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            if json.loads(response.read() or b"null") is True:
                return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({reason}); start one with "
            "`mmflow server`, or unset PREFECT_API_URL to use a temporary one"
        ) from None
    raise UserError(f"the Prefect server at {url} is not healthy yet; try again in a few seconds")


def check_flow_arguments(args, strategies, overrides: dict | None) -> None:
    """Everything `mmflow run` and `sweep` can check before Prefect starts."""
    with heavy_imports():  # the strategy registry loads numba and the engine
        check_strategies(strategies)
    for name in strategies:
        check_parameters(name, args.config, overrides)
    check_data(args.data)
    if args.max_sheets is not None and args.max_sheets < 1:
        raise UserError(f"--max-sheets must be at least 1, got {args.max_sheets}")
    if getattr(args, "workers", None) is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if getattr(args, "store_timeout", 0) < 0:
        raise UserError(f"--store-timeout must be >= 0 seconds, got {args.store_timeout}")
    from engine.settings import store_path

    check_store_writable(store_path(args.store))
    check_prefect_api()
