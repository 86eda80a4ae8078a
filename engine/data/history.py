"""The tick history's ingest: every workbook and Parquet file of a drop folder, split by trading
day into the history (`engine.data.days` owns its layout), and catalogued in the store.

Rules, per drop file in path order (`engine.data.drop`):
* a file whose content hash is already ingested into this history is skipped;
* each security's rows are split by date; a day whose rows hash like the stored day is a no-op;
  a day that differs is written (temp file + rename) as a new revision, the old revision's row
  kept in the catalog; a replacement with fewer rows is flagged with a warning;
* a bad sheet fails alone (the file is `partial`), a file that cannot be read is `failed`, with
  the InputError's reason; neither stops the other files;
* the file's catalog rows (`ingested_files`, `history_days`) are written in one transaction,
  after its day files are in place. A kill at any point leaves day files the catalog may not
  know yet; the next ingest, comparing with the catalog, writes them again (same bytes) and
  records them, so re-running gives the same history and catalog. Temporary files of a killed
  writer are removed, and one ingest at a time holds a history (a lock file in it).

No Prefect: `hold` is how a caller serialises store writes (the flows' `mmflow-store` slot).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from engine.data.days import (
    Marker,
    day_hash,
    day_path,
    is_history,
    read_marker,
    remove_temporaries,
    split_by_day,
    write_day,
    write_marker,
)
from engine.data.drop import DropFile, drop_files, read_drop_file
from engine.data.errors import InputError
from engine.data.parquet import _locked, file_sha256  # one exclusive-lock helper
from engine.paths import MAX_STEM, safe_stem
from engine.results.store.catalog import (
    HistoryState,
    StoredDay,
    history_state,
    now,
    record_file,
)
from engine.results.store.connection import connect

Hold = Callable[[], AbstractContextManager]
LEASE_SECONDS = 2.0  # longest a run of consecutive files keeps the store (then other writers go)


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one drop file."""

    path: str
    content_hash: str
    size: int
    status: str  # ingested | partial (some sheets failed) | failed | skipped (already ingested)
    sheets: int = 0
    rows: int = 0  # rows stored (all days, whether new, revised or unchanged)
    rows_dropped: int = 0
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    error: str | None = None
    days_new: int = 0
    days_revised: int = 0
    days_unchanged: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngestReport:
    """One ingest of a drop folder into a history."""

    drop: str
    history: str
    history_id: str
    files: tuple[FileOutcome, ...] = ()
    seconds: float = 0.0

    @property
    def problems(self) -> list[FileOutcome]:
        """Files that failed, whole or in part."""
        return [f for f in self.files if f.status in ("failed", "partial")]

    @property
    def warnings(self) -> list[str]:
        """Every warning of the ingest (e.g. a day replaced by fewer rows)."""
        return [w for f in self.files for w in f.warnings]

    def count(self, status: str) -> int:
        """How many files ended with `status`."""
        return sum(f.status == status for f in self.files)

    def lines(self) -> list[str]:
        """Markdown lines: the counts, then each problem and warning."""
        days = {k: sum(getattr(f, f"days_{k}") for f in self.files) for k in ("new", "revised")}
        lines = [
            f"**Ingest** of `{self.drop}` into `{self.history}` ({self.seconds:.1f} s): "
            f"{self.count('ingested')} file(s) ingested, {self.count('partial')} partly, "
            f"{self.count('skipped')} already ingested, {self.count('failed')} failed; "
            f"{days['new']} new day(s), {days['revised']} revised."
        ]
        lines += [f"- **{f.status}** `{f.path}`: {_one_line(f.error)}" for f in self.problems]
        return lines + [f"- warning: {w}" for w in self.warnings]


def _one_line(text: str | None) -> str:
    return " ".join(str(text or "").split())[:500]


def ingest(
    drop: str | Path,
    history: str | Path,
    store: str | Path,
    *,
    hold: Hold = nullcontext,
    on_file: Callable[[FileOutcome], None] | None = None,
) -> IngestReport:
    """Ingest every file of `drop` into the history at `history` (created if new), catalogued
    in `store`; store reads and writes run inside `hold()`."""
    started = time.perf_counter()
    root = Path(history).expanduser().absolute()
    files = drop_files(drop)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root), contextlib.closing(_CatalogWriter(store, hold)) as writer:
        marker = _prepare(root)
        state = writer.run(lambda con: history_state(con, marker.history_id))
        outcomes = []
        for path in files:
            outcome, marker = _ingest_file(path, root, marker, state, writer)
            outcomes.append(outcome)
            if on_file is not None:
                on_file(outcome)
    return IngestReport(
        str(Path(drop).expanduser().absolute()),
        str(root),
        marker.history_id,
        tuple(outcomes),
        time.perf_counter() - started,
    )


class _CatalogWriter:
    """The ingest's store access: `hold()` and one connection, kept across consecutive files for
    up to LEASE_SECONDS (a drop of a thousand files pays neither per file), then let go so other
    writers get their turn."""

    def __init__(self, store, hold: Hold) -> None:
        self.store, self.hold = store, hold
        self._stack: contextlib.ExitStack | None = None
        self._since = 0.0

    def run(self, work: Callable):
        """`work(connection)` inside the hold; its result."""
        if self._stack is None:
            stack = contextlib.ExitStack()
            stack.enter_context(self.hold())
            self._con = stack.enter_context(connect(self.store, retries=30))
            self._stack, self._since = stack, time.monotonic()
        try:
            return work(self._con)
        finally:
            if time.monotonic() - self._since > LEASE_SECONDS:
                self.close()

    def close(self) -> None:
        """Close the connection and release the hold."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


def _prepare(root: Path) -> Marker:
    """The history's marker (a new history in an empty folder); stray temporary files removed."""
    if is_history(root):
        marker = read_marker(root)
    else:
        if any(not p.name.startswith(".") for p in root.iterdir()):
            raise InputError(
                f"{root} is not a tick history (no history.json) and not empty; give a new or "
                "empty folder as the history, or the folder an earlier ingest made"
            )
        marker = Marker(f"h-{uuid.uuid4().hex[:12]}", {})
        write_marker(root, marker)
    remove_temporaries(root)
    return marker


