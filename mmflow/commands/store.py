"""`mmflow store load-spill [FOLDER ...]`: load runs that were kept as spills because the store
stayed locked (by an idle notebook or DuckDB CLI) longer than the writer waited. With no folder,
every pending spill of the store is loaded; each is one transaction, and its folder is removed
once stored. The next `mmflow run` or `sweep` also loads pending spills before writing."""

from __future__ import annotations

import argparse

from mmflow.commands.options import add_store


def add_parser(subparsers) -> None:
    """Register `mmflow store`."""
    p = subparsers.add_parser(
        "store", help="store maintenance: load spilled runs", description=__doc__
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = actions.add_parser(
        "load-spill", help="load spilled runs into the store", description=__doc__
    )
    load.add_argument(
        "folders", nargs="*", metavar="FOLDER", help="spill folders (default: every pending one)"
    )
    add_store(load)
    load.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the given (or every pending) spill into the store; print what was loaded."""
    from engine.results.store import load_spill, pending_spills, spill_dir
    from engine.settings import store_path
    from mmflow.console import console

    store = store_path(args.store)
    folders = args.folders or pending_spills(store)
    if not folders:
        console.print(f"no spilled runs in {spill_dir(store)}", highlight=False)
        return 0
    for folder in folders:
        run_id = load_spill(store, folder)
        console.print(f"loaded run {run_id} from {folder} into {store}", highlight=False)
    return 0
