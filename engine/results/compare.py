"""Comparisons of stored runs: which strategy and parameter set did best, and on which securities.

SQL over the DuckDB store on short-lived read-only connections, plus pandas for the pivot and a
hand-built Markdown table (tabulate is not installed); no Prefect. Used by `mmflow compare`, the
`compare` flow and the sweep flow's final table.

The figures of a run are its stored portfolio figures (SPEC §0: the time-ordered combined daily
curve); `total_pnl` is realized + unrealized P&L in both `runs` and `security_results`, and the
per-security pivot holds each security's `total_pnl`, so a run's column sums to its `total_pnl`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.params import format_param
from engine.results.format import format_value, plain, rounded  # noqa: F401 - re-exported
from engine.results.store import StoreError, connect

# A run's portfolio figures, as compared across strategies and parameters; the fill quality
# (ANALYTICS.md) is pooled over securities as engine.results.analytics_portfolio says, and is
# blank for runs stored before it.
RUN_FIGURES = (
    "trades",
    "total_pnl",
    "net_pnl",  # realized - fees (A11)
    "sharpe_ratio",
    "max_drawdown",
    "max_drawdown_pct",
    "win_rate",
    "profit_factor",
    "edge_bps",  # A6
    "markout_bps_60",
    "uptime_two_sided",  # A7
    "fill_ratio",
    "avg_abs_position",  # A8
)
SUMMARY_COLUMNS = (
    "run_id",
    "strategy",
    "parameters",
    "status",
    "securities_ok",
    "securities_failed",
    *RUN_FIGURES,
)
_RUN_COLUMNS = ", ".join(c for c in SUMMARY_COLUMNS if c != "parameters")
_LIST_RUNS = 'mmflow query "SELECT run_id, sweep_id, strategy, params FROM v_run_summary"'


@dataclass
class Comparison:
    """Runs side by side: one summary row per run, and total P&L per security × run."""

    title: str
    summary: pd.DataFrame  # SUMMARY_COLUMNS plus `label` (the pivot's column name)
    by_security: pd.DataFrame  # index: security; columns: run labels; values: total P&L


def parameters_label(params: str | dict | None) -> str:
    """`refill_interval_sec=5 stop_loss_threshold_pct=2` (and `config=<file>`) from runs.params."""
    if isinstance(params, str):
        params = json.loads(params)
    params = params or {}
    parts = []
    if params.get("config"):
        parts.append(f"config={Path(str(params['config'])).name}")
    overrides = params.get("overrides") or {}
    parts += [f"{key}={format_param(value)}" for key, value in overrides.items()]
    return " ".join(parts) or "defaults"


def _sort_key(params: str | None) -> tuple:
    """Order parameter sets by their values (numbers numerically), for a readable sweep table."""
    overrides = (json.loads(params) if params else {}).get("overrides") or {}
    return tuple(
        (k, (0, float(v), "") if isinstance(v, int | float) else (1, 0.0, str(v)))
        for k, v in overrides.items()
    )


def select_runs(
    path: str | Path,
    *,
    run_ids: list[str] | None = None,
    sweep_id: str | None = None,
    latest: bool = False,
) -> tuple[str, list[str]]:
    """(title, run ids in display order) for explicit run ids, a sweep, or the latest sweep.

    `latest` (also the default when nothing is given) is the newest sweep; a store without sweeps
    falls back to the newest run of each strategy and parameter set.
    """
    given = sum(bool(x) for x in (run_ids, sweep_id, latest))
    if given > 1:
        raise StoreError("compare either run ids, --sweep ID or --latest, not several of them")
    with connect(path, read_only=True, retries=3) as con:
        if run_ids:
            found = {
                r
                for (r,) in con.execute(
                    "SELECT run_id FROM runs WHERE list_contains(?, run_id)", [list(run_ids)]
                ).fetchall()
            }
            missing = [r for r in run_ids if r not in found]
            if missing:
                raise StoreError(
                    f"no run {', '.join(missing)} in {path}; list runs with {_LIST_RUNS}"
                )
            return f"runs {', '.join(run_ids)}", list(dict.fromkeys(run_ids))
        if not sweep_id:
            rows = con.execute(
                "SELECT sweep_id FROM runs WHERE kind = 'sweep' AND sweep_id IS NOT NULL "
                "ORDER BY finished_at DESC, run_id DESC LIMIT 1"
            ).fetchall()
            if not rows:
                return "latest run of each strategy and parameter set", _latest_per_params(con)
            sweep_id = rows[0][0]
        rows = con.execute(
            "SELECT run_id, strategy, CAST(params AS VARCHAR) FROM runs WHERE sweep_id = ? "
            "ORDER BY run_id",
            [sweep_id],
        ).fetchall()
    if not rows:
        raise StoreError(
            f"no sweep {sweep_id!r} in {path}; list sweeps with "
            "mmflow query \"SELECT DISTINCT sweep_id FROM runs WHERE kind = 'sweep'\""
        )
    rows.sort(key=lambda r: (r[1], _sort_key(r[2])))
    return f"sweep {sweep_id}", [r[0] for r in rows]


def _latest_per_params(con) -> list[str]:
    """The newest run of each (strategy, params); StoreError if the store has no runs."""
    rows = con.execute(
        """SELECT run_id, strategy, CAST(params AS VARCHAR) FROM runs
           QUALIFY row_number() OVER (PARTITION BY strategy, CAST(params AS VARCHAR)
                                      ORDER BY finished_at DESC, run_id DESC) = 1"""
    ).fetchall()
    if not rows:
        raise StoreError("the store has no runs yet; run `mmflow run` or `mmflow sweep` first")
    rows.sort(key=lambda r: (r[1], _sort_key(r[2])))
    return [r[0] for r in rows]


def compare_runs(
    path: str | Path,
    *,
    run_ids: list[str] | None = None,
    sweep_id: str | None = None,
    latest: bool = False,
) -> Comparison:
    """The runs chosen as in `select_runs`, side by side (see `Comparison`)."""
    title, ids = select_runs(path, run_ids=run_ids, sweep_id=sweep_id, latest=latest)
    with connect(path, read_only=True, retries=3) as con:
        runs = _of_runs(con, f"{_RUN_COLUMNS}, CAST(params AS VARCHAR) AS params", "runs", ids)
        per_security = _of_runs(con, "run_id, security, total_pnl", "security_results", ids)
        failed = _of_runs(con, "DISTINCT security", "failures", ids)["security"].tolist()
    runs = runs.set_index("run_id").loc[ids].reset_index()
    runs["parameters"] = runs["params"].map(parameters_label)
    runs["label"] = _unique_labels(runs)
    summary = runs[[*SUMMARY_COLUMNS, "label"]].copy()
    for column in ("securities_ok", "securities_failed", "trades"):
        summary[column] = summary[column].astype("int64")
    pivot = per_security.pivot(index="security", columns="run_id", values="total_pnl")
    pivot = pivot.reindex(columns=ids).rename(columns=dict(zip(ids, runs["label"], strict=True)))
    pivot = pivot.reindex(sorted(set(pivot.index) | set(failed)))  # failed: blank
    pivot.columns.name = None
    return Comparison(title=title, summary=summary, by_security=pivot)


def _of_runs(con, columns: str, table: str, ids: list[str]) -> pd.DataFrame:
    """The `columns` of `table`'s rows of the runs `ids`, as a DataFrame."""
    return con.sql(
        f"SELECT {columns} FROM {table} WHERE list_contains(?, run_id)", params=[ids]
    ).df()


