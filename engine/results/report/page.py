"""The report's HTML: header, tables, sections and the page around the figures."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from engine.results.report.figures import PLOT_CONFIG

# ---- HTML pieces ------------------------------------------------------------------------------


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _int(value) -> str:
    return "–" if _missing(value) else f"{int(value):,}"


def _money(value) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}"


def _ratio(value) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}"


def _pct(value) -> str:
    return "–" if _missing(value) else f"{float(value):.1f}%"


def _tone(value) -> str:
    """' pos' / ' neg' by sign (P&L is coloured), '' for zero or missing."""
    return "" if _missing(value) or value == 0 else (" pos" if value > 0 else " neg")


def _table(
    records: list[dict], columns, row_class: Callable[[int, dict], str] | None = None
) -> str:
    """An HTML table; columns are (header, key, format to HTML, kind: 'text' | 'num' | 'signed')."""
    head = "".join(
        f"<th{' class=num' if kind != 'text' else ''}>{header}</th>"
        for header, _, _, kind in columns
    )
    rows = []
    for i, record in enumerate(records):
        cells = "".join(
            f"<td class='{'' if kind == 'text' else 'num'}{_tone(record[key]) if kind == 'signed' else ''}'>"
            f"{fmt(record[key])}</td>"
            for _, key, fmt, kind in columns
        )
        css = row_class(i, record) if row_class else ""
        rows.append(f"<tr class='{css}'>{cells}</tr>" if css else f"<tr>{cells}</tr>")
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _time(value) -> str:
    return "–" if _missing(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M:%S} UTC"


def _sort_key(key: str, value) -> tuple:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return key, float(value) if number else math.inf, str(value)


def _overrides_label(overrides: dict) -> str:
    return (
        ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(overrides.items())
        )
        or "defaults"
    )


def _run_header(run: dict) -> str:
    status = _esc(run["status"])
    return (
        f'<header><div class="eyebrow">mmflow {_esc(run["kind"])} report</div>'
        f'<h1>{_esc(run["strategy"])} <span class="badge {status}">{status}</span></h1>'
        f'<div class="sub">run <code>{_esc(run["run_id"])}</code> · '
        f"{_esc(run['securities'])} securities · {_esc(run['data_source'])}</div></header>"
    )


def _kpis(run: dict) -> str:
    max_dd = f"{_money(run['max_drawdown'])} <small>{_pct(run['max_drawdown_pct'])}</small>"
    cards = [
        ("Realized P&amp;L", _money(run["total_pnl"]), _tone(run["total_pnl"])),
        ("Sharpe", _ratio(run["sharpe_ratio"]), ""),
        ("Max drawdown", max_dd, ""),
        ("Calmar", _ratio(run["calmar_ratio"]), ""),
        ("Win rate", _pct(run["win_rate"]), ""),
        ("Profit factor", _ratio(run["profit_factor"]), ""),
        ("Trades", _int(run["trades"]), ""),
        ("Securities", _securities(run), ""),
    ]
    items = "".join(
        f'<div class="kpi"><div class="label">{label}</div><div class="value{tone}">{value}</div>'
        "</div>"
        for label, value, tone in cards
    )
    return f'<section class="kpis">{items}</section>'


def _security_note(row: dict) -> str:
    """The headline figures of one security, beside its name."""
    return (
        f"total P&amp;L {_money(row['total_pnl'])} · {_int(row['trades'])} trades · "
        f"Sharpe {_ratio(row['sharpe_ratio'])} · max DD {_money(row['max_drawdown'])} · "
        f"final position {_int(row['final_position'])}"
    )


def _securities(run: dict) -> str:
    ok, failed = run["securities_ok"], run["securities_failed"]
    text = f"{ok} <small>of {run['securities']}</small>"
    return text + (f' <small class="neg">{failed} failed</small>' if failed else "")


_FAILURE_COLUMNS = (
    ("Security", "security", _esc, "text"),
    ("Error", "error_type", _esc, "text"),
    ("Attempts", "attempts", _int, "num"),
    ("Message", "message", lambda m: f"<pre>{_esc(m)}</pre>", "text"),
)


def _failures_section(failures: pd.DataFrame) -> str:
    if failures.empty:
        return ""
    noun = "security" if len(failures) == 1 else "securities"
    return (
        f'<section class="failures"><h2>{len(failures)} failed {noun}</h2>'
        f"{_table(failures.to_dict('records'), _FAILURE_COLUMNS)}</section>"
    )


def _lineage_section(run: dict, summary: pd.DataFrame) -> str:
    params = run["params"] or {}
    overrides = params.get("overrides") or {}
    started, finished = run["started_at"], run["finished_at"]
    duration = f"{(finished - started).total_seconds():,.1f} s" if started and finished else "–"
    items = [
        ("Strategy", run["strategy"]),
        ("Config", params.get("config") or "defaults"),
        ("Overrides", _overrides_label(overrides) if overrides else "none"),
        ("Config hash", run["config_hash"]),
        ("Data source", run["data_source"]),
        ("Data hash", run["data_hash"]),
        ("Code version", run["code_version"]),
        ("Started", _time(started)),
        ("Finished", f"{_time(finished)} ({duration})"),
        ("Sweep", run["sweep_id"]),
        ("Prefect flow run", run["flow_run_id"]),
    ]
    rows = "".join(
        f"<dt>{k}</dt><dd><code>{_esc(v)}</code></dd>" for k, v in items if not _missing(v)
    )
    return (
        f'<section class="card"><h2>Parameters and lineage</h2><dl>{rows}</dl>'
        f"{_resolved_params(summary)}</section>"
    )


def _resolved_params(summary: pd.DataFrame) -> str:
    """The parameters resolved per security, as a collapsible table (differing values marked)."""
    if summary.empty:
        return ""
    resolved = pd.DataFrame(
        [json.loads(p) if p else {} for p in summary["params"]], index=summary["security"]
    ).T
    head = "".join(f"<th class='num'>{_esc(s)}</th>" for s in resolved.columns)
    rows = []
    for name, values in resolved.iterrows():
        differs = " class='differs'" if values.astype(str).nunique() > 1 else ""
        cells = "".join(f"<td class='num'>{_esc(_plain(v))}</td>" for v in values)
        rows.append(f"<tr{differs}><td>{_esc(name)}</td>{cells}</tr>")
    return (
        "<details><summary>Resolved parameters per security</summary><div class='scroll'>"
        f"<table><thead><tr><th>Parameter</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div></details>"
    )


def _plain(value) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int | float) else str(value)


class _Total(str):
    """The label of a table's total row (not a security, so not a link)."""


