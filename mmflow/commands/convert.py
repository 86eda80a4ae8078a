"""`mmflow convert`: a Bloomberg workbook to the Parquet cache (one file per security + manifest)."""

from __future__ import annotations

import argparse
import time

HELP = "convert a workbook to Parquet (SPEC §1.4 schema)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow convert`."""
    p.add_argument("workbook", help="the .xlsx workbook")
    p.add_argument(
        "--out",
        help="output folder (default: the Parquet cache, $MMFLOW_PARQUET_CACHE or "
        "~/.cache/mmflow/parquet, in a folder named after the workbook's sha256)",
    )


def run(args: argparse.Namespace) -> int:
    """Convert (or reuse an up-to-date cache) and print what each sheet gave; exit 1 on bad sheets."""
    import pandas as pd

    from engine.data.parquet import ensure_cache
    from mmflow.console import console, table

    started = time.perf_counter()
    manifest = ensure_cache(args.workbook, args.out)
    rows = [
        {
            "sheet": e.sheet,
            "security": e.security,
            "file": e.file or "",
            "rows_read": e.rows_read,
            "bad_dates": e.dropped_bad_timestamp,
            "bad_prices": e.dropped_bad_price,
            "nonfinite_prices": e.dropped_nonfinite_price,
            "bad_sizes": e.dropped_bad_size,
            "rows_written": e.rows_written,
            "error": e.error or "",
        }
        for e in manifest.sheets
    ]
    frame = pd.DataFrame(rows)
    console.print(table(frame, title=f"{args.workbook} -> {manifest.cache_dir}"))
    console.print(
        f"{len(rows)} sheets in {time.perf_counter() - started:.2f} s (workbook sha256 "
        f"{manifest.content_hash[:12]}…)",
        highlight=False,
    )
    return 1 if any(e.error for e in manifest.sheets) else 0
