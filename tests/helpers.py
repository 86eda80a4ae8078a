"""Builders shared by tests in more than one folder of tests/ (pytest puts tests/ on the import
path for tests/conftest.py, so a test module imports this as `helpers`)."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from engine.results import metrics
from engine.run import Run
from engine.types import SUMMARY_FIELDS, TRADE_COLUMNS, SecurityResult

NEW_YEAR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def bare_run(
    run_id: str,
    strategy: str,
    kind: str = "backtest",
    started_at: dt.datetime = NEW_YEAR,
) -> Run:
    """A Run with no parameters, config, data source or data hash (none matter to the test)."""
    return Run(
        run_id=run_id,
        kind=kind,
        strategy=strategy,
        params={},
        config_hash="",
        data_source="",
        data_hash="",
        started_at=started_at,
    )


def make_result(security: str, strategy: str, fills: list[tuple]) -> SecurityResult:
    """A SecurityResult with one fill of 100 per (time, realized P&L), alternating buy/sell
    (flat after each sell)."""
    n = len(fills)
    realized = np.array([p for _, p in fills], dtype=float)
    trades = pd.DataFrame(
        {
            "seq": np.arange(1, n + 1, dtype="int64"),
            "timestamp": pd.to_datetime([t for t, _ in fills]).astype("datetime64[ns]"),
            "side": ["buy" if i % 2 == 0 else "sell" for i in range(n)],
            "fill_price": np.full(n, 10.0),
            "fill_qty": np.full(n, 100, dtype="int64"),
            "realized_pnl": realized,
            "position": np.where(np.arange(n) % 2 == 0, 100, 0).astype("int64"),
            "pnl": np.cumsum(realized),
        }
    )[list(TRADE_COLUMNS)]
    summary = {name: None for name, _ in SUMMARY_FIELDS}
    summary.update(
        security=security,
        strategy=strategy,
        trades=n,
        realized_pnl=math.fsum(realized),
        unrealized_pnl=0.0,
        total_pnl=math.fsum(realized),
    )
    stats = metrics.fill_stats(realized)
    return SecurityResult(security, strategy, {}, trades, metrics.daily_pnl(trades), summary, stats)


def start_group(command: list, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `command` in a process group of its own (a nanny's worker joins it), its output
    to `log`, so the whole group can be signalled at the end."""
    with open(log, "w") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
