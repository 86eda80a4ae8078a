"""`mmflow sample`: write the deterministic synthetic workbook in the Bloomberg layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.settings import DEFAULT_DATA

HELP = "write a synthetic Bloomberg-layout workbook"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow sample`."""
    p.add_argument(
        "--out",
        help=f"where to write it (default: the bundled sample {DEFAULT_DATA}, only with --force)",
    )
    p.add_argument(
        "--force", action="store_true", help=f"rewrite the bundled sample {DEFAULT_DATA}"
    )
    p.add_argument("--sheets", type=int, default=16, help="securities, one sheet each (default 16)")
    p.add_argument("--days", type=int, default=3, help="trading days (default 3)")
    p.add_argument("--rows", type=int, default=20_000, help="rows per sheet (default 20,000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")


def run(args: argparse.Namespace) -> int:
    """Write the workbook with a progress bar (openpyxl writes about 4-8k rows/s); the same
    arguments give the same bytes. Without --out the bundled sample is rewritten only with --force."""
    from rich.markup import escape

    from engine.data.sample import write_sample_workbook
    from mmflow.cli import UserError
    from mmflow.console import console, progress

    out = Path(args.out) if args.out else DEFAULT_DATA
    if args.out is None and out.exists() and not args.force:
        raise UserError(
            f"{out} exists: it is the bundled sample, which is not rewritten by default",
            hint="pass --force to rewrite it, or --out PATH to write a workbook elsewhere",
        )
    started = time.perf_counter()
    with progress(args.sheets * args.rows, escape(f"writing {out}")) as bar:
        path = write_sample_workbook(
            out,
            sheets=args.sheets,
            days=args.days,
            rows_per_sheet=args.rows,
            seed=args.seed,
            on_rows=lambda n: bar.update(0, advance=n),
        )
    console.print(
        f"wrote {path}: {args.sheets} sheets x {args.rows:,} rows in "
        f"{time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    return 0
