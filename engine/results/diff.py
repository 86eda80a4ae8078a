"""The nightly regression diff: a run's daily figures against the previous nightly run's, per
security and date, each difference with its likely cause; and the markdown a night publishes.

Pure: no store, no Prefect. Statuses, in the order they are decided for a day:

* `new`: the previous run did not have the day (or there is no previous run);
* `missing`: the previous run had the day, this one has no result for it (it failed, or the day
  is gone from the data);
* `data_revised`: the day's own content hash differs from the one the previous run used
  (`revised_from` = the day itself); or, for a day whose figures changed, an earlier day of the
  same security changed, appeared or disappeared: positions, quotes and timers carry over days
  (SPEC §3.1-3.2), so a change spreads forward (`revised_from` = the first such day);
* `unchanged`: realized P&L, trade count and net P&L equal to the last bit;
* `config_changed`, `code_changed`: same data, and the config hash (or else the code version)
  differs;
* `unexplained`: same data, code and config, different figures: an alarm, as is `missing`.

Net P&L is realized P&L less fees (equal to realized P&L for runs without fees).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

STATUSES = (
    "new",
    "unchanged",
    "data_revised",
    "code_changed",
    "config_changed",
    "unexplained",
    "missing",
)
ALARMS = ("unexplained", "missing")
CHANGED = ("data_revised", "code_changed", "config_changed", "unexplained", "missing")
MAX_ROWS = 200  # changed days listed per strategy in the markdown; the store has them all

Key = tuple[str, dt.date]  # (security, date)


@dataclass(frozen=True)
class DayFigures:
    """What is compared for one security and date."""

    realized_pnl: float = 0.0
    trades: int = 0
    net_pnl: float = 0.0  # realized P&L less fees (realized P&L where there are none)

    def same_as(self, other: DayFigures) -> bool:
        """Equal to the last bit (0.0 and -0.0 alike)."""
        return self.trades == other.trades and all(
            _bits(a) == _bits(b)
            for a, b in ((self.realized_pnl, other.realized_pnl), (self.net_pnl, other.net_pnl))
        )


ZERO = DayFigures()


def _bits(value: float) -> bytes:
    return struct.pack("<d", float(value) + 0.0)


@dataclass(frozen=True)
class RunDays:
    """One run as the diff sees it: lineage, the days it has results for, their figures."""

    run_id: str
    code_version: str
    config_hash: str
    data_hash: str
    days: Mapping[Key, str | None]  # day -> its content hash (None: not known, not a history)
    figures: Mapping[Key, DayFigures]  # days with fills; the other days of `days` are ZERO

    def figures_of(self, key: Key) -> DayFigures:
        """The day's figures (zero on a day without fills)."""
        return self.figures.get(key, ZERO)


@dataclass(frozen=True)
class DayDiff:
    """The verdict on one security and date."""

    security: str
    date: dt.date
    status: str
    reason: str
    revised_from: dt.date | None = None
    before: DayFigures | None = None
    after: DayFigures | None = None


def diff_runs(before: RunDays | None, after: RunDays) -> list[DayDiff]:
    """Every day of either run, by security and date, with its status (module docstring)."""
    keys = sorted(set(after.days) | set(before.days if before else ()))
    changes = _data_changes(before, after) if before else {}
    return [_classify(key, before, after, changes.get(key[0], ())) for key in keys]


def _data_changes(before: RunDays, after: RunDays) -> dict[str, list[dt.date]]:
    """Security -> its dates (ascending) whose data differs: hashes differ, or in one run only."""
    out: dict[str, list[dt.date]] = {}
    for key in sorted(set(before.days) | set(after.days)):
        old, new = before.days.get(key, "absent"), after.days.get(key, "absent")
        if old != new and old is not None and new is not None:
            out.setdefault(key[0], []).append(key[1])
    return out


def _classify(
    key: Key, before: RunDays | None, after: RunDays, changed_dates: Sequence[dt.date]
) -> DayDiff:
    """The status of one day (the order of the module docstring)."""
    security, day = key
    if before is None or key not in before.days:
        reason = "no previous nightly run" if before is None else "a day the previous run lacked"
        return DayDiff(security, day, "new", reason, after=after.figures_of(key))
    old = before.figures_of(key)
    if key not in after.days:
        reason = "the previous run has this day; this run has no result for it"
        return DayDiff(security, day, "missing", reason, before=old)
    new = after.figures_of(key)
    status, reason, revised_from = _cause(key, before, after, old, new, changed_dates)
    return DayDiff(security, day, status, reason, revised_from, old, new)


