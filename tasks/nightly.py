"""Prefect tasks of the nightly flow: thin verbs over the engine. Ingest the drop folder, read the
history's day hashes, compare a run with the previous night's (and record both), and notify.

Store writes hold the `mmflow-store` slot, like every other writer (tasks/backtest.py).
Notifications go through apprise (any apprise URL: `json://`, `mailto://`, `slack://`, ...) or,
for `http(s)://` URLs, as a plain JSON POST (`{"title", "message", "type"}`).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from engine.data.days import is_history
from engine.data.history import FileOutcome, IngestReport, ingest
from engine.data.source import open_data
from engine.results.diff import StrategyNight, diff_runs
from engine.results.store import catalog
from engine.run import RunSummary
from tasks.backtest import store_slot, worth_retrying

NOTIFY_TIMEOUT = 20  # seconds for a webhook to answer


@task(
    name="ingest-drop",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=worth_retrying,
    cache_policy=NO_CACHE,
)
def ingest_drop(drop: str, history: str, store: str) -> IngestReport:
    """Ingest every new file of the drop folder into the history; one log line per file."""
    logger = get_run_logger()

    def log(outcome: FileOutcome) -> None:
        days = f"{outcome.days_new} new, {outcome.days_revised} revised day(s)"
        if outcome.status in ("failed", "partial"):
            logger.warning("%s %s: %s", outcome.status.upper(), outcome.path, outcome.error)
        elif outcome.status == "ingested":
            logger.info("ingested %s: %s", outcome.path, days)
        for warning in outcome.warnings:
            logger.warning("%s", warning)

    return ingest(drop, history, store, hold=store_slot, on_file=log)


@task(name="read-history-days", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_history_days(
    data: str, securities: list[str] | None = None, max_sheets: int | None = None
) -> tuple[str, dict[tuple[str, dt.date], str]] | None:
    """The data hash and (security, date) -> day hash of the history a run will read, chosen as
    the backtest chooses; None when `data` is not a tick history."""
    if not is_history(data):
        return None
    source = open_data(data, securities=securities, max_sheets=max_sheets)
    return source.content_hash, source.day_hashes()


@task(name="compare-run", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def compare_run(
    store: str,
    night: dict,
    summary: RunSummary | None,
    days: dict[tuple[str, dt.date], str] | None,
    error: str = "",
) -> StrategyNight:
    """Diff a nightly run against the previous night's run of its strategy on the same data and
    record the night (run, days used, diff); a strategy without a run is recorded as failed."""
    strategy = night["strategy"]
    if summary is None:
        with store_slot():
            catalog.record_night(store, night | dict(status="failed", error=error), {}, [])
        return StrategyNight(strategy, None, None, "failed", error)
    previous = catalog.previous_nightly_run(store, strategy, night["source"], night["night_id"])
    ok = {row["security"] for row in summary.securities}
    used = None if days is None else {k: h for k, h in days.items() if k[0] in ok}
    after = catalog.read_run_days(store, summary.run_id, used)
    before = catalog.read_run_days(store, previous) if previous else None
    diffs = diff_runs(before, after)
    failed = "; ".join(f"{s}: {e.splitlines()[0]}" for s, e in summary.failed.items())
    row = night | dict(
        run_id=summary.run_id, previous_run_id=previous, status=summary.status, error=failed or None
    )
    with store_slot():
        catalog.record_night(store, row, used or {}, diffs)
    return StrategyNight(strategy, summary.run_id, previous, summary.status, failed, tuple(diffs))


@task(name="send-notification", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def send_notification(url: str, title: str, body: str) -> str:
    """Send one message to `url`; returns where it went (scheme and host only: URLs may hold
    tokens). Raises when it could not be delivered."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("http", "https"):
        _post_json(url, {"title": title, "message": body, "type": "failure"})
    else:
        import apprise

        sender = apprise.Apprise()
        if not sender.add(url):
            raise ValueError(f"apprise does not understand the notification URL ({scheme}://...)")
        if not sender.notify(title=title, body=body, notify_type=apprise.NotifyType.FAILURE):
            raise OSError(f"the {scheme}:// notification was not delivered (see the log above)")
    return f"{scheme}://{url.split('://', 1)[1].split('/', 1)[0].rsplit('@', 1)[-1]}"


def _post_json(url: str, body: dict) -> None:
    """POST `body` as JSON; an HTTP error status raises."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT) as response:
        response.read()
