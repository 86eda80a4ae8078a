"""Sweep grids: parsing `--set k=v1,v2`, expansion per strategy, identities, and run_cells."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.data.source import open_data
from engine.params import ConfigError, config_hash
from engine.run import Run
from engine.runner import backtest_security
from engine.sim.strategies import UnknownStrategyError
from engine.sweep import (
    Cell,
    batches,
    expand_grid,
    parse_grid,
    run_cells,
    sweep_id,
)

V2 = "v2_price_follow_qty_cooldown"
V21 = "v2_1_stop_loss"


def test_parse_grid_reads_values_in_order_and_drops_duplicates():
    grid = parse_grid(["refill_interval_sec=5,10, 30,5", "stop_loss_threshold_pct=1.5"])
    assert grid == {"refill_interval_sec": (5, 10, 30), "stop_loss_threshold_pct": (1.5,)}
    assert [type(v) for v in grid["refill_interval_sec"]] == [int, int, int]
    assert parse_grid(None) == {} and parse_grid([]) == {}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["refill_interval_sec"], "expects key=value"),
        (["=5"], "expects key=value"),
        (["refill_interval_sec="], "expects key=value"),
        (["refill_interval_sec=5", "refill_interval_sec=10"], "given twice"),
        (["refill_interval_sec=5,ten"], "'ten' is not a number"),
    ],
)
def test_parse_grid_rejects_malformed_items(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(items)


def test_expand_grid_sweeps_a_parameter_only_for_strategies_that_have_it():
    grid = expand_grid(
        [V2, V21], {"refill_interval_sec": (5, 10), "stop_loss_threshold_pct": (1, 2, 3)}
    )
    assert grid.cells == (
        Cell(V2, (("refill_interval_sec", 5),)),
        Cell(V2, (("refill_interval_sec", 10),)),
        *(
            Cell(V21, (("refill_interval_sec", r), ("stop_loss_threshold_pct", s)))
            for r in (5, 10)
            for s in (1, 2, 3)
        ),
    )
    assert grid.not_swept == {V2: ("stop_loss_threshold_pct",)}
    assert grid.notes() == [
        f"{V2} has no parameter stop_loss_threshold_pct: not swept for it (2 cell(s) instead of 6)"
    ]
    assert grid.cells[2].label == f"{V21} refill_interval_sec=5 stop_loss_threshold_pct=1"
    assert grid.cells[2].params == {"refill_interval_sec": 5, "stop_loss_threshold_pct": 1}


def test_expand_grid_without_parameters_is_one_default_cell_per_strategy():
    grid = expand_grid([V2, V21, V2], {})
    assert grid.cells == (Cell(V2), Cell(V21))
    assert grid.notes() == []


def test_expand_grid_fails_loudly_on_names_and_values():
    with pytest.raises(ConfigError, match="Did you mean 'refill_interval_sec'"):
        expand_grid([V2], {"refill_interval": (5,)})
    with pytest.raises(ConfigError, match="no strategy of the sweep has"):
        expand_grid([V2], {"stop_loss_threshold_pct": (1,)})
    with pytest.raises(ConfigError, match="must be >= 0"):
        expand_grid([V2], {"refill_interval_sec": (5, -1)})
    with pytest.raises(UnknownStrategyError, match="Did you mean 'v2_1_stop_loss'"):
        expand_grid(["v2_1_stoploss"], {})
    with pytest.raises(ConfigError, match="at least one strategy"):
        expand_grid([], {})


def test_cell_key_is_the_config_hash_a_backtest_run_would_store():
    cell = Cell(V2, (("refill_interval_sec", 5),))
    config = {"SPINNEYS": {"quote_size": 9700}}
    assert cell.key(config) == config_hash(config, {"refill_interval_sec": 5})
    assert cell.key(None) == config_hash({}, {"refill_interval_sec": 5})
    source = type("Source", (), {"path": "ticks", "content_hash": "h"})()
    runs = [
        Run.start(
            kind=kind,
            strategy=V2,
            source=source,
            config_path="cfg.json",
            config=config,
            overrides=cell.params,
        )  # fmt: skip
        for kind in ("sweep", "backtest")
    ]
    assert (
        runs[0].params
        == runs[1].params
        == {
            "config": "cfg.json",
            "overrides": {"refill_interval_sec": 5},
        }
    )
    assert runs[0].config_hash == runs[1].config_hash == cell.key(config)


def test_sweep_id_is_deterministic_and_changes_with_every_input():
    grid = expand_grid([V2], {"refill_interval_sec": (5, 10)})
    base = dict(data_hash="d1", securities=["A", "B"], grid=grid, config={}, code_version="c1")
    assert sweep_id(**base) == sweep_id(**base)
    assert sweep_id(**base).startswith("sweep-") and len(sweep_id(**base)) == 18
    changes = [
        dict(data_hash="d2"),
        dict(securities=["A"]),
        dict(grid=expand_grid([V2], {"refill_interval_sec": (5, 30)})),
        dict(grid=expand_grid([V2, V21], {"refill_interval_sec": (5, 10)})),
        dict(config={"A": {"quote_size": 1}}),
        dict(code_version="c2"),
    ]
    assert len({sweep_id(**base)} | {sweep_id(**{**base, **c}) for c in changes}) == 7


def test_batches_split_cells_in_order():
    cells = expand_grid([V2], {"refill_interval_sec": (1, 2, 3, 4, 5)}).cells
    assert batches(cells, 2) == [cells[0:2], cells[2:4], cells[4:5]]
    assert batches(cells, 10) == [cells]
    assert batches((), 3) == []
    with pytest.raises(ConfigError, match="at least 1"):
        batches(cells, 0)


def test_run_cells_equals_one_backtest_per_cell(shared_data):
    source = open_data(shared_data / "parquet", securities=["SPINNEYS"])
    config = {"SPINNEYS": {"quote_size": 9700, "max_position": 19400}}
    cells = expand_grid([V2, V21], {"refill_interval_sec": (5, 30)}).cells
    results = run_cells(source, "SPINNEYS", cells, config)
    assert [(r.security, r.strategy) for r in results] == [("SPINNEYS", c.strategy) for c in cells]
    for cell, result in zip(cells, results, strict=True):
        expected = backtest_security(source, "SPINNEYS", cell.strategy, config, cell.params)
        pd.testing.assert_frame_equal(result.trades, expected.trades, check_exact=True)
        assert result.summary == expected.summary
        assert result.params == expected.params
        assert result.params["refill_interval_sec"] == cell.params["refill_interval_sec"]
    assert len(results[0].trades) != len(results[1].trades)  # the intervals really differ


def test_mmflow_sweep_rejects_a_bad_grid_before_starting_prefect(tmp_path, capsys):
    from mmflow.cli import main

    args = ["sweep", "--data", str(tmp_path), "--set", "refill_interval=5,10"]
    assert main(args) == 2
    assert "Did you mean 'refill_interval_sec'" in capsys.readouterr().err
    assert main([*args[:3], "--set", "refill_interval_sec=5", "--batch-cells", "0"]) == 2
    assert "--batch-cells must be at least 1" in capsys.readouterr().err