def _ingest_file(
    path: Path, root: Path, marker: Marker, state: HistoryState, writer: _CatalogWriter
) -> tuple[FileOutcome, Marker]:
    """Ingest one drop file; returns its outcome and the (possibly grown) marker."""
    outcome = FileOutcome(str(path), file_sha256(path), path.stat().st_size, "failed")
    if outcome.content_hash in state.ingested:
        return replace(outcome, status="skipped"), marker
    try:
        dropped = read_drop_file(path)
    except Exception as exc:  # noqa: BLE001 - a file that cannot be read never stops the others
        error = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        outcome = replace(outcome, error=error)
        _record(writer, marker, outcome, [])
        return outcome, marker
    marker, day_rows, outcome = _store_days(dropped, root, marker, state, outcome)
    _record(writer, marker, outcome, day_rows)
    state.ingested.add(outcome.content_hash)
    for row in day_rows:
        state.days[(row["security"], row["date"])] = StoredDay(
            row["content_hash"], row["rows"], row["revision"]
        )
    return outcome, marker


def _store_days(
    dropped: DropFile, root: Path, marker: Marker, state: HistoryState, outcome: FileOutcome
) -> tuple[Marker, list[dict], FileOutcome]:
    """Write the days of a read file that differ from the stored ones; their catalog rows."""
    rows, counts, dates = [], dict(new=0, revised=0, unchanged=0), []
    for security, table in dropped.tables.items():
        marker, stem = _stem(root, marker, security)
        for day, day_rows in split_by_day(table):
            dates.append(day)
            row = _store_day(root, stem, security, day, day_rows, state.days.get((security, day)))
            kind = "unchanged" if row is None else "new" if row["revision"] == 1 else "revised"
            counts[kind] += 1
            rows += [row] if row else []
    warnings = [row["warning"] for row in rows if row["warning"]]
    errors = [f"sheet {sheet!r}: {message}" for sheet, message in dropped.errors.items()]
    outcome = replace(
        outcome,
        status=("partial" if errors else "ingested") if dropped.tables else "failed",
        sheets=dropped.sheets,
        rows=sum(t.num_rows for t in dropped.tables.values()),
        rows_dropped=dropped.rows_dropped,
        first_date=min(dates, default=None),
        last_date=max(dates, default=None),
        error="; ".join(errors) or None,
        days_new=counts["new"],
        days_revised=counts["revised"],
        days_unchanged=counts["unchanged"],
        warnings=tuple(warnings),
    )
    return marker, rows, outcome


def _store_day(
    root: Path, stem: str, security: str, day: dt.date, rows: pa.Table, current: StoredDay | None
) -> dict | None:
    """Write one day unless it hashes like the stored one; its catalog row (None: unchanged)."""
    content_hash = day_hash(rows)
    if current is not None and current.content_hash == content_hash:
        return None
    write_day(day_path(root, stem, day), security, day, rows, content_hash)
    return dict(
        security=security,
        date=day,
        rows=rows.num_rows,
        content_hash=content_hash,
        revision=(current.revision + 1) if current else 1,
        warning=_fewer_rows(security, day, current, rows.num_rows),
    )


def _fewer_rows(security: str, day: dt.date, current: StoredDay | None, rows: int) -> str | None:
    """The warning for a day replaced by fewer rows than it had."""
    if current is None or rows >= current.rows:
        return None
    return (
        f"{security} {day}: revision {current.revision + 1} has {rows:,} rows, fewer than the "
        f"{current.rows:,} of revision {current.revision}"
    )


def _record(
    writer: _CatalogWriter, marker: Marker, outcome: FileOutcome, day_rows: list[dict]
) -> None:
    """The file's catalog rows, in one transaction."""
    at = now()
    file_row = {
        name: getattr(outcome, name)
        for name in (
            "path",
            "content_hash",
            "size",
            "sheets",
            "rows",
            "rows_dropped",
            "first_date",
            "last_date",
            "status",
            "error",
            "days_new",
            "days_revised",
            "days_unchanged",
        )
    }
    file_row.update(history_id=marker.history_id, ingested_at=at)
    days = [
        row
        | dict(
            history_id=marker.history_id,
            source_file=outcome.path,
            source_hash=outcome.content_hash,
            ingested_at=at,
        )
        for row in day_rows
    ]
    writer.run(lambda con: record_file(con, file_row, days))


def _stem(root: Path, marker: Marker, security: str) -> tuple[Marker, str]:
    """The security's file stem; a new security gets a safe, unused one, saved in the marker
    before any of its files is written."""
    if security in marker.securities:
        return marker, marker.securities[security]
    taken = {stem.lower() for stem in marker.securities.values()}
    stem = safe_stem(security)
    for length in (8, 16, 64):
        if stem.lower() not in taken:
            break
        digest = hashlib.sha256(security.encode("utf-8", "surrogatepass")).hexdigest()[:length]
        stem = f"{safe_stem(security)[: MAX_STEM - length - 1]}-{digest}"
    marker = Marker(marker.history_id, {**marker.securities, security: stem})
    write_marker(root, marker)
    return marker, stem
