"""The `mmflow` command line. Each sub-command lives in `mmflow/commands/<name>.py`: its docstring
is its description, and it exposes `HELP` (one line), `add_arguments(parser)` and the handler
`run(args) -> int` (or `add_parser(subparsers)` when it has sub-commands of its own).

Building the parser imports only the command modules, which import nothing heavy at module level
(no pandas, numpy, numba, duckdb, prefect or pyarrow): `mmflow --help` answers at once, and each
command imports what it needs when it runs. Errors a user can fix print one line (and a hint);
tracebacks only with `--debug` or MMFLOW_DEBUG=1.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

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
    "rerun",
    "ingest",
    "nightly",
)


class UserError(Exception):
    """An error whose message tells the user what to do; printed without a traceback."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors a user can fix (bad input, config, strategy, settings, store): no traceback."""
    from engine.data.source import InputError
    from engine.params import ConfigError
    from engine.results.store.connection import StoreError
    from engine.sim.strategies import UnknownStrategyError

    types: list[type[BaseException]] = [
        UserError,
        InputError,
        ConfigError,
        UnknownStrategyError,
        StoreError,
    ]
    try:
        from deployments.settings import SettingsError

        types.append(SettingsError)
    except ImportError:  # pragma: no cover - the deployments package is optional
        pass
    return tuple(types)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="mmflow",
        description="Market-making backtests over Bloomberg tick data, orchestrated by Prefect.",
    )
    parser.add_argument("--version", action="version", version=f"mmflow {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks (also MMFLOW_DEBUG=1)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"mmflow.commands.{name}")
        if hasattr(module, "add_parser"):  # a command with its own sub-commands
            module.add_parser(subparsers)
            continue
        command = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    for command in subparsers.choices.values():  # `mmflow run --debug` works too
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def debugging(args: argparse.Namespace | None = None) -> bool:
    """--debug or MMFLOW_DEBUG=1."""
    return bool(getattr(args, "debug", False)) or os.environ.get("MMFLOW_DEBUG") == "1"


_CONSOLE = {"process": False}  # main() sets it: argv from the command line


def console_process() -> bool:
    """Whether this process is the `mmflow` command itself, not a test or notebook calling
    `main(argv)`: only then may mmflow end the process early or pause its garbage collector."""
    return _CONSOLE["process"]


@contextmanager
def heavy_imports() -> Iterator[None]:
    """Import a command's heavy modules (Prefect, pandas, the engine) with the garbage collector
    paused, then freeze what they made. Otherwise each full collection while importing, and every
    one after, walks their few hundred thousand long-lived objects: about 0.45 s of a warm
    `mmflow run`. A no-op outside the `mmflow` process."""
    if not console_process():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mmflow` console script."""
    _CONSOLE["process"] = argv is None
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    finally:
        if console_process():
            # The process exits next. Its last garbage collection would walk every object the
            # command made or imported (about 0.25 s after a backtest) only to free memory the
            # OS takes back anyway; frozen objects are skipped. Files are closed by then.
            gc.freeze()


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; every error ends in one line (exit 2 for the user's, else 1)."""
    try:
        return _finished(int(args.handler(args) or 0))
    except KeyboardInterrupt:
        print(f"mmflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends in one line unless --debug
        user_error = isinstance(exc, _user_error_types())
        if debugging(args):
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not user_error:
            message = f"{type(exc).__name__}: {message}"
        print(f"mmflow {args.command}: error: {message}", file=sys.stderr)
        hint = getattr(exc, "hint", None)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        elif not user_error and not debugging(args):
            print("hint: run again with --debug for the traceback", file=sys.stderr)
        return 2 if user_error else 1


def _finished(code: int, *, seconds: float = 5.0) -> int:
    """Send Prefect's last log lines and events, for at most `seconds`: when its server is gone,
    Prefect would retry them for minutes before the process may exit. The results are stored by
    then, so a console-script process exits at once instead (`os._exit` after flushing)."""
    if not console_process() or "prefect" not in sys.modules:
        return code
    import threading

    from flows.runtime import _drain_workers

    drain = threading.Thread(target=_drain_workers, daemon=True)
    drain.start()
    drain.join(seconds)
    if drain.is_alive():
        print(
            f"mmflow: the Prefect API did not take the last log lines in {seconds:.0f} s "
            "(server gone?); exiting without them",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
