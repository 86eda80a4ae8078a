"""The sweep report's tables and sections. A sweep's history spans many stored runs, so this page
reads the store (read-only, retrying while a writer holds it)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from engine.results.report.columns import columns
from engine.results.report.markup import (
    INDICATIVE,
    caveat,
    days_basis,
    esc,
    overrides_label,
    sort_key,
    table,
    time_utc,
)
from engine.results.store import StoreError, connect

READ_RETRIES = 3  # a writer holds the file for one transaction; wait that long, three times

_SQL = {
    "cells": "SELECT * FROM runs WHERE sweep_id = ? ORDER BY strategy, run_id",
    "securities": (
        "SELECT s.run_id, s.security, s.total_pnl FROM security_results s "
        "JOIN runs r USING (run_id) WHERE r.sweep_id = ? ORDER BY s.security"
    ),
    "failures": (
        "SELECT f.run_id, f.security, f.error_type, f.message FROM failures f "
        "JOIN runs r USING (run_id) WHERE r.sweep_id = ?"
    ),
    "days": (
        "SELECT d.run_id, count(*) AS days FROM run_daily d "
        "JOIN runs r USING (run_id) WHERE r.sweep_id = ? GROUP BY ALL"
    ),
}


def sweep_tables(store: str | Path, sweep_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep's cells (runs rows, overrides decoded, labelled, with `days`, the basis of their
    Sharpe and drawdown) and their per-security results."""
    with connect(store, read_only=True, retries=READ_RETRIES) as con:
        frames = {name: con.execute(sql, [sweep_id]).df() for name, sql in _SQL.items()}
    cells, securities, failures = frames["cells"], frames["securities"], frames["failures"]
    if cells.empty:
        raise StoreError(
            f"no sweep {sweep_id!r} in {store}; list sweeps with "
            "`SELECT DISTINCT sweep_id FROM runs WHERE sweep_id IS NOT NULL`"
        )
    days = frames["days"].set_index("run_id")["days"]
    cells["days"] = cells["run_id"].map(days).fillna(0).astype("int64")
    params = [json.loads(p) if p else {} for p in cells["params"]]
    cells["overrides"] = [p.get("overrides") or {} for p in params]
    cells["parameters"] = [overrides_label(o) for o in cells["overrides"]]
    cells["label"] = cells["strategy"] + " · " + cells["parameters"]
    repeated = cells["label"].duplicated(keep=False)
    cells.loc[repeated, "label"] += " (" + cells.loc[repeated, "run_id"] + ")"
    cells["order"] = [
        tuple(sort_key(k, v) for k, v in sorted(o.items())) for o in cells["overrides"]
    ]
    cells = cells.sort_values(["strategy", "order", "run_id"], ignore_index=True)
    cells["failed"] = [
        "; ".join(
            f"{f.security}: {f.error_type}" for f in failures[failures.run_id == r].itertuples()
        )
        for r in cells["run_id"]
    ]
    return cells, securities


def cells_basis(cells: pd.DataFrame) -> str:
    """The basis of the cells' Sharpe and drawdown: 'daily, over N days' (or a range of N)."""
    low, high = int(cells["days"].min()), int(cells["days"].max())
    text = days_basis(high) if low == high else f"daily, over {low:,}–{high:,} days"
    warning = caveat(low)
    return f"{text}; {warning}" if warning else text


def sweep_header(sweep_id: str, cells: pd.DataFrame, parameters: list[str]) -> str:
    """Eyebrow, sweep id, cell count, strategies, swept parameters, data and time span."""
    strategies = ", ".join(sorted(cells["strategy"].unique()))
    sources = ", ".join(
        f"{s} ({h[:12]})"
        for s, h in cells[["data_source", "data_hash"]].drop_duplicates().itertuples(index=False)
    )
    return (
        f'<header><div class="eyebrow">mmflow sweep report</div><h1>Sweep {esc(sweep_id)}</h1>'
        f'<div class="sub">{len(cells)} cells · strategies {esc(strategies)} · swept '
        f"{esc(', '.join(parameters) or 'nothing')} · data {esc(sources)} · "
        f"{time_utc(cells['started_at'].min())} to {time_utc(cells['finished_at'].max())}"
        "</div></header>"
    )


def _failed(text: str) -> str:
    return f"<span class='neg'>{esc(text)}</span>"


_CELL_COLUMNS = columns(
    "strategy",
    "parameters",
    "status",
    "trades",
    "realized_pnl",
    "total_pnl",
    "sharpe",
    "days",
    "max_drawdown",
    "win_rate",
    "run_id",
    status=lambda s: f"<span class='badge {esc(s)}'>{esc(s)}</span>",
)


def cells_section(cells: pd.DataFrame) -> str:
    """The cells ranked by Total P&L, the best highlighted, failed securities named."""
    ranked = cells.sort_values("total_pnl", ascending=False, na_position="last")
    records = [
        {**row, "sharpe": (row["sharpe_ratio"], row["days"])} for row in ranked.to_dict("records")
    ]
    columns = _CELL_COLUMNS
    if ranked["failed"].any():
        columns += (("Failed securities", "failed", _failed, "text"),)
    rows = table(records, columns, lambda i, _: "best" if i == 0 else "")
    few = bool(caveat(int(cells["days"].min())))
    marker = f" (<span class='caveat'>indicative</span>: {esc(INDICATIVE)})" if few else ""
    return (
        f'<section class="card"><h2>Cells, best first</h2>{rows}<p class="note">Portfolio '
        "figures of each cell: Total P&amp;L = Realized + Unrealized P&amp;L; Sharpe and Max DD "
        f"on the combined daily realized P&amp;L curve, daily, over the cell's Days{marker}. "
        "The charts average each strategy's cells over the other swept parameters.</p></section>"
    )
