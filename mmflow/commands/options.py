"""Command-line options shared by several commands, defined once."""

from __future__ import annotations

import argparse
import os

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


class _NoServer(argparse.Action):
    """--no-server: sets MMFLOW_NO_SERVER=1 in this process, where the flow runs and
    flows/runtime.py reads it (a flag, so no flow parameter has to carry it)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        os.environ["MMFLOW_NO_SERVER"] = "1"
        setattr(namespace, self.dest, True)


def add_cluster(parser: argparse.ArgumentParser) -> None:
    """--dask-address, --workers, --no-server."""
    parser.add_argument(
        "--dask-address",
        help="existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: the cluster of a "
        "running `mmflow server`, else a local one; also $MMFLOW_DASK_ADDRESS)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="local cluster worker processes (default: one per core; `mmflow server --workers` "
        "sizes its own cluster)",
    )
    parser.add_argument(
        "--no-server",
        action=_NoServer,
        help="ignore a running `mmflow server`: a temporary Prefect server (unless "
        "PREFECT_API_URL is set) and a local Dask cluster for this run (also MMFLOW_NO_SERVER=1)",
    )


def flow_inputs(args: argparse.Namespace) -> dict:
    """The flow parameters of the shared options: input (add_input), store (add_store with
    writes) and cluster (add_cluster)."""
    return dict(
        data=args.data,
        config=args.config,
        securities=args.securities,
        max_sheets=args.max_sheets,
        cache=args.cache,
        store=args.store,
        store_timeout=args.store_timeout,
        dask_address=args.dask_address,
        workers=args.workers,
    )
