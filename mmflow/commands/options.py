"""Command-line options shared by several commands, defined once."""

from __future__ import annotations

import argparse

DATA_HELP = (
    "an .xlsx workbook, a folder of .parquet files, or one .parquet file; a path or a URL "
    "(file://, s3://, ...) that every worker can reach"
)


def comma_list(text: str) -> list[str]:
    """`"EMAAR, ALDAR"` -> `["EMAAR", "ALDAR"]`."""
    return [item.strip() for item in text.split(",") if item.strip()]


def add_input(parser: argparse.ArgumentParser, *, data_default: str | None = None) -> None:
    """--data (required unless it has a default), --config, --securities, --max-sheets."""
    if data_default is None:
        parser.add_argument("--data", required=True, help=DATA_HELP)
    else:
        parser.add_argument(
            "--data", default=data_default, help=f"{DATA_HELP} (default {data_default})"
        )
    parser.add_argument("--config", help="per-security JSON config in the reference shape")
    parser.add_argument(
        "--securities", type=comma_list, help="comma-separated security names (e.g. EMAAR,ALDAR)"
    )
    parser.add_argument("--max-sheets", type=int, help="only the first N sheets / files")
    parser.add_argument(
        "--cache",
        metavar="DIR_OR_URL",
        help="where a workbook's Parquet cache goes: a folder, or a URL (s3://...) that remote "
        "workers read (default $MMFLOW_PARQUET_CACHE or ~/.cache/mmflow/parquet)",
    )


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """--set KEY=VALUE (repeatable): a parameter for every security."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter for every security (repeatable), e.g. refill_interval_sec=10",
    )


def add_store(parser: argparse.ArgumentParser, *, writes: bool = False) -> None:
    """--store FILE (and --store-timeout SECONDS for commands that write)."""
    parser.add_argument("--store", help="DuckDB file (default $MMFLOW_STORE or data/mmflow.duckdb)")
    if writes:
        parser.add_argument(
            "--store-timeout",
            type=float,
            default=120.0,
            metavar="SECONDS",
            help="how long to wait for a store another process holds before keeping the results "
            "as a spill to load later (default 120)",
        )


def add_cluster(parser: argparse.ArgumentParser) -> None:
    """--dask-address, --workers."""
    parser.add_argument(
        "--dask-address",
        help="existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster; also $MMFLOW_DASK_ADDRESS)",
    )
    parser.add_argument(
        "--workers", type=int, help="local cluster worker processes (default: one per core)"
    )
