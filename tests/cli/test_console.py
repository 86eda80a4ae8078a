"""mmflow's rich tables on a narrow terminal: ids (`run_id`, `sweep_id`, `flow_run_id`) are shown
whole, never wrapped or cut with `…`; other columns fold onto more lines instead."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console

from engine.results.compare import RUN_FIGURES, Comparison
from mmflow.commands import compare as compare_command
from mmflow.console import is_id, needed_width, table

RUN_ID = "20261128T081500-3f9a2c"
SWEEP_ID = "sweep-20261128T081500-aaaaaa"
FLOW_RUN_ID = "0b9f6c1e-5d2a-4c1b-9a53-2f0d7f8e9a10"
LABEL = "v2_price_follow_qty_cooldown refill_interval_sec=10 quote_size=500 cooldown_sec=3"


def narrow_console(width: int = 80) -> Console:
    """A terminal of `width` columns that records what it prints."""
    return Console(width=width, record=True, color_system=None, file=io.StringIO())


def render(renderable, width: int = 80) -> str:
    console = narrow_console(width)
    console.print(renderable)
    return console.export_text()


def test_id_columns_are_recognised_by_name():
    assert all(is_id(n) for n in ("run_id", "sweep_id", "flow_run_id", "id", "Run_ID"))
    assert not any(is_id(n) for n in ("idle", "valid", "ids", "run"))


def test_ids_are_whole_and_text_folds_on_a_narrow_terminal():
    frame = pd.DataFrame(
        {
            "label": [LABEL],
            "status": ["completed"],
            "total_pnl": [12345.678],
            "trades": [1234],
            "run_id": [RUN_ID],
        }
    )
    text = render(table(frame))
    assert RUN_ID in text and "…" not in text
    folded = "".join(line.split("│")[1].strip() for line in text.splitlines() if "│" in line)
    assert folded == LABEL.replace(" ", "")  # folded onto more lines, nothing cut
    assert max(len(line) for line in text.splitlines()) <= 80


def test_ids_too_wide_for_a_table_print_as_records():
    frame = pd.DataFrame(
        {
            "flow_run_id": [FLOW_RUN_ID],
            "sweep_id": [SWEEP_ID],
            "total_pnl": [-1.5],
            "run_id": [RUN_ID],
        }
    )
    cells = [[FLOW_RUN_ID, SWEEP_ID, "-1.50", RUN_ID]]
    assert needed_width(list(frame.columns), cells) > 80  # 36 + 28 + 22 characters of ids
    lines = render(table(frame, title="runs")).splitlines()
    assert lines[:3] == ["runs", "(too wide for 80 columns: one field per line)", lines[2]]
    assert lines[2].startswith("-[ RECORD 1 ]")
    assert lines[3:] == [
        f"flow_run_id | {FLOW_RUN_ID}",
        f"sweep_id    | {SWEEP_ID}",
        "total_pnl   | -1.50",
        f"run_id      | {RUN_ID}",
    ]
    assert RUN_ID in render(table(frame), width=120).splitlines()[3]  # wide enough: a table


def test_cells_are_shown_as_written_and_missing_values_blank():
    frame = pd.DataFrame(
        {"s": ["[bold]x", None], "n": pd.array([7, None], dtype="Int64"), "f": [1.5, None]}
    )
    text = render(table(frame))
    assert "[bold]x" in text and "<NA>" not in text and "nan" not in text.lower()
    assert "1.50" in text and "7" in text


def test_a_column_subset_keeps_its_order():
    frame = pd.DataFrame({"a": [1], "b": [2], "run_id": [RUN_ID]})
    lines = render(table(frame, columns=["run_id", "a"])).splitlines()
    header = next(line for line in lines if "run_id" in line)
    assert header.index("run_id") < header.index(" a ") and " b " not in header


@pytest.mark.parametrize("width", [80, 100])
def test_compare_shows_every_run_id_whole(monkeypatch, width):
    run_ids = [RUN_ID, "20261128T081501-7b10de"]
    summary = pd.DataFrame(
        {
            "label": [f"{LABEL} ({run_id})" for run_id in run_ids],
            "status": ["completed", "partial"],
            **{figure: [1234.5678, -0.25] for figure in RUN_FIGURES},
            "run_id": run_ids,
        }
    )
    by_security = pd.DataFrame(
        {label: [1.0, 2.0] for label in summary["label"]}, index=["EMAAR", "ALDAR"]
    )
    comparison = Comparison(title="runs", summary=summary, by_security=by_security)
    console = narrow_console(width)
    monkeypatch.setattr("mmflow.console.console", console)
    compare_command.print_comparison(comparison)
    text = console.export_text()
    assert all(run_id in text for run_id in run_ids) and "…" not in text
    assert f"[1] {LABEL}" in " ".join(text.split())
