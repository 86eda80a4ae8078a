"""`mmflow rerun RUN_ID [--out DIR]`: recompute a stored run or sweep cell from its stored
parameters, after checking its data still has the same content hash. It is stored again under the
same run id, now with every trade (a sweep keeps trades of its best cells only); `--out DIR` also
writes its trade CSVs and summary as `mmflow backtest` does. Runs in-process (no Prefect)."""

from __future__ import annotations

import argparse

from mmflow.commands.options import add_store

HELP = "recompute a stored run or sweep cell, with its trades"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow rerun`."""
    p.add_argument("run_id", metavar="RUN_ID", help="the run or sweep cell (see mmflow compare)")
    p.add_argument("--data", help="the data, when it has moved (its content must be the same)")
    p.add_argument("--out", help="also write <SECURITY>_trades.csv and backtest_summary.csv here")
    p.add_argument("--no-store", action="store_true", help="only write --out; leave the store")
    add_store(p)


def run(args: argparse.Namespace) -> int:
    """Recompute, store (unless --no-store), write files when asked."""
    from engine.rerun import rerun
    from engine.results.files import write_outputs
    from engine.results.store import write_run
    from engine.settings import store_path
    from mmflow.cli import UserError
    from mmflow.console import console, portfolio_line

    if args.no_store and not args.out:
        raise UserError("--no-store without --out would compute and keep nothing")
    store = store_path(args.store)
    run_ = rerun(store, args.run_id, data=args.data)
    console.print(
        portfolio_line(run_.portfolio, len(run_.results), len(run_.failures)), highlight=False
    )
    if not args.no_store:
        write_run(store, run_)
        console.print(f"stored run {run_.run_id} again in {store}, with {run_.trades:,} trades",
                      highlight=False)  # fmt: skip
    if args.out:
        console.print(f"wrote {write_outputs(run_, args.out)}", highlight=False)
    return 1 if run_.failures else 0
