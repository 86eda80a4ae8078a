"""The one fan-out every flow uses: submit a task per item (a security, or a security and a batch
of cells) to the task runner, collect them in one `as_completed` loop with a `[k/n]` progress log,
and turn a task that failed for good into a `Failure` a user can act on.

A Dask `KilledWorker` (the worker died on every try) comes from outside the task: it fails that
item, never the run, and its task run is marked Crashed so the UI does not show it Pending.
Futures are released as soon as they are read, so a worker lost later does not make Dask
recompute results the flow already holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger
from prefect.futures import as_completed
from prefect.states import Failed, State

from engine.run import RunFailed
from engine.types import Failure
from flows.runtime import make_task_runner


@dataclass(frozen=True)
class Item:
    """One task to submit: its key in the outcome dict, the security it is about, its parameters."""

    key: Hashable
    security: str
    parameters: dict[str, Any]
    label: str = ""  # e.g. "batch 2/5", shown in the progress log


@dataclass
class FanOut:
    """Outcomes by item key (the task's result, or a Failure), and seconds per phase."""

    outcomes: dict[Hashable, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def fan_out(
    task,
    items: Sequence[Item],
    *,
    describe: Callable[[Any], str],
    on_outcome: Callable[[Item, Any], None] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    runner=None,
) -> FanOut:
    """Run `task` once per item on the task runner (`runner`, an entered one shared by several
    fan-outs, else one made for this call); `on_outcome(item, outcome)` is called as each
    finishes (e.g. to store a finished batch). `describe(result)` is the progress line's text."""
    logger = get_run_logger()
    done = FanOut()
    if not items:  # nothing to do: no cluster either
        return done
    started = time.perf_counter()
    with (
        _entered(runner)
        if runner is not None
        else make_task_runner(dask_address, workers) as runner
    ):
        getattr(runner, "client", None)  # Dask's runner starts its cluster on first use: now
        submitted = time.perf_counter()
        futures = {runner.submit(task, parameters=item.parameters): item for item in items}
        for k, future in enumerate(as_completed(list(futures)), start=1):
            item = futures[future]
            outcome = _outcome(future, item, task)
            done.outcomes[item.key] = outcome
            where = f"[{k}/{len(items)}{_eta(k, len(items), submitted)}] {item.security}"
            where += f" ({item.label})" if item.label else ""
            step = {"mmflow_progress": (k, len(items))}  # drives `mmflow sweep`'s progress bar
            if isinstance(outcome, Failure):
                logger.warning("%s FAILED after %d attempt(s): %s: %s", where, outcome.attempts,
                               outcome.error_type, outcome.message, extra=step)  # fmt: skip
            else:
                logger.info("%s: %s", where, describe(outcome), extra=step)
            if on_outcome is not None:
                on_outcome(item, outcome)
        computed = time.perf_counter()
    done.timings.update(
        cluster_start=submitted - started,
        compute=computed - submitted,
        cluster_stop=time.perf_counter() - computed,
    )
    return done


@contextmanager
def _entered(runner):
    """An already entered task runner, as a context that leaves it running."""
    yield runner


def _eta(done: int, total: int, since: float) -> str:
    """`, 12 s, ETA 30 s` after the first few items."""
    elapsed = time.perf_counter() - since
    if done >= total or done < 2:
        return f", {elapsed:.0f} s"
    return f", {elapsed:.0f} s, ETA {elapsed / done * (total - done):.0f} s"


def _outcome(future, item: Item, task) -> Any:
    """The task's result, or the Failure of a task that failed for good; releases the future."""
    try:
        outcome = future.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - KilledWorker is raised by Dask, not the task
        outcome = exc
    if isinstance(outcome, BaseException):
        outcome = capture_failure(future, item, outcome, task)
    _release(future)
    return outcome


def capture_failure(future, item: Item, exc: object, task=None) -> Failure:
    """What a user needs to know about an item whose task failed for good."""
    security = item.security
    if hasattr(exc, "allowed_failures"):  # Dask's KilledWorker: its worker died on every try
        _mark_crashed(future, f"{type(exc).__name__}: {exc}", task, item)
        return Failure(security, type(exc).__name__, str(exc), exc.allowed_failures + 1)
    attempts = _attempts(future.task_run_id)
    if isinstance(exc, BaseException):
        return Failure(security, type(exc).__name__, str(exc) or repr(exc), attempts)
    return Failure(security, "TaskFailed", str(future.state.message), attempts)


def _attempts(task_run_id) -> int:
    """How often the task ran. Task states reach the API as events, a moment after the flow has
    the result, so wait (up to 5 s) until the API has the final state before reading run_count."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            for _ in range(50):
                task_run = client.read_task_run(task_run_id)
                if task_run.state is not None and task_run.state.is_final():
                    break
                time.sleep(0.1)
        return task_run.run_count or 1
    except Exception:  # noqa: BLE001 - the attempt count is informative only
        return 1


def _mark_crashed(future, message: str, task, item: Item) -> None:
    """A task run whose worker died never reports a final state itself: record Crashed. When the
    worker died before its task run reached the API, the run is created, already Crashed."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            try:
                client.set_task_run_state(future.task_run_id, Crashed(message=message), force=True)
            except Exception:  # noqa: BLE001 - not in the API: the worker died too early
                template = getattr(task, "task_run_name", None)
                name = template.format(**item.parameters) if isinstance(template, str) else None
                client.create_task_run(task=task, flow_run_id=flow_run.get_id(), id=future.task_run_id,
                                       dynamic_key=f"{item.security}-{future.task_run_id}", name=name,
                                       state=Crashed(message=message))  # fmt: skip
    except Exception:  # noqa: BLE001 - bookkeeping only; the Failure is what the run records
        pass


def _release(future) -> None:
    """Drop the Dask future once read (a no-op for other runners)."""
    wrapped = getattr(future, "wrapped_future", None)
    release = getattr(wrapped, "release", None)
    if callable(release):
        try:
            release()
        except Exception:  # noqa: BLE001 - releasing early is an optimisation only
            pass


def all_failed(message: str, summary: object) -> State:
    """The state a flow returns when every item failed: Failed, and calling the flow raises
    `RunFailed` with its `summary` (`engine.run.outcome` reads it from the state)."""
    return Failed(message=message, data=RunFailed(message, summary))