def _unique_labels(runs: pd.DataFrame) -> list[str]:
    """`strategy parameters`, with the run id added where two runs would share a label."""
    labels = (runs["strategy"].fillna("") + " " + runs["parameters"]).str.strip().tolist()
    return [
        f"{label} ({run_id})" if labels.count(label) > 1 else label
        for label, run_id in zip(labels, runs["run_id"], strict=True)
    ]


def records(frame: pd.DataFrame, index: str | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN as None, numpy scalars as Python), e.g. for a Prefect table artifact."""
    if index is not None:
        frame = frame.reset_index(names=index)
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({str(k): plain(v) for k, v in row.items()})
    return out


# What every table artifact says about its figures (issue: every figure states its basis).
FIGURE_BASIS = (
    "Sharpe ratios are daily (mean/std of daily realized P&L x sqrt 252); drawdowns are on the "
    "realized curve (per fill for a security, daily for a portfolio), drawdown % of its running "
    "peak (SPEC §5.3); under 20 days they are indicative only. Numbers rounded to 2 decimals."
)


def _cell(value: Any) -> str:
    """A value for a Markdown table cell."""
    return format_value(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, index: str | None = None) -> str:
    """A GitHub Markdown table of `frame` (numbers right-aligned), built by hand."""
    if index is not None:
        frame = frame.reset_index(names=index)
    columns = [str(c) for c in frame.columns]
    align = ["---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns]
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in columns) + " |"]
    lines.append("|" + "|".join(align) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def markdown(comparison: Comparison) -> str:
    """The whole comparison as one Markdown document (for the Prefect UI)."""
    summary = comparison.summary.drop(columns=["label"])
    best = (
        summary.loc[summary["total_pnl"].idxmax()] if summary["total_pnl"].notna().any() else None
    )
    lines = [f"# Comparison: {comparison.title}", ""]
    if best is not None:
        lines += [
            f"Best total P&L: **{best['strategy']} {best['parameters']}** "
            f"({_cell(best['total_pnl'])}, run `{best['run_id']}`).",
            "",
        ]
    lines += ["## Portfolio figures per run", "", markdown_table(summary), ""]
    lines += [
        "## Total P&L per security (realized + unrealized)",
        "",
        markdown_table(comparison.by_security, index="security"),
        "",
    ]
    return "\n".join(lines)


def write_csv(comparison: Comparison, path: str | Path) -> list[Path]:
    """The summary to `path` and the per-security pivot to `<stem>_by_security.csv` beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pivot_path = path.with_name(f"{path.stem}_by_security{path.suffix or '.csv'}")
    comparison.summary.drop(columns=["label"]).to_csv(path, index=False, lineterminator="\n")
    comparison.by_security.to_csv(pivot_path, index_label="security", lineterminator="\n")
    return [path, pivot_path]
