"""The `nightly` flow: ingest the drop folder into the tick history, backtest each strategy over
the full history (the `backtest` flow as a subflow each, one after the other, so one writer at a
time), diff each run against the previous night's run of the same strategy on the same history,
publish the diff (markdown artifact `nightly-diff`), and notify when something needs a person: a
failure, an `unexplained` change or a `missing` day. A strategy that fails does not stop the
others. Without a history (`history=None`) it backtests `data` as it is, with the same diff
(whole-run data hashes only). Orchestration only: the work is in tasks/nightly.py.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from engine import settings
from engine.data.days import read_marker
from engine.results.compare import FIGURE_BASIS
from engine.results.diff import StrategyNight, render_night, status_counts
from engine.results.store.catalog import now
from engine.run import RunSummary, new_run_id, outcome
from engine.sim import strategies as registry
from flows import liveness
from flows.backtest import backtest
from flows.fanout import all_failed
from tasks.nightly import compare_run, ingest_drop, read_history_days, send_notification

MAX_LISTED = 10  # days named per alarm in a notification


def _outcome(state) -> tuple[RunSummary | None, str]:
    """The backtest subflow's summary (also of a run whose securities all failed), or its error."""
    result = outcome(state)  # also the summary of a run whose securities all failed
    if isinstance(result, RunSummary):
        return result, ""
    return None, f"{type(result).__name__}: {result}"


def _row(name: str, summary: RunSummary | None, error: str) -> dict:
    """One line of the nightly summary table."""
    if summary is None:
        return dict(
            strategy=name,
            run_id=None,
            status="failed",
            trades=None,
            total_pnl=None,
            sharpe_ratio=None,
            error=error,
        )
    return dict(
        strategy=name,
        run_id=summary.run_id,
        status=summary.status,
        trades=summary.portfolio.trades,
        total_pnl=round(summary.portfolio.total_pnl, 2),
        sharpe_ratio=round(summary.portfolio.sharpe_ratio, 2),
        error="; ".join(f"{s}: {e}" for s, e in summary.failed.items()),
    )


