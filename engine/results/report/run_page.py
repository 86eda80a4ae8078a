"""The sections of a run's report and its markdown headline, rendered from the `Run` in memory.

P&L has three names with one meaning each: Realized P&L (closed round trips), Unrealized P&L
(the open position at the last in-window trade price) and Total P&L (realized + unrealized).
Every Sharpe and drawdown says its basis where it is shown (SPEC §5.3, §0).
"""

from __future__ import annotations

from engine.results.report.columns import columns
from engine.results.report.markup import (
    DRAWDOWN_PCT,
    anchor,
    basis_html,
    caveat,
    days_basis,
    esc,
    integer,
    missing,
    money,
    naive_utc,
    overrides_label,
    pct,
    plain,
    ratio,
    table,
    time_utc,
    tone,
)
from engine.run import Run


def run_header(run: Run) -> str:
    """Eyebrow, strategy with its status badge, run id, security count and data source."""
    status = esc(run.status)
    securities = len(run.results) + len(run.failures)
    return (
        f'<header><div class="eyebrow">mmflow {esc(run.kind)} report</div>'
        f'<h1>{esc(run.strategy)} <span class="badge {status}">{status}</span></h1>'
        f'<div class="sub">run <code>{esc(run.run_id)}</code> · '
        f"{securities} securities · {esc(run.data_source)}</div></header>"
    )


def kpis(run: Run) -> str:
    """The portfolio's figures as cards: Realized and Total P&L first, bases under the ratios."""
    p = run.portfolio
    daily = basis_html(p.days)
    cards = [
        ("Realized P&amp;L", money(p.realized_pnl), tone(p.realized_pnl), ""),
        ("Total P&amp;L", money(p.total_pnl), tone(p.total_pnl), "realized + unrealized"),
        ("Net P&amp;L", money(p.net_pnl), tone(p.net_pnl), f"realized − fees ({money(p.fees)})"),
        ("Edge", _bps(p.edge_bps), "", "bps of notional, at the print (A6)"),
        ("Markout 60 s", _bps(p.markout_bps_60), "", "bps of notional (A6)"),
        ("Two-sided uptime", pct(100 * p.uptime_two_sided), "", "time-weighted (A7)"),
        ("Sharpe", ratio(p.sharpe_ratio), "", daily),
        (
            "Max drawdown",
            f"{money(p.max_drawdown)} <small>{pct(p.max_drawdown_pct)}</small>",
            "",
            daily,
        ),
        ("Calmar", ratio(p.calmar_ratio), "", "realized P&amp;L / |max drawdown|"),
        ("Win rate", pct(p.win_rate), "", "fills with realized P&amp;L &gt; 0"),
        ("Profit factor", ratio(p.profit_factor), "", ""),
        ("Trades", integer(run.trades), "", ""),
        ("Securities", _securities(run), "", ""),
    ]
    items = "".join(
        f'<div class="kpi"><div class="label">{label}</div><div class="value{css}">{value}</div>'
        + (f'<div class="basis">{basis}</div>' if basis else "")
        + "</div>"
        for label, value, css, basis in cards
    )
    note = (
        f'<p class="note">Portfolio: all securities on the combined daily realized P&amp;L curve '
        f"({esc(days_basis(p.days))}). Max drawdown %: {esc(DRAWDOWN_PCT)}.</p>"
    )
    return f'<section class="kpis">{items}</section>{note}'


def _bps(value) -> str:
    return "–" if missing(value) else f"{float(value):,.2f} <small>bps</small>"


def _securities(run: Run) -> str:
    ok, failed = len(run.results), len(run.failures)
    text = f"{ok} <small>of {ok + failed}</small>"
    return text + (f' <small class="neg">{failed} failed</small>' if failed else "")


def security_note(row: dict) -> str:
    """The headline figures of one security beside its name, each ratio with its basis."""
    return (
        f"Total P&amp;L {money(row['total_pnl'])} · {integer(row['trades'])} trades · "
        f"Sharpe {ratio(row['sharpe_ratio'])} ({basis_html(row['days'])}) · "
        f"max DD {money(row['max_drawdown'])} (per fill) · "
        f"final position {integer(row['final_position'])}"
    )


_FAILURE_COLUMNS = (
    ("Security", "security", esc, "text"),
    ("Error", "error_type", esc, "text"),
    ("Attempts", "attempts", integer, "num"),
    ("Message", "message", lambda m: f"<pre>{esc(m)}</pre>", "text"),
)


def failures_section(failures: list[dict]) -> str:
    """The failed securities with their errors, or '' when none failed."""
    if not failures:
        return ""
    noun = "security" if len(failures) == 1 else "securities"
    return (
        f'<section class="failures"><h2>{len(failures)} failed {noun}</h2>'
        f"{table(failures, _FAILURE_COLUMNS)}</section>"
    )


def lineage_section(run: Run, summary: list[dict]) -> str:
    """Parameters, data, code (version, git commit) and times of the run."""
    params = run.params or {}
    overrides = params.get("overrides") or {}
    started, finished = naive_utc(run.started_at), naive_utc(run.finished_at)
    duration = f"{(finished - started).total_seconds():,.1f} s" if started and finished else "–"
    commit = None
    if run.git_commit:
        commit = run.git_commit + (" (dirty)" if run.git_dirty else "")
    items = [
        ("Strategy", run.strategy),
        ("Config", params.get("config") or "defaults"),
        ("Overrides", overrides_label(overrides) if overrides else "none"),
        ("Config hash", run.config_hash),
        ("Data source", run.data_source),
        ("Data hash", run.data_hash),
        ("Code version", run.code_version),
        ("Git commit", commit),
        ("Started", time_utc(started)),
        ("Finished", f"{time_utc(finished)} ({duration})"),
        ("Sweep", run.sweep_id),
        ("Prefect flow run", run.flow_run_id),
    ]
    rows = "".join(
        f"<dt>{k}</dt><dd><code>{esc(v)}</code></dd>" for k, v in items if not missing(v)
    )
    return (
        f'<section class="card"><h2>Parameters and lineage</h2><dl>{rows}</dl>'
        f"{_resolved_params(summary)}</section>"
    )


