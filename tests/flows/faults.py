"""Fault injection for the flow tests: a DataSource whose `load` fails in a chosen way.

Every attempt at a faulty security is appended to `<marker_dir>/<SECURITY>.attempts` (one line per
attempt: the process id), so a test can count attempts and see which processes ran them, whatever
the task runner. The "first attempt only" faults use an exclusively created marker file, so they
fire once per test even when the attempt runs in another (Dask worker) process. The kills wait
$FAULTS_KILL_DELAY seconds first (default 0), e.g. to let the Running state reach the API.

This module must be importable where the tasks run: Dask pickles the source by reference to this
module. Pytest puts tests/flows on sys.path, and LocalCluster's spawned workers inherit it;
external `dask worker` processes need tests/flows on their PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.data.source import DataSource, open_data

FAIL_ONCE = "fail-once"  # OSError on the first attempt, then loads normally
ALWAYS_OSERROR = "always-oserror"  # OSError on every attempt: retried until retries run out
KILL_ONCE = "kill-once"  # SIGKILL of its own process on the first attempt, then loads normally
KILL_ALWAYS = "kill-always"  # SIGKILL of its own process on every attempt (a crashing security)
FAULTS = (FAIL_ONCE, ALWAYS_OSERROR, KILL_ONCE, KILL_ALWAYS)


@dataclass(frozen=True)
class FaultySource(DataSource):
    """A DataSource whose `load` of the securities in `faults` fails as named there."""

    faults: dict[str, str] = field(default_factory=dict, compare=False)
    marker_dir: str = ""

    def load(self, security: str):
        """Record the attempt, inject the security's fault, else load as usual."""
        fault = self.faults.get(security)
        if fault is not None:
            marker = Path(self.marker_dir) / security
            with open(f"{marker}.attempts", "a") as log:
                log.write(f"{os.getpid()}\n")
            if fault == ALWAYS_OSERROR:
                raise OSError(f"injected: {security} is never readable")
            if fault == KILL_ALWAYS or (fault == KILL_ONCE and _first_time(f"{marker}.{fault}")):
                time.sleep(float(os.environ.get("FAULTS_KILL_DELAY", "0")))
                os.kill(os.getpid(), signal.SIGKILL)
            if fault == FAIL_ONCE and _first_time(f"{marker}.{fault}"):
                raise OSError(f"injected: {security} fails on its first attempt")
        return super().load(security)


def _first_time(marker: str) -> bool:
    """True for exactly one caller across processes: whoever creates `marker` first."""
    try:
        with open(marker, "x"):
            return True
    except FileExistsError:
        return False


def faulty_source(source: DataSource, marker_dir: str | os.PathLike, **faults: str) -> FaultySource:
    """`source` with faults injected, e.g. faulty_source(src, tmp, MODON=FAIL_ONCE)."""
    unknown = {k: v for k, v in faults.items() if v not in FAULTS or k not in source.securities}
    if unknown:
        raise ValueError(f"unknown security or fault in {unknown}; faults are {FAULTS}")
    values = {f.name: getattr(source, f.name) for f in fields(DataSource)}
    return FaultySource(**values, faults=dict(faults), marker_dir=str(marker_dir))


def attempts(marker_dir: str | os.PathLike, security: str) -> list[int]:
    """The process ids of the recorded attempts at `security`, in order."""
    log = Path(marker_dir) / f"{security}.attempts"
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def opening_with_faults(marker_dir: str | os.PathLike, **faults: str):
    """A stand-in for the flow's `prepare_data`: open the data as usual, then inject `faults`."""

    def prepare_data(data: str, securities=None, max_sheets=None, cache=None) -> FaultySource:
        source = open_data(data, securities=securities, max_sheets=max_sheets, cache_dir=cache)
        return faulty_source(source, marker_dir, **faults)

    return prepare_data


def hold_store(path: str, ready, release) -> None:
    """Child-process target: hold the DuckDB file open read-write until `release` is set."""
    import duckdb

    con = duckdb.connect(path)
    try:
        ready.set()
        release.wait(300)
    finally:
        con.close()
