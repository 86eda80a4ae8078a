"""The sweep flow on a thread runner: cells stored as runs, resume after an interruption, --fresh,
failures per cell, and stored cells equal to the in-process runner's results."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.results import store as results_store
from engine.results.store import connect, query, read_trades
from engine.runner import run_backtest
from flows.sweep import plan_cells, stored_cells, sweep

V2 = "v2_price_follow_qty_cooldown"
V21 = "v2_1_stop_loss"
GRID = {"refill_interval_sec": [5, 30]}


pytestmark = pytest.mark.usefixtures("threads")  # the data fixture: tests/flows/conftest.py


def cells_of(store, sweep_id: str) -> pd.DataFrame:
    """The sweep's runs: run_id, strategy, refill interval, status, kind, params."""
    frame = query(
        store,
        "SELECT run_id, strategy, kind, status, params, flow_run_id, "
        "CAST(params->'$.overrides.refill_interval_sec' AS DOUBLE) AS refill "
        f"FROM runs WHERE sweep_id = '{sweep_id}' ORDER BY strategy, refill",
    )
    return frame


def delete_runs(store, run_ids: list[str]) -> None:
    """What an interrupted sweep leaves behind: these cells were never stored."""
    with connect(store) as con:
        for table in results_store.RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [run_ids])


def task_run_names(flow_run_id: str) -> list[str]:
    """Names of the sweep-security task runs of a flow run (from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(r.name for r in runs if r.name.startswith("sweep-"))


def test_sweep_stores_cells_resumes_the_missing_ones_and_fresh_recomputes_all(data, tmp_path):
    store = str(tmp_path / "results.duckdb")
    kwargs = dict(data=str(data), strategies=[V2, V21], grid=GRID, store=store, batch_cells=2)

    first = sweep(**kwargs)
    assert (first.cells, first.computed, first.reused) == (4, 4, 0)
    assert first.securities == ("MODON", "SPINNEYS")
    assert len(first.tasks) == 4  # 2 batches x 2 securities, each task 2 cells
    assert {len(t["cells"]) for t in first.tasks} == {2}
    stored = cells_of(store, first.sweep_id)
    assert stored["strategy"].tolist() == [V21, V21, V2, V2]
    assert stored["refill"].tolist() == [5.0, 30.0, 5.0, 30.0]
    assert set(stored["kind"]) == {"sweep"} and set(stored["status"]) == {"completed"}
    assert sorted(first.computed_run_ids) == sorted(stored["run_id"])
    assert json.loads(stored["params"][0]) == {
        "config": None,
        "overrides": {"refill_interval_sec": 5.0},
    }
    before = {r: read_trades(store, r) for r in stored["run_id"]}  # by run id

    # Every stored cell equals the in-process runner for the same parameters, fill for fill.
    for row in stored.itertuples():
        expected = run_backtest(data, row.strategy, overrides={"refill_interval_sec": row.refill})
        frames = [r.trades.assign(security=r.security) for r in expected.results]
        expected_trades = pd.concat(frames, ignore_index=True)[before[row.run_id].columns]
        pd.testing.assert_frame_equal(
            before[row.run_id],
            expected_trades.sort_values(["security", "seq"], ignore_index=True),
            check_exact=True,
        )

    # An interrupted sweep: two cells (one of each strategy) never reached the store.
    lost = stored.loc[stored["refill"] == 30.0, "run_id"].tolist()
    delete_runs(store, lost)
    second = sweep(**kwargs)
    assert second.sweep_id == first.sweep_id
    assert (second.computed, second.reused) == (2, 2)
    assert list(second.computed_cells) == [
        f"{V2} refill_interval_sec=30",
        f"{V21} refill_interval_sec=30",
    ]
    assert [t["cells"] for t in second.tasks] == [list(second.computed_cells)] * 2
    again = cells_of(store, first.sweep_id)
    assert len(again) == 4
    flow_run_id = again.loc[again["refill"] == 30.0, "flow_run_id"].iloc[0]
    assert task_run_names(flow_run_id) == ["sweep-MODON-batch1of1", "sweep-SPINNEYS-batch1of1"]
    for old, new in zip(stored["run_id"], again["run_id"], strict=True):
        pd.testing.assert_frame_equal(read_trades(store, new), before[old], check_exact=True)

    third = sweep(**kwargs)
    assert (third.computed, third.reused, third.tasks) == (0, 4, ())

    fresh = sweep(**kwargs, fresh=True)
    assert (fresh.computed, fresh.reused) == (4, 0)
    after = cells_of(store, first.sweep_id)
    assert after["run_id"].tolist() == again["run_id"].tolist()  # replaced in place, no duplicates
    assert query(store, "SELECT count(*) AS n FROM runs")["n"].item() == 4
    for old, new in zip(stored["run_id"], after["run_id"], strict=True):  # same cell order
        pd.testing.assert_frame_equal(read_trades(store, new), before[old], check_exact=True)


def test_bad_input_is_a_failure_of_every_cell_and_is_not_retried_on_resume(data, tmp_path):
    (data / "modon.parquet").unlink()
    (data / "broken.parquet").write_bytes(b"this is not parquet")
    store = str(tmp_path / "results.duckdb")
    kwargs = dict(data=str(data), strategies=[V2], grid=GRID, store=store, batch_cells=1)

    first = sweep(**kwargs)
    assert (first.computed, len(first.tasks)) == (2, 4)
    assert list(first.failed) == ["BROKEN"]
    assert first.failed["BROKEN"].startswith("InputError: file ")
    failures = query(store, "SELECT run_id, security, error_type, attempts FROM failures")
    assert sorted(failures["run_id"]) == sorted(first.computed_run_ids)
    assert set(failures["security"]) == {"BROKEN"} and set(failures["attempts"]) == {1}
    assert set(cells_of(store, first.sweep_id)["status"]) == {"partial"}

    second = sweep(**kwargs)  # bad input is deterministic: those cells count as stored
    assert (second.computed, second.reused) == (0, 2)


def test_a_cell_with_a_failure_other_than_bad_input_is_recomputed(tmp_path):
    from engine.sweep import expand_grid

    grid = expand_grid([V2], {"refill_interval_sec": (5, 30, 60)})
    keys = [(c.strategy, c.key({})) for c in grid.cells]
    stored = {
        keys[0]: {"run_id": "run-5", "reusable": True},
        keys[1]: {"run_id": "run-30", "reusable": False},
    }
    todo, reused, replace = plan_cells(grid, {}, stored, fresh=False)
    assert (todo, reused) == ([grid.cells[1], grid.cells[2]], [grid.cells[0]])
    assert replace == {grid.cells[1]: "run-30"}
    todo, reused, replace = plan_cells(grid, {}, stored, fresh=True)
    assert (len(todo), reused, len(replace)) == (3, [], 2)
    assert stored_cells(str(tmp_path / "none.duckdb"), "sweep-x") == {}
