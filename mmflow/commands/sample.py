"""`mmflow sample`: write the deterministic synthetic workbook in the Bloomberg layout."""

from __future__ import annotations

import argparse
import time

from mmflow.console import console


def add_parser(subparsers) -> None:
    """Register `mmflow sample`."""
    p = subparsers.add_parser(
        "sample", help="write a synthetic Bloomberg-layout workbook", description=__doc__
    )
    p.add_argument(
        "--out", default="data/sample.xlsx", help="where to write it (default data/sample.xlsx)"
    )
    p.add_argument("--sheets", type=int, default=16, help="securities, one sheet each (default 16)")
    p.add_argument("--days", type=int, default=3, help="trading days (default 3)")
    p.add_argument("--rows", type=int, default=20_000, help="rows per sheet (default 20,000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write the workbook (openpyxl writes about 4-8k rows/s: the default takes about a minute)."""
    from engine.data.sample import write_sample_workbook

    started = time.perf_counter()
    path = write_sample_workbook(
        args.out, sheets=args.sheets, days=args.days, rows_per_sheet=args.rows, seed=args.seed
    )
    console.print(
        f"wrote {path}: {args.sheets} sheets x {args.rows:,} rows in {time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    return 0
