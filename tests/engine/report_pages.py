"""What the HTML report tests share: runs and results built by hand, and readers of a page's
figures, KPI cards and visible text."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd

from engine.results import metrics
from engine.run import Run
from engine.types import SUMMARY_FIELDS, TRADE_COLUMNS, SecurityResult

STRATEGY = "v2_price_follow_qty_cooldown"
RUN_ID = "20261128T081500-3f9a2c"
START = dt.datetime(2026, 11, 28, 8, 15, tzinfo=dt.UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DD_PCT = "max drawdown as % of the running peak of realized P&amp;L, SPEC §5.3"
INDICATIVE = "fewer than 20 days: indicative only"


def new_run(run_id: str, results=(), failures=(), strategy: str = STRATEGY, **changes) -> Run:
    """A finished Run with plausible lineage, built in memory."""
    fields = dict(
        run_id=run_id,
        kind="backtest",
        strategy=strategy,
        params={"config": None, "overrides": {}},
        config_hash="c0ffee",
        data_source="/data/parquet",
        data_hash="d00d" * 16,
        started_at=START,
        finished_at=START + dt.timedelta(seconds=42),
        code_version="0.1.0+abc123",
        git_commit=COMMIT,
        git_dirty=True,
        results=list(results),
        failures=list(failures),
    )
    return Run(**{**fields, **changes})


def hand_result(security: str, strategy: str, pnls, start="2026-01-05 10:00", step_s=90, **summary):
    """A SecurityResult from per-fill realized P&L: alternating buy/sell of 100, summary from
    metrics (`summary` overrides figures, e.g. an unrealized P&L)."""
    n = len(pnls)
    seq = np.arange(n, dtype="int64")
    realized = np.asarray(pnls, dtype="float64")
    trades = pd.DataFrame(
        {
            "seq": seq,
            "timestamp": (pd.Timestamp(start) + pd.to_timedelta(seq * step_s, unit="s")).astype(
                "datetime64[ns]"
            ),
            "side": np.where(seq % 2 == 0, "buy", "sell"),
            "fill_price": 10.0 + (seq % 7) / 100,
            "fill_qty": np.full(n, 100, dtype="int64"),
            "realized_pnl": realized,
            "position": np.where(seq % 2 == 0, 100, 0).astype("int64"),
            "pnl": np.cumsum(realized),
        }
    )[list(TRADE_COLUMNS)]
    figures = {name: None for name, _ in SUMMARY_FIELDS}
    total = math.fsum(realized)
    figures.update(
        security=security,
        strategy=strategy,
        trades=n,
        volume=100 * n,
        final_position=int(trades["position"].iloc[-1]),
        realized_pnl=total,
        unrealized_pnl=0.0,
        total_pnl=total,
    )
    stats = metrics.fill_stats(np.asarray(realized, dtype=float))
    daily = metrics.daily_pnl(trades)
    figures.update(
        metrics.trade_metrics(
            stats, daily["realized_pnl"].to_numpy(), metrics.drawdown(trades["pnl"].to_numpy())
        )
    )
    figures.update(summary)
    return SecurityResult(security, strategy, {"quote_size": 100}, trades, daily, figures, stats)


def plot_spec(page: str, div_id: str) -> dict:
    """The plotly figure JSON drawn into `plot-<div_id>`."""
    match = re.search(rf'draw\("plot-{re.escape(div_id)}", (\{{.*?\}})\);</script>', page)
    assert match, f"no figure plot-{div_id} in the report"
    return json.loads(match.group(1))


def values(trace: dict, axis: str = "y") -> np.ndarray:
    """A trace's values, from a plain list or plotly's typed-array spec (dtype + base64 bdata)."""
    data = trace[axis]
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), data["dtype"])
    return np.asarray(data)


def kpi(page: str, label: str) -> str:
    """The text of a KPI card's value (tags removed)."""
    match = re.search(
        rf'<div class="label">{re.escape(label)}</div><div class="value[^"]*">(.*?)</div>', page
    )
    assert match, f"no KPI card {label!r}"
    return re.sub(r"<[^>]+>", "", match.group(1))


def visible(page: str) -> str:
    """The page's text as a reader sees it (tags, scripts and attributes removed)."""
    return re.sub(r"<[^>]+>", "", re.sub(r"<script>.*?</script>", "", page, flags=re.S))