def _security_link(security: str) -> str:
    if isinstance(security, _Total):
        return _esc(security)
    return f"<a href='#{_anchor(security)}'>{_esc(security)}</a>"


def _anchor(security: str) -> str:
    """The id of a security's section: `sec-` and the name with anything but [A-Za-z0-9_-] as '-'."""
    return "sec-" + re.sub(r"[^A-Za-z0-9_-]", "-", security)


_SUMMARY_COLUMNS = (
    ("Security", "security", _security_link, "text"),
    ("Trades", "trades", _int, "num"),
    ("Volume", "volume", _int, "num"),
    ("Final pos.", "final_position", _int, "num"),
    ("Realized P&amp;L", "realized_pnl", _money, "signed"),
    ("Unrealized", "unrealized_pnl", _money, "signed"),
    ("Total P&amp;L", "total_pnl", _money, "signed"),
    ("P&amp;L / trade", "avg_pnl_per_trade", _money, "signed"),
    ("Sharpe", "sharpe_ratio", _ratio, "num"),
    ("Max DD", "max_drawdown", _money, "num"),
    ("Max DD %", "max_drawdown_pct", _pct, "num"),
    ("Win rate", "win_rate", _pct, "num"),
    ("Profit factor", "profit_factor", _ratio, "num"),
    ("Days", "strategy_dates", _int, "num"),
)


def _summary_section(run: dict, summary: pd.DataFrame) -> str:
    records = [*summary.to_dict("records"), _total_row(run, summary)]
    last = len(records) - 1
    table = _table(records, _SUMMARY_COLUMNS, lambda i, _: "total" if i == last else "")
    return (
        f'<section class="card"><h2>Summary by security</h2>{table}<p class="note">P&amp;L in '
        "the securities' currency; Sharpe, drawdown and win rate per SPEC §5.3. The portfolio row "
        "sums trades, volume and P&amp;L; its statistics use the combined daily curve.</p></section>"
    )


def _total_row(run: dict, summary: pd.DataFrame) -> dict:
    """Sums where a sum means something; portfolio statistics from the runs row."""
    total = {c: None for _, c, _, _ in _SUMMARY_COLUMNS}
    total.update({c: int(summary[c].sum()) for c in ("trades", "volume")})
    for c in ("realized_pnl", "unrealized_pnl", "total_pnl"):
        total[c] = math.fsum(summary[c].dropna())
    if total["trades"]:
        total["avg_pnl_per_trade"] = total["realized_pnl"] / total["trades"]
    for c in ("sharpe_ratio", "max_drawdown", "max_drawdown_pct", "win_rate", "profit_factor"):
        total[c] = run[c]
    total["security"] = _Total("Portfolio")
    return total


def _sweep_header(sweep_id: str, cells: pd.DataFrame, parameters: list[str]) -> str:
    strategies = ", ".join(sorted(cells["strategy"].unique()))
    sources = ", ".join(
        f"{s} ({h[:12]})"
        for s, h in cells[["data_source", "data_hash"]].drop_duplicates().itertuples(index=False)
    )
    return (
        f'<header><div class="eyebrow">mmflow sweep report</div><h1>Sweep {_esc(sweep_id)}</h1>'
        f'<div class="sub">{len(cells)} cells · strategies {_esc(strategies)} · swept '
        f"{_esc(', '.join(parameters) or 'nothing')} · data {_esc(sources)} · "
        f"{_time(cells['started_at'].min())} to {_time(cells['finished_at'].max())}</div></header>"
    )


