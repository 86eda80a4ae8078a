"""Start-up: `mmflow --help` imports nothing heavy, and `run`/`sweep` reject bad arguments in one
line, before any Prefect server or Dask cluster starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmflow.cli import main

HEAVY = ("pandas", "numpy", "numba", "duckdb", "prefect", "pyarrow", "dask", "rich", "plotly")


def test_building_the_parser_imports_nothing_heavy():
    code = "import mmflow.cli; mmflow.cli.build_parser()"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"build_parser imported {heavy[:10]}"


@pytest.fixture
def no_prefect(monkeypatch):
    """Fail the test if a command gets as far as starting Prefect."""
    import flows.runtime

    def refuse():
        raise AssertionError("Prefect was started before the arguments were checked")

    monkeypatch.setattr(flows.runtime, "prefect_api", refuse)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)


def error_of(capsys, argv) -> str:
    started = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - started < 1.0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith(f"mmflow {argv[0]}: error: ")
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--strategy", "v2_price_follow"], "Did you mean 'v2_price_follow_qty_cooldown'?"),
        (["run", "--set", "refil_interval_sec=10"], "Did you mean 'refill_interval_sec'?"),
        (["run", "--set", "refill_interval_sec=-5"], "must be >= 0"),
        (["run", "--data", "/nonexistent.xlsx"], "/nonexistent.xlsx does not exist"),
        (["run", "--config", "/nonexistent.json"], "config file /nonexistent.json does not exist"),
        (["run", "--max-sheets", "0"], "--max-sheets must be at least 1"),
        (["sweep", "--set", "refil_interval_sec=5,10"], "Did you mean 'refill_interval_sec'?"),
        (["sweep", "--strategies", "nope"], "unknown strategy 'nope'"),
    ],
)
def test_bad_arguments_fail_in_one_line_before_prefect_starts(capsys, no_prefect, argv, message):
    if argv[0] == "sweep" and "--data" not in argv:
        argv = [*argv, "--data", "data/sample.xlsx"]
    assert message in error_of(capsys, argv)


def test_data_that_is_not_what_it_says_is_refused(capsys, no_prefect, tmp_path):
    fake = tmp_path / "ticks.xlsx"
    fake.write_text("Dates,Type,Price,Size\n")
    assert "is not an Excel workbook" in error_of(capsys, ["run", "--data", str(fake)])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "without .parquet files" in error_of(capsys, ["run", "--data", str(empty)])


def test_a_store_that_cannot_be_written_is_refused(capsys, no_prefect, tmp_path):
    assert "is a folder" in error_of(capsys, ["run", "--store", str(tmp_path)])


def test_a_prefect_api_url_where_no_server_answers_is_refused(capsys, no_prefect, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # the discard port
    err = error_of(capsys, ["run"])
    assert "no Prefect server answers at PREFECT_API_URL=http://127.0.0.1:9/api" in err


def test_debug_shows_the_traceback(capsys, no_prefect):
    assert main(["run", "--debug", "--data", "/nonexistent.xlsx"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_help_is_quick_in_a_fresh_process():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "mmflow.cli", "--help"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and re.search(r"COMMAND", done.stdout)


def test_only_the_console_script_freezes_the_collector_before_exiting(tmp_path):
    """The `mmflow` process skips its last garbage collection (gc.freeze); a Python caller of
    `main(argv)` keeps its collector as it was."""
    import gc

    argv = ["backtest", "--strategy", "v1_baseline", "--data", str(tmp_path / "none.xlsx")]
    argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert gc.get_freeze_count() == 0
    code = (
        "import gc, sys; from mmflow.cli import main; sys.argv = ['mmflow', *sys.argv[1:]]; "
        "code = main(); print(code, gc.get_freeze_count() > 0)"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "True"], done.stderr
