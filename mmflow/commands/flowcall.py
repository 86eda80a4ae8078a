"""Running a flow from the command line: against the configured (or a temporary) Prefect API,
returning its typed summary, and finishing promptly when the Prefect server is lost mid-run.

Once a flow has stored its results it hands its summary over (`flows.liveness.hand_over`). If the
server then stops answering, Prefect would retry its last state changes, logs and events for
minutes; a watchdog prints the summary with the command's own printer and ends the process
instead, within seconds (only in a console-script process: never inside tests or notebooks).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from mmflow.cli import UserError, console_process

POLL_SECONDS = 2.0
MISSES = 2  # consecutive failed health checks before the server counts as lost


def call_flow(flow, kwargs: dict, summary_type: type, *, finish: Callable | None = None, what: str):
    """Run `flow(**kwargs)`; (its summary, wall seconds). `finish(summary) -> exit code` prints
    the result: the watchdog uses it when the server is lost after the results were stored."""
    from flows.runtime import prefect_api

    with prefect_api() as url:
        stop = threading.Event()
        if finish is not None and console_process():
            watch = threading.Thread(target=_watch, args=(url, finish, stop), daemon=True)
            watch.start()
        started = time.perf_counter()
        try:
            state = flow(**kwargs, return_state=True)
        finally:
            stop.set()
        seconds = time.perf_counter() - started
    from engine.run import outcome

    summary = outcome(state)  # also when every item failed
    if isinstance(summary, summary_type):
        return summary, seconds
    cause = summary if isinstance(summary, BaseException) else None
    raise UserError(f"the {what} flow failed: {summary}") from cause


def _watch(url: str, finish: Callable, stop: threading.Event) -> None:
    """End the process with the handed-over summary once the server has stopped answering."""
    from flows import liveness
    from tasks.backtest import _answers

    misses = 0
    while not stop.wait(POLL_SECONDS):
        misses = 0 if _answers(url, timeout=POLL_SECONDS) else misses + 1
        summary = liveness.handed_over()
        if misses >= MISSES and summary is not None:
            print(
                f"mmflow: the Prefect server at {url} is gone; the results are stored, so this "
                "ends without waiting for Prefect's retries (the UI will show the run unfinished)",
                file=sys.stderr,
                flush=True,
            )
            code = finish(summary)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