def _resolved_params(summary: list[dict]) -> str:
    """The parameters resolved per security, as a collapsible table (differing values marked)."""
    if not summary:
        return ""
    names = sorted({name for row in summary for name in row["params"]})
    head = "".join(f"<th class='num'>{esc(row['security'])}</th>" for row in summary)
    rows = []
    for name in names:
        values = [plain(row["params"].get(name)) for row in summary]
        differs = " class='differs'" if len(set(values)) > 1 else ""
        cells = "".join(f"<td class='num'>{esc(v)}</td>" for v in values)
        rows.append(f"<tr{differs}><td>{esc(name)}</td>{cells}</tr>")
    return (
        "<details><summary>Resolved parameters per security</summary><div class='scroll'>"
        f"<table><thead><tr><th>Parameter</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div></details>"
    )


class _Total(str):
    """The label of a table's total row (not a security, so not a link)."""


def _security_link(security: str) -> str:
    if isinstance(security, _Total):
        return esc(security)
    return f"<a href='#{anchor(security)}'>{esc(security)}</a>"


_SUMMARY_COLUMNS = columns(
    "security",
    "trades",
    "volume",
    "final_position",
    "realized_pnl",
    "unrealized_pnl",
    "total_pnl",
    "avg_pnl_per_trade",
    "sharpe",
    "days",
    "max_drawdown",
    "max_drawdown_pct",
    "win_rate",
    "profit_factor",
    security=_security_link,
)


def summary_section(run: Run, summary: list[dict]) -> str:
    """One row per security and a Portfolio row, with the basis of every ratio underneath."""
    records = [{**row, "sharpe": (row["sharpe_ratio"], row["days"])} for row in summary]
    records.append(_total_row(run, summary))
    last = len(records) - 1
    rows = table(records, _SUMMARY_COLUMNS, lambda i, _: "total" if i == last else "")
    few = any(caveat(record["days"]) for record in records)
    marker = f"; <span class='caveat'>indicative</span> marks {esc(caveat(0))}" if few else ""
    return (
        f'<section class="card"><h2>Summary by security</h2>{rows}<p class="note">P&amp;L in '
        "the securities' currency; Total P&amp;L = Realized + Unrealized P&amp;L. Sharpe: "
        f"daily, over the row's Days (dates with fills){marker}. Max DD of a security: its "
        "running realized P&amp;L, per fill. The Portfolio row sums trades, volume and "
        "P&amp;L; its Sharpe and Max DD use the combined daily curve "
        f"({esc(days_basis(run.portfolio.days))}). Win rate and profit factor per SPEC §5.3."
        "</p></section>"
    )


def _total_row(run: Run, summary: list[dict]) -> dict:
    """Sums where a sum means something; portfolio statistics from `run.portfolio`."""
    p = run.portfolio
    total = {key: None for _, key, _, _ in _SUMMARY_COLUMNS}
    total.update(
        security=_Total("Portfolio"),
        trades=sum(int(row["trades"]) for row in summary),
        volume=sum(int(row["volume"]) for row in summary),
        realized_pnl=p.realized_pnl,
        unrealized_pnl=p.unrealized_pnl,
        total_pnl=p.total_pnl,
        sharpe=(p.sharpe_ratio, p.days),
        days=p.days,
        max_drawdown=p.max_drawdown,
        max_drawdown_pct=p.max_drawdown_pct,
        win_rate=p.win_rate,
        profit_factor=p.profit_factor,
    )
    if total["trades"]:
        total["avg_pnl_per_trade"] = p.realized_pnl / total["trades"]
    return total


def headline(run: Run, report) -> str:
    """Markdown headline of a run: portfolio figures with their basis, best and worst security
    by Total P&L, the report's path."""
    p = run.portfolio
    warning = caveat(p.days)
    lines = [
        f"### Run `{run.run_id}` · {run.strategy} · {run.status}",
        "",
        "| Realized P&L | Total P&L | Sharpe | Max drawdown | Trades | Securities |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {money(p.realized_pnl)} | {money(p.total_pnl)} | {ratio(p.sharpe_ratio)} | "
        f"{money(p.max_drawdown)} ({pct(p.max_drawdown_pct)}) | {integer(run.trades)} | "
        f"{len(run.results)} ok, {len(run.failures)} failed |",
        "",
        f"Sharpe and max drawdown: {days_basis(p.days)}, on the combined daily realized P&L "
        f"curve{f' (**{warning}**)' if warning else ''}; max drawdown %: {DRAWDOWN_PCT}. "
        "Total P&L = realized + unrealized.",
    ]
    if run.results:
        ranked = sorted(run.results, key=lambda r: (-r.summary["total_pnl"], r.security))
        best, worst = ranked[0], ranked[-1]
        lines += [
            "",
            f"Best: **{best.security}** {money(best.summary['total_pnl'])}; "
            f"worst: **{worst.security}** {money(worst.summary['total_pnl'])} (Total P&L).",
        ]
    lines += ["", f"Report: `{report}`" if report else "Report: not written (see the logs)."]
    return "\n".join(lines)
