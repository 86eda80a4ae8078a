"""`mmflow nightly`: the nightly loop once, now: ingest the drop folder into the tick history,
backtest each strategy over the whole history (the `backtest` flow per strategy), diff each run
against the previous night's, publish the diff (the `nightly-diff` artifact, printed here too)
and notify on a failure, an unexplained change or a missing day. Defaults come from the nightly
settings (deployments/nightly.toml and its environment variables); options win.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmflow.commands.options import add_cluster, add_overrides, add_store, comma_list

HELP = "run the nightly loop now: ingest, backtest the history, diff, notify"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow nightly`."""
    p.add_argument("--drop", help="folder of new workbooks / .parquet files (settings: drop)")
    p.add_argument("--history", help="the tick-history folder (settings: history)")
    p.add_argument("--data", help="data to backtest when no history is set (settings: data)")
    p.add_argument("--strategies", nargs="+", metavar="NAME", help="(settings: strategies)")
    p.add_argument("--notify", metavar="URL", help="apprise or http(s) URL for alarms")
    p.add_argument("--config", help="per-security JSON config in the reference shape")
    p.add_argument("--securities", type=comma_list, help="comma-separated security names")
    p.add_argument("--max-sheets", type=int, help="only the first N securities")
    p.add_argument("--settings", help="settings file (default deployments/nightly.toml)")
    add_overrides(p)
    add_store(p)
    add_cluster(p)


def flow_kwargs(args: argparse.Namespace) -> dict:
    """The nightly flow's parameters: the settings, then the options; checked before Prefect."""
    from deployments.settings import load_settings
    from engine.params import parse_overrides
    from mmflow.commands.checks import check_parameters, check_store_writable, check_strategies

    settings = load_settings(args.settings)
    kwargs = dict(
        data=args.data or settings.data,
        strategies=list(args.strategies or settings.strategies),
        store=args.store or settings.store,
        drop=args.drop or settings.drop,
        history=args.history or settings.history,
        notify=args.notify or settings.notify,
        config=args.config,
        overrides=parse_overrides(args.overrides) or None,
        securities=args.securities,
        max_sheets=args.max_sheets,
        dask_address=args.dask_address,
        workers=args.workers,
    )
    if args.drop and not kwargs["history"]:
        from engine.settings import DEFAULT_HISTORY

        kwargs["history"] = str(DEFAULT_HISTORY)
    for key in ("data", "drop", "history"):  # absolute, as the UI and the artifact show them
        if kwargs[key] and "://" not in kwargs[key]:
            kwargs[key] = str(Path(kwargs[key]).expanduser().absolute())
    check_strategies(kwargs["strategies"])
    for name in kwargs["strategies"]:
        check_parameters(name, kwargs["config"], kwargs["overrides"])
    check_store_writable(kwargs["store"])
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Run the flow once; print the night's diff; exit 1 when it raised an alarm."""
    from mmflow.cli import heavy_imports

    with heavy_imports():
        from engine.run import outcome
        from flows.nightly import nightly
        from flows.runtime import prefect_api
        from mmflow.commands.checks import check_prefect_api

    kwargs = flow_kwargs(args)
    check_prefect_api()
    with prefect_api():
        state = nightly(**kwargs, return_state=True)
    report = outcome(state)  # also when every strategy failed
    if not isinstance(report, dict):
        print(f"mmflow nightly: the flow failed: {state.message}")
        return 1
    print(report["markdown"])
    return 1 if report["problems"] or state.is_failed() else 0
