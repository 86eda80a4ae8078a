"""Short-lived connections to the store, and the errors that say what to do when it cannot open.

DuckDB allows one writer *or* many readers per file: a connection is opened per use in a context
manager, never kept in a module-level global, and a lock conflict becomes `StoreLockedError`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from engine.results.store.schema import migrate, pending


class StoreError(Exception):
    """The store cannot do what was asked; the message says what to do."""


class StoreLockedError(StoreError):
    """Another process holds the store file (DuckDB allows one writer or many readers)."""

    def __init__(self, message: str, path: str | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.path, self.pid = path, pid

    def __reduce__(self):  # keep path and pid when pickled to or from a worker
        return type(self), (str(self), self.path, self.pid)

    @classmethod
    def from_duckdb(cls, path: str, error: Exception) -> StoreLockedError:
        """Name the file, the holder and its PID (when DuckDB reports them), and what to do."""
        match = re.search(r"held in (.*?) \(PID (\d+)\)", str(error))
        pid = int(match.group(2)) if match else None
        holder = f" by {match.group(1)} (PID {pid})" if match else " by another process"
        message = (
            f"the store {path} is locked{holder}: close the other DuckDB session (CLI/notebook) "
            "or query a copy; the writer retries"
        )
        return cls(message, path, pid)


@contextmanager
def connect(
    path: str | Path, *, read_only: bool = False, retries: int = 0, retry_delay: float = 1.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a short-lived connection, retrying a locked file; close on exit.

    A read-write connection applies the missing migrations; a read-only one first upgrades a store
    made by an older version (once, in a brief read-write open), so readers see the current schema.
    """
    target = str(path)
    on_disk = target != ":memory:"
    if read_only and on_disk and not Path(target).exists():
        raise StoreError(f"no store at {target}; run `mmflow run` first")
    if not read_only and on_disk:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    con = _open(target, read_only, retries, retry_delay)
    try:
        if not read_only:
            migrate(con)
        elif on_disk and pending(con):
            con.close()
            con = _upgraded(target, retries, retry_delay)
        yield con
    finally:
        con.close()


def _upgraded(target: str, retries: int, retry_delay: float) -> duckdb.DuckDBPyConnection:
    """A store made by an older version, migrated in a brief read-write open, then opened read-only
    (readers expect the current schema; this happens once per store)."""
    try:
        with contextlib.closing(_open(target, False, retries, retry_delay)) as con:
            migrate(con)
    except StoreLockedError as error:
        raise StoreLockedError(
            f"{error}; the store also needs a one-time schema upgrade, which must write to it",
            error.path,
            error.pid,
        ) from error
    return _open(target, True, retries, retry_delay)


def _open(target: str, read_only: bool, retries: int, retry_delay: float):
    """duckdb.connect, translating lock conflicts into StoreLockedError after `retries` retries."""
    for attempt in range(retries + 1):
        try:
            return duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as error:
            if "Could not set lock" not in str(error):
                raise StoreError(f"cannot open the store {target}: {error}") from error
            if attempt == retries:
                raise StoreLockedError.from_duckdb(target, error) from error
            time.sleep(retry_delay)
        except duckdb.ConnectionException as error:
            if "different configuration" not in str(error):
                raise
            raise StoreError(
                f"the store {target} is already open in this process in the other mode "
                "(read-only vs read-write); close that connection first"
            ) from error
    raise AssertionError("unreachable")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; a failure to roll back must not hide the original error."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """A naive UTC datetime (TIMESTAMP has no zone); aware datetimes are converted to UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware_utc(moment: datetime | None) -> datetime | None:
    """The stored naive UTC datetime as an aware one (what a new `Run` holds)."""
    return None if moment is None else moment.replace(tzinfo=UTC)
