"""Flow runs whose process died stay RUNNING in Prefect forever (nothing reports their end): each
flow run of ours records the process running it, and the next `mmflow` command that reaches the
same Prefect API marks Crashed every recorded run whose process is gone from this machine.

The records are small JSON files in `<cache dir>/flow-runs/` (one per live flow run, removed when
the run ends in any way the process survives). Runs started on other machines are left alone.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from engine import settings

STALE_SECONDS = 7 * 86_400


def registry() -> Path:
    """Where live flow runs of this machine are recorded."""
    return settings.cache_dir() / "flow-runs"


def record(flow_run_id: str | None) -> None:
    """Record this process as the one running `flow_run_id` (called as the flow starts)."""
    if not flow_run_id:
        return
    folder = registry()
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    (folder / f"{flow_run_id}.json").write_text(json.dumps(entry))


def forget(flow, flow_run, state) -> None:
    """Flow state hook: the run ended while its process lived; drop its record."""
    (registry() / f"{flow_run.id}.json").unlink(missing_ok=True)


# Hooks for @flow(...): every end the process survives removes the record.
HOOKS = dict(on_completion=[forget], on_failure=[forget], on_cancellation=[forget],
             on_crashed=[forget])  # fmt: skip


# The summary a flow running in this process has stored (see `hand_over`).
_HANDED_OVER: list = []


def hand_over(summary) -> None:
    """Called by a flow once its results are stored: a command whose Prefect server is lost can
    print this summary and exit instead of waiting minutes on Prefect's retries."""
    _HANDED_OVER[:] = [summary]


def handed_over():
    """The summary last handed over in this process, or None."""
    return _HANDED_OVER[0] if _HANDED_OVER else None


def alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def reconcile() -> list[str]:
    """Mark Crashed the recorded flow runs whose process is gone; their ids."""
    folder = registry()
    if not folder.is_dir():
        return []
    host, dead = socket.gethostname(), []
    for record in sorted(folder.glob("*.json")):
        try:
            entry = json.loads(record.read_text())
        except (OSError, ValueError):
            record.unlink(missing_ok=True)
            continue
        if entry.get("host") == host and not alive(int(entry.get("pid", 0))):
            dead.append((record, entry))
    crashed = []
    for record, entry in dead:
        outcome = _mark_crashed(record.stem, entry["pid"])
        if outcome == "crashed":
            crashed.append(record.stem)
        # A run unknown to this API may belong to another server: keep its record a week.
        if outcome != "unknown" or time.time() - entry.get("since", 0) > STALE_SECONDS:
            record.unlink(missing_ok=True)
    return crashed


def _mark_crashed(flow_run_id: str, pid: int) -> str:
    """Set a still-running flow run Crashed: `crashed`, `final` (it ended), or `unknown` (not
    on this API, or the API did not answer)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and state.is_final():
                return "final"
            message = f"the process running it (PID {pid}) is gone; marked by mmflow"
            client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
    except Exception:  # noqa: BLE001 - another API's run, or the API is down: leave it
        return "unknown"
    return "crashed"