def _ingest(drop: str | None, history: str | None, store: str) -> tuple[object, str]:
    """Run the ingest when a drop folder is set: (its IngestReport or None, an error)."""
    if not drop:
        return None, ""
    if not history:
        return None, f"drop folder {drop} is set but no history to ingest it into"
    state = ingest_drop(drop, history, store, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        return None, f"ingest of {drop} failed: {type(result).__name__}: {result}"
    return result, ""


def _days(data: str, securities, max_sheets) -> tuple[object, str]:
    """(the history's (data hash, day hashes) or None when `data` is no history, an error)."""
    state = read_history_days(data, securities, max_sheets, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        return None, f"{type(result).__name__}: {result}"
    return result, ""


def _strategy(name: str, source: str, days, night: dict, store: str, options: dict):
    """Backtest one strategy (a subflow) and compare its run; (table row, StrategyNight)."""
    state = backtest(data=source, strategy=name, store=store, return_state=True, **options)
    summary, error = _outcome(state)
    if summary is not None and days is not None and summary.data_hash != days[0]:
        error = "the history changed while the run read it; run the nightly again"
        summary_for_diff = None
    else:
        summary_for_diff = summary
    row = _row(name, summary, error)
    compared = compare_run(
        store,
        night | dict(strategy=name),
        summary_for_diff,
        None if days is None else days[1],
        error,
        return_state=True,
    )
    verdict = compared.result(raise_on_failure=False)
    if isinstance(verdict, BaseException):
        run_id = summary.run_id if summary else None
        reason = f"not compared: {type(verdict).__name__}: {verdict}"
        verdict = StrategyNight(name, run_id, None, row["status"], f"{error} {reason}".strip())
    return row, verdict


def _problems(ingested, errors: list[str], nights: list[StrategyNight]) -> list[str]:
    """What a person must look at: failures, unexplained changes, missing days."""
    found = list(errors)
    if ingested is not None:
        found += [f"file {f.path} {f.status}: {f.error}" for f in ingested.problems]
    for night in nights:
        if night.error:
            found.append(f"{night.strategy}: {night.status}: {night.error}")
        for status in ("unexplained", "missing"):
            days = [d for d in night.diffs if d.status == status]
            if days:
                named = ", ".join(f"{d.security} {d.date}" for d in days[:MAX_LISTED])
                more = f" and {len(days) - MAX_LISTED} more" if len(days) > MAX_LISTED else ""
                found.append(f"{night.strategy}: {len(days)} {status} day(s): {named}{more}")
    return found


def _header(night: dict, source: str, history: str | None, ingested, problems) -> list[str]:
    """The markdown's opening: the night, its data, the ingest, and the alarms (if any)."""
    kind = "tick history" if history else "data"
    lines = [f"## Nightly run {night['night_id']}", "", f"Backtested the {kind} `{source}`."]
    if ingested is not None:
        lines += ["", *ingested.lines()]
    if problems:
        lines += ["", f"**Alarms ({len(problems)})**", ""]
        lines += [f"- {' '.join(p.split())[:500]}" for p in problems]
    return lines


def _notify(url: str | None, night: dict, problems: list[str], store: str) -> str:
    """Send one message when there are problems; what happened, as a line for the artifact."""
    if not problems:
        return "Notification: none needed."
    if not url:
        return "Notification: **not sent** (no `notify` URL configured); see the alarms above."
    where = flow_run.ui_url or f"flow run {night['flow_run_id']}"
    body = "\n".join(
        [
            *(f"- {p}" for p in problems),
            "",
            f"The diff: artifact nightly-diff of {where}",
            f"In the store {store}: SELECT * FROM v_nightly_summary WHERE night_id = "
            f"'{night['night_id']}'",
        ]
    )
    title = f"mmflow nightly {night['night_id']}: {len(problems)} problem(s)"
    state = send_notification(url, title, body, return_state=True)
    sent = state.result(raise_on_failure=False)
    if isinstance(sent, BaseException):
        get_run_logger().error("the notification could not be sent: %s", sent)
        return f"Notification: **failed** ({type(sent).__name__}: {sent})."
    return f"Notification: sent to {sent}."


@flow(name="nightly", **liveness.HOOKS)
def nightly(
    data: str = str(settings.DEFAULT_DATA),
    strategies: list[str] | None = None,
    store: str | None = None,
    drop: str | None = None,
    history: str | None = None,
    notify: str | None = None,
    config: str | None = None,
    overrides: dict[str, float] | None = None,
    securities: list[str] | None = None,
    max_sheets: int | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict:
    """Ingest `drop` into `history`, backtest each of `strategies` over the history (else over
    `data`), diff, publish and notify; returns the night's report (one row per strategy)."""
    liveness.record(flow_run.get_id())
    names = list(strategies or [settings.DEFAULT_STRATEGY])
    for name in names:
        registry.get(name)  # unknown names fail before any work, with a "did you mean"
    target = settings.store_path(store)
    night = dict(night_id=new_run_id(), flow_run_id=str(flow_run.get_id()), started_at=now())
    ingested, ingest_error = _ingest(drop, history, target)
    source = history or data
    days, days_error = _days(source, securities, max_sheets)
    night["source"] = _source_key(source, days)
    options = dict(
        config=config,
        overrides=overrides,
        securities=securities,
        max_sheets=max_sheets,
        dask_address=dask_address,
        workers=workers,
    )
    done = [_strategy(name, source, days, night, target, options) for name in names]
    rows, nights = [row for row, _ in done], [verdict for _, verdict in done]
    problems = _problems(ingested, [e for e in (ingest_error, days_error) if e], nights)
    return _publish(night, source, history, target, ingested, rows, nights, problems, notify)


def _source_key(source: str, days) -> str:
    """What makes two nights comparable: the history's id, or the data's absolute path."""
    if days is not None:
        return read_marker(source).history_id
    return str(Path(source).expanduser().absolute())


def _publish(night, source, history, store, ingested, rows, nights, problems, notify) -> dict:
    """Artifacts, the notification, and the flow's result (Failed when a strategy failed)."""
    header = _header(night, source, history, ingested, problems)
    notified = _notify(notify, night, problems, store)
    markdown = render_night([*header, "", notified], nights)
    create_markdown_artifact(
        key="nightly-diff", markdown=markdown, description=f"Nightly {night['night_id']}"
    )
    create_table_artifact(
        key="nightly-summary",
        table=rows,
        description=f"Nightly backtests of {source}. {FIGURE_BASIS}",
    )
    get_run_logger().info("night %s: %d problem(s); %s", night["night_id"], len(problems), notified)
    report = dict(
        night_id=night["night_id"],
        data=source,
        store=store,
        runs=rows,
        diffs={n.strategy: status_counts(n.diffs) for n in nights},
        problems=problems,
        notification=notified,
        markdown=markdown,
        ingest=None if ingested is None else _ingest_counts(ingested),
    )
    failed = [r["strategy"] for r in rows if r["status"] in (None, "failed")]
    if failed:
        return all_failed(f"{len(failed)} of {len(rows)} strategies failed: {failed}", report)
    return report


def _ingest_counts(ingested) -> dict:
    statuses = ("ingested", "partial", "skipped", "failed")
    return {status: ingested.count(status) for status in statuses} | {"warnings": ingested.warnings}
