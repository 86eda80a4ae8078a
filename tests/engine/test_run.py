"""The one Run type: the status rule, the portfolio figures (one meaning per figure), the typed
summary, and the lineage it records (engine source hash, git commit and dirty flag)."""

from __future__ import annotations

import math
import re
import subprocess

import pytest

from engine import lineage
from engine.params import load_config
from engine.results import metrics
from engine.run import Portfolio, Run, RunSummary, new_run_id
from engine.runner import run_backtest
from engine.types import Failure

V2 = "v2_price_follow_qty_cooldown"


class Source:
    path, content_hash = "ticks.parquet", "abc123"


def a_run(**lineage_fields) -> Run:
    return Run.start(
        kind="backtest",
        strategy=V2,
        source=Source(),
        config_path=None,
        config={},
        overrides={"refill_interval_sec": 10},
        **lineage_fields,
    )


@pytest.fixture(scope="module")
def real(shared_data) -> Run:
    config = load_config(shared_data / "configs" / f"{V2}_config.json")
    return run_backtest(shared_data / "xlsx" / "EMAAR_10k.xlsx", V2, config=config)


def test_status_is_completed_partial_or_failed_by_one_rule(real):
    failure = Failure("BAD", "InputError", "sheet 'BAD UH Equity' has no header")
    assert a_run().finish(real.results, []).status == "completed"
    assert a_run().finish(real.results, [failure]).status == "partial"
    assert a_run().finish([], [failure]).status == "failed"


def test_total_pnl_is_realized_plus_unrealized_everywhere(real):
    """EMAAR_10k under v2 ends short 27,964 shares: unrealized P&L is not zero (data README)."""
    [result] = real.results
    portfolio = real.portfolio
    assert result.summary["final_position"] == -27_964
    assert portfolio.realized_pnl == result.summary["realized_pnl"] == 2_852.0212600623036
    assert portfolio.unrealized_pnl == result.summary["unrealized_pnl"] != 0
    assert portfolio.total_pnl == result.summary["total_pnl"]
    assert math.isclose(portfolio.total_pnl, 1_822.0500000004508, rel_tol=0, abs_tol=1e-6)
    assert portfolio.trades == result.summary["trades"] == 407
    assert portfolio.days == len(metrics.combined_daily(real.results)) == 3


def test_the_portfolio_of_nothing_is_zero():
    assert Portfolio.of([]) == Portfolio()


def test_the_summary_carries_key_figures_not_trades(real):
    summary = real.summary(store="x.duckdb", report="r.html", timings={"compute": 1.0})
    assert isinstance(summary, RunSummary)
    assert (summary.run_id, summary.status, summary.store) == (real.run_id, "completed", "x.duckdb")
    assert summary.portfolio == real.portfolio
    assert [row["security"] for row in summary.securities] == ["EMAAR"]
    assert "seq" not in summary.securities[0] and summary.securities_ok == 1
    assert summary.failed == {} and summary.securities_failed == 0


def test_finish_recomputes_the_portfolio(real):
    run = a_run()
    assert run.portfolio == Portfolio()
    run.finish(real.results, [])
    assert run.portfolio == real.portfolio
    assert run.finished_at >= run.started_at


def test_lineage_names_the_params_config_hash_data_and_code():
    run = a_run(flow_run_id="f-1")
    assert run.params == {"config": None, "overrides": {"refill_interval_sec": 10}}
    assert (run.data_source, run.data_hash, run.flow_run_id) == ("ticks.parquet", "abc123", "f-1")
    assert run.code_version == lineage.code_version()
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", run.run_id)
    other = Run.start(
        kind="backtest", strategy=V2, source=Source(), config_path=None, config={}, overrides={}
    )
    assert a_run().config_hash == run.config_hash != other.config_hash
    with pytest.raises(ValueError, match="kind"):
        Run.start(
            kind="nope", strategy=V2, source=Source(), config_path=None, config={}, overrides={}
        )


def test_the_git_commit_and_dirty_flag_of_this_checkout():
    revision = lineage.git_revision()
    head = subprocess.run(
        ["git", "-C", str(lineage.REPO_DIR), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0:
        assert revision == (None, None)
        return
    assert revision.commit == head.stdout.strip()
    assert isinstance(revision.dirty, bool)
    run = a_run()
    assert (run.git_commit, run.git_dirty) == revision


def test_outside_a_checkout_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(lineage, "REPO_DIR", tmp_path)
    lineage.git_revision.cache_clear()
    try:
        assert lineage.git_revision() == (None, None)
    finally:
        lineage.git_revision.cache_clear()


def test_run_ids_made_in_the_same_second_never_repeat():
    """A sweep makes hundreds of runs a second; 6 random hex digits alone collide among 20,000
    (about 12 expected pairs), so the process redraws an id it issued before."""
    ids = [new_run_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", run_id) for run_id in ids[:100])
