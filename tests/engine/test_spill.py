"""Spills: a run kept on disk while the store is locked loads row for row as a direct write."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.results.store import (
    RUN_TABLES,
    StoreError,
    load_pending_spills,
    load_spill,
    pending_spills,
    query,
    spill_run,
    write_run,
)
from engine.runner import run_backtest


@pytest.fixture(scope="module")
def run(shared_data):
    return run_backtest(shared_data / "parquet", "v2_1_stop_loss", securities=["SPINNEYS"])


def rows(store, run_id: str) -> dict[str, pd.DataFrame]:
    return {t: query(store, f"SELECT * FROM {t} WHERE run_id = '{run_id}'") for t in RUN_TABLES}


def test_a_loaded_spill_equals_a_direct_write(run, tmp_path):
    spilled, direct = tmp_path / "a" / "store.duckdb", tmp_path / "b" / "store.duckdb"
    folder = spill_run(spilled, run)
    assert folder == spilled.parent / "spill" / run.run_id
    assert pending_spills(spilled) == [folder]
    assert not spilled.exists()  # nothing touched the store itself
    assert load_spill(spilled, folder) == run.run_id
    assert not folder.exists() and pending_spills(spilled) == []
    write_run(direct, run)
    for table, frame in rows(spilled, run.run_id).items():
        pd.testing.assert_frame_equal(frame, rows(direct, run.run_id)[table], check_exact=True)


def test_loading_twice_replaces_and_pending_spills_load_in_one_call(run, tmp_path):
    store = tmp_path / "store.duckdb"
    write_run(store, run)
    spill_run(store, run)
    assert load_pending_spills(store) == [run.run_id]
    assert query(store, "SELECT count(*) AS n FROM runs")["n"].item() == 1
    assert len(rows(store, run.run_id)["trades"]) == run.trades


def test_a_half_written_spill_is_never_loaded(run, tmp_path):
    store = tmp_path / "store.duckdb"
    folder = spill_run(store, run)
    (folder / "lineage.json").unlink()  # as if the process died before finishing it
    assert pending_spills(store) == []
    with pytest.raises(StoreError, match="not a complete spill"):
        load_spill(store, folder)
