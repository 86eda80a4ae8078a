"""The page around a report: HTML first, each figure as a sized div and its JSON, plotly.js once."""

from __future__ import annotations

import json
from pathlib import Path

from plotly.offline import get_plotlyjs

from engine.results.report.figures import PLOT_CONFIG
from engine.results.report.markup import esc
from engine.results.report.plotspec import to_json


def write_html(out: Path, title: str, body: list[str], figures, footer: str) -> None:
    """Write the page: HTML first (it paints at once), each figure as a sized div and its JSON,
    then plotly.js once at the end, drawing the figures one after another. `figures` are
    (div id, heading, note as HTML, plotly.js figure spec); `footer` is HTML."""
    plots = []
    for div_id, heading, note, figure in figures:
        spec, height = to_json(figure), figure["layout"]["height"]  # `<` escaped in the JSON
        plots.append(
            f'<section class="card plot-card" id="{esc(div_id)}"><h2>{esc(heading)} '
            f'<span class="h-note">{note}</span></h2>'
            f'<div class="plot" id="plot-{esc(div_id)}" style="height:{height}px">'
            "</div>"
            f'<script>draw("plot-{esc(div_id)}", {spec});</script></section>'
        )
    page = _PAGE.format(
        title=esc(title),
        css=_CSS,
        plotly=get_plotlyjs(),
        config=json.dumps(PLOT_CONFIG),
        body="\n".join(part for part in body if part),
        plots="\n".join(plots),
        footer=footer,
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
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(128px, 1fr)); gap: 8px;
  margin-bottom: 14px; }
.kpi { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 8px 9px; }
.kpi .label { color: var(--muted); font-size: 12px; }
.kpi .value { font-size: 16px; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi small { font-size: 12px; color: var(--muted); font-weight: 500; }
.kpi .basis { color: var(--muted); font-size: 11.5px; margin-top: 2px; }
.caveat { color: #92400e; font-weight: 600; }
.kpis + .note { margin: -6px 0 14px; }
abbr { text-decoration: underline dotted; cursor: help; }
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
th { color: var(--muted); font-weight: 600; font-size: 12px; border-bottom: 2px solid var(--line);
  white-space: normal; vertical-align: bottom; }
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