def _cause(
    key: Key,
    before: RunDays,
    after: RunDays,
    old: DayFigures,
    new: DayFigures,
    changed_dates: Sequence[dt.date],
) -> tuple[str, str, dt.date | None]:
    """(status, reason, revised_from) of a day both runs have."""
    day = key[1]
    old_hash, new_hash = before.days[key], after.days[key]
    if old_hash and new_hash and old_hash != new_hash:
        same = " (figures unchanged)" if old.same_as(new) else ""
        return "data_revised", f"the day's data was revised{same}", day
    if old.same_as(new):
        return "unchanged", "", None
    earlier = [d for d in changed_dates if d < day]
    if earlier:
        return (
            "data_revised",
            f"follows the revised day {earlier[0]} (state carries over)",
            earlier[0],
        )
    if (old_hash is None or new_hash is None) and before.data_hash != after.data_hash:
        return "data_revised", "the data changed (no per-day hashes: not a tick history)", None
    if before.config_hash != after.config_hash:
        return "config_changed", f"config {before.config_hash} -> {after.config_hash}", None
    if before.code_version != after.code_version:
        return "code_changed", f"code {before.code_version} -> {after.code_version}", None
    return "unexplained", "same data, code and config, different figures: investigate", None


def status_counts(diffs: Iterable[DayDiff]) -> dict[str, int]:
    """Days per status, every status listed (in STATUSES order)."""
    found = Counter(d.status for d in diffs)
    return {status: found.get(status, 0) for status in STATUSES}


# ---- the night's markdown -----------------------------------------------------------------------


@dataclass(frozen=True)
class StrategyNight:
    """One strategy's part of a night: its run, the run it was compared with, the verdicts."""

    strategy: str
    run_id: str | None
    previous_run_id: str | None
    status: str  # the run's status (completed, partial, failed), or "failed" without a run
    error: str = ""  # why the run failed, or its failed securities
    diffs: tuple[DayDiff, ...] = field(default=())

    @property
    def alarms(self) -> list[DayDiff]:
        """The unexplained and missing days."""
        return [d for d in self.diffs if d.status in ALARMS]


def render_night(header: Sequence[str], strategies: Sequence[StrategyNight]) -> str:
    """The night's markdown: `header` lines, then per strategy the counts per status, the latest
    day's P&L per security and every changed day with its reason (MAX_ROWS at most)."""
    lines = list(header)
    for night in strategies:
        lines += ["", *_strategy_lines(night)]
    return "\n".join(lines) + "\n"


def _strategy_lines(night: StrategyNight) -> list[str]:
    compared = f" vs previous {night.previous_run_id}" if night.previous_run_id else ""
    run = f"run {night.run_id}{compared}" if night.run_id else "no run"
    lines = [f"### {night.strategy}: {run} ({night.status})"]
    if night.error:
        lines += ["", f"**Failed:** {_cell(night.error)}"]
    if not night.diffs:
        return lines
    counts = status_counts(night.diffs)
    lines += ["", "| " + " | ".join(STATUSES) + " |", "|" + "---:|" * len(STATUSES)]
    lines += ["| " + " | ".join(str(counts[s]) for s in STATUSES) + " |"]
    return lines + _latest_day_lines(night.diffs) + _changed_lines(night)


def _latest_day_lines(diffs: Sequence[DayDiff]) -> list[str]:
    """The latest day's figures per security (basis: that one trading day)."""
    dated = [d for d in diffs if d.after is not None]
    if not dated:
        return []
    latest = max(d.date for d in dated)
    lines = ["", f"#### P&L of the latest day, {latest}, per security", ""]
    lines += ["| security | realized P&L | trades | net P&L | status |", "|---|---:|---:|---:|---|"]
    for d in (d for d in dated if d.date == latest):
        after = d.after
        lines.append(
            f"| {_cell(d.security)} | {after.realized_pnl:,.2f} | {after.trades} | "
            f"{after.net_pnl:,.2f} | {d.status} |"
        )
    return lines


def _changed_lines(night: StrategyNight) -> list[str]:
    """Every changed day with its reason, alarms first."""
    changed = [d for d in night.diffs if d.status in CHANGED]
    if not changed:
        return ["", "No day changed."]
    changed.sort(key=lambda d: (d.status not in ALARMS, d.security, d.date))
    lines = ["", f"#### Changed days ({len(changed)})", ""]
    lines += [
        "| security | date | status | realized P&L before -> after | trades | net P&L | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in changed[:MAX_ROWS]:
        realized = _change(d, "realized_pnl")
        trades, net = _change(d, "trades"), _change(d, "net_pnl")
        lines.append(
            f"| {_cell(d.security)} | {d.date} | **{d.status}** | {realized} | {trades} | "
            f"{net} | {_cell(d.reason)} |"
        )
    if len(changed) > MAX_ROWS:
        lines.append(
            f"\n{len(changed) - MAX_ROWS} more: `SELECT * FROM nightly_diffs WHERE run_id = "
            f"'{night.run_id}' AND status <> 'unchanged'`"
        )
    return lines


def _change(diff: DayDiff, name: str) -> str:
    """`before -> after` of one figure; full precision when they agree to the cent only."""
    old = None if diff.before is None else getattr(diff.before, name)
    new = None if diff.after is None else getattr(diff.after, name)
    text = [_number(v) for v in (old, new)]
    if old is not None and new is not None and old != new and text[0] == text[1]:
        text = [repr(float(old)), repr(float(new))]
    return " -> ".join(text)


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (one line, no pipes)."""
    return " ".join(str(text).split()).replace("|", "\\|")[:300]
