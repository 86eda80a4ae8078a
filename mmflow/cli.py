"""The `mmflow` command line. Each sub-command lives in `mmflow/commands/<name>.py` and exposes
`add_parser(subparsers)` and `run(args) -> int`; errors a user can fix print one clear line."""

from __future__ import annotations

import argparse
import importlib
import sys

from mmflow import __version__

COMMANDS = (
    "sample",
    "convert",
    "backtest",
    "run",
    "sweep",
    "compare",
    "query",
    "report",
    "server",
    "serve",
    "store",
)


class UserError(Exception):
    """An error whose message tells the user what to do; printed without a traceback."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from engine.data.source import InputError
    from engine.params import ConfigError
    from engine.sim.strategies import UnknownStrategyError

    types: list[type[BaseException]] = [UserError, InputError, ConfigError, UnknownStrategyError]
    try:
        from engine.results.store import StoreError

        types.append(StoreError)
    except ImportError:  # pragma: no cover - the store is optional for the engine commands
        pass
    return tuple(types)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="mmflow",
        description="Market-making backtests over Bloomberg tick data, orchestrated by Prefect.",
    )
    parser.add_argument("--version", action="version", version=f"mmflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mmflow.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mmflow.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mmflow` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except _user_error_types() as exc:
        print(f"mmflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mmflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
