"""A small results store built with plain DuckDB SQL (runs and trades in the store's shape), so the
`mmflow query` tests and benchmark do not depend on the store writer."""

from __future__ import annotations

from pathlib import Path

import duckdb

RUN_IDS = ("20261128T081500-3f9a2c", "20261128T081501-7b10de")


def make_store(path: Path, *, trades: int = 0) -> Path:
    """Two runs (total P&L 1.5 and -2.25) and `trades` fills spread over them."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            """CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, sweep_id VARCHAR,
                 flow_run_id VARCHAR, kind VARCHAR, strategy VARCHAR, params JSON,
                 status VARCHAR, finished_at TIMESTAMP, total_pnl DOUBLE, trades BIGINT)"""
        )
        con.execute(
            """INSERT INTO runs VALUES
               (?, 'sweep-20261128T081500-aaaaaa', '0b9f6c1e-5d2a-4c1b-9a53-2f0d7f8e9a10',
                'sweep', 'v2_price_follow_qty_cooldown', '{"overrides": {"quote_size": 500}}',
                'completed', TIMESTAMP '2026-11-28 09:00:00', 1.5, ?),
               (?, 'sweep-20261128T081500-aaaaaa', '6c1e0b9f-2a5d-1b4c-539a-0d7f8e9a102f',
                'sweep', 'v2_1_stop_loss', '{"overrides": {}}',
                'completed', TIMESTAMP '2026-11-28 09:05:00', -2.25, ?)""",
            [RUN_IDS[0], trades - trades // 2, RUN_IDS[1], trades // 2],
        )
        con.execute(
            f"""CREATE TABLE trades AS
            SELECT CASE WHEN i % 2 = 0 THEN '{RUN_IDS[0]}' ELSE '{RUN_IDS[1]}' END AS run_id,
                   'SEC' || (i % 37)::VARCHAR AS security, i AS seq,
                   TIMESTAMP '2025-01-01 10:00:00' + to_microseconds(i * 1000) AS timestamp,
                   CASE WHEN i % 3 = 0 THEN 'buy' ELSE 'sell' END AS side,
                   10 + (i % 1000) / 100.0 AS fill_price, (i % 500)::BIGINT AS fill_qty,
                   (i % 97) / 8.0 AS realized_pnl, (i % 300)::BIGINT - 150 AS position,
                   (i % 89) / 4.0 AS pnl
            FROM range({int(trades)}) t(i)"""
        )
    finally:
        con.close()
    return path
