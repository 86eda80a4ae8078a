"""`mmflow ingest DROP_DIR`: read every workbook and .parquet file of a drop folder (subfolders
too) into the tick history, a Parquet dataset by security and trading date that `--data` accepts
in `run`, `backtest` and `sweep`. Files already ingested are skipped; a day that differs from the
stored one becomes a new revision; a bad file or sheet is recorded with its reason and the others
are ingested. The catalog (files, day revisions) is kept in the store. No Prefect: it runs at once.
"""

from __future__ import annotations

import argparse

from mmflow.commands.options import add_store

HELP = "ingest a drop folder of workbooks / .parquet files into the tick history"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow ingest`."""
    from engine.settings import DEFAULT_HISTORY

    p.add_argument(
        "drop", metavar="DROP_DIR", help="the folder of new workbooks and .parquet files"
    )
    p.add_argument(
        "--history",
        default=str(DEFAULT_HISTORY),
        help=f"the tick-history folder, created if new (default {DEFAULT_HISTORY})",
    )
    add_store(p)


def _line(outcome) -> str:
    """One line per file."""
    days = (
        f"{outcome.days_new} new, {outcome.days_revised} revised, "
        f"{outcome.days_unchanged} unchanged day(s), {outcome.rows:,} rows"
    )
    if outcome.status == "skipped":
        return f"skipped   {outcome.path} (already ingested)"
    if outcome.status == "failed":
        return f"FAILED    {outcome.path}: {outcome.error}"
    line = f"{outcome.status:<9} {outcome.path}: {days}"
    return line + (f"\n          failed sheets: {outcome.error}" if outcome.error else "")


def run(args: argparse.Namespace) -> int:
    """Ingest, one line per file, then the totals; exit 1 when a file or sheet failed."""
    from engine.data.history import ingest
    from engine.settings import store_path
    from mmflow.commands.checks import check_store_writable

    store = store_path(args.store)
    check_store_writable(store)
    report = ingest(args.drop, args.history, store, on_file=lambda o: print(_line(o), flush=True))
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(report.lines()[0].replace("**", "").replace("`", ""))
    print(f'catalog in {store}: mmflow query "SELECT * FROM ingested_files ORDER BY ingested_at"')
    return 1 if report.problems else 0