_CELL_COLUMNS = (
    ("Strategy", "strategy", _esc, "text"),
    ("Parameters", "parameters", _esc, "text"),
    ("Status", "status", lambda s: f"<span class='badge {_esc(s)}'>{_esc(s)}</span>", "text"),
    ("Trades", "trades", _int, "num"),
    ("Total P&amp;L", "total_pnl", _money, "signed"),
    ("Sharpe", "sharpe_ratio", _ratio, "num"),
    ("Max DD", "max_drawdown", _money, "num"),
    ("Win rate", "win_rate", _pct, "num"),
    ("Run", "run_id", lambda r: f"<code>{_esc(r)}</code>", "text"),
)


def _cells_section(cells: pd.DataFrame) -> str:
    ranked = cells.sort_values("total_pnl", ascending=False, na_position="last")
    columns = _CELL_COLUMNS
    if ranked["failed"].any():
        columns += (
            (
                "Failed securities",
                "failed",
                lambda f: f"<span class='neg'>{_esc(f)}</span>",
                "text",
            ),
        )
    table = _table(ranked.to_dict("records"), columns, lambda i, _: "best" if i == 0 else "")
    return (
        f'<section class="card"><h2>Cells, best first</h2>{table}<p class="note">Portfolio '
        "figures of each cell (combined daily curve). The charts average each strategy's cells "
        "over the other swept parameters.</p></section>"
    )


def _write_html(out: Path, title: str, body: list[str], figures, store: str | Path) -> None:
    """Assemble the page: HTML first (it paints at once), each figure as a sized div and its JSON,
    then plotly.js once at the end, drawing the figures one after another."""
    plots = []
    for div_id, heading, note, figure in figures:
        spec = figure.to_json().replace("</", "<\\/")
        plots.append(
            f'<section class="card plot-card" id="{_esc(div_id)}"><h2>{_esc(heading)} '
            f'<span class="h-note">{note}</span></h2>'
            f'<div class="plot" id="plot-{_esc(div_id)}" style="height:{figure.layout.height}px">'
            "</div>"
            f'<script>draw("plot-{_esc(div_id)}", {spec});</script></section>'
        )
    generated = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    page = _PAGE.format(
        title=_esc(title),
        css=_CSS,
        plotly=get_plotlyjs(),
        config=json.dumps(PLOT_CONFIG),
        body="\n".join(part for part in body if part),
        plots="\n".join(plots),
        footer=f"Generated {generated} from {_esc(Path(store).resolve())}",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>
const PLOT_CONFIG = {config};
const FIGURES = [];
function draw(id, figure) {{ FIGURES.push([id, figure]); }}
</script>
</head><body><main>
{body}
{plots}
<footer>{footer}</footer>
</main>
<script>{plotly}</script>
<script>
(function next() {{
  const item = FIGURES.shift();
  if (item) Plotly.newPlot(item[0], item[1].data, item[1].layout, PLOT_CONFIG).then(() => setTimeout(next, 0));
}})();
</script>
</body></html>
"""

_CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f3f4f6; --pos: #15803d;
  --neg: #b91c1c; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 32px; }
header { margin-bottom: 14px; }
.eyebrow { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
h1 { margin: 2px 0 4px; font-size: 24px; font-weight: 650; }
h2 { margin: 0 0 10px; font-size: 15px; font-weight: 650; }
.sub { color: var(--muted); }
.h-note { color: var(--muted); font-weight: 400; font-size: 13px; margin-left: 8px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.badge { display: inline-block; vertical-align: middle; font-size: 12px; font-weight: 600;
  padding: 2px 8px; border-radius: 999px; background: #e5e7eb; color: var(--ink); }
.badge.completed { background: #dcfce7; color: var(--pos); }
.badge.partial { background: #fef3c7; color: #92400e; }
.badge.failed { background: #fee2e2; color: var(--neg); }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(135px, 1fr)); gap: 10px;
  margin-bottom: 14px; }
.kpi { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 9px 10px; }
.kpi .label { color: var(--muted); font-size: 12px; }
.kpi .value { font-size: 17px; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi small { font-size: 12px; color: var(--muted); font-weight: 500; }
.card { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px;
  margin-bottom: 14px; }
.plot-card { padding-bottom: 6px; }
.failures { background: #fef2f2; border: 1px solid #fecaca; border-radius: 8px; padding: 12px 16px;
  margin-bottom: 14px; }
.failures h2 { color: var(--neg); }
.failures pre { margin: 0; white-space: pre-wrap; font-size: 12.5px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
details { margin-top: 10px; }
summary { cursor: pointer; color: var(--accent); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 12.5px; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; border-bottom: 2px solid var(--line); }
.num { text-align: right; }
td.pos { color: var(--pos); }
td.neg, .neg { color: var(--neg); }
.failures td:last-child { white-space: normal; }
.value.pos { color: var(--pos); }
.value.neg { color: var(--neg); }
tbody tr:hover { background: #f9fafb; }
tr.total td { font-weight: 650; border-top: 2px solid var(--ink); border-bottom: none; }
tr.best td { background: #f0fdf4; font-weight: 600; }
tr.differs td { background: #fffbeb; }
a { color: var(--accent); text-decoration: none; }
.note { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 8px; }
"""
