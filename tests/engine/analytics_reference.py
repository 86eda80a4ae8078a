"""ANALYTICS.md A1-A11 written out literally in plain Python: the slow oracle of the fast path
(engine/results/analytics.py). Loops, lists, `bisect` and `math.fsum`; no numba and no
vectorisation. Inputs: the events and a `reference_sim.Run` (fills and the per-row record).

Decisions of the fast path that ANALYTICS.md leaves open are repeated here on purpose (each is
marked "Decision"), so that a change in one place shows up as a difference.
"""

from __future__ import annotations

import bisect
import math

from reference_sim import DAY, EOD, SECOND, WINDOW

HORIZONS = (1, 5, 30, 60, 300)
KINDS = ("quote", "eod_flatten", "stop_loss")


def market_mids(events) -> tuple[list[int], list[float]]:
    """A1 replay clock and A2 market mid after each row."""
    clock, mids = [], []
    bid = ask = None
    latest, previous_day = None, None
    for t, kind, price, volume in zip(
        events.timestamp_ns.tolist(),
        events.kind.tolist(),
        events.price.tolist(),
        events.volume.tolist(),
        strict=True,
    ):
        latest = t if latest is None else max(latest, t)
        clock.append(latest)
        if previous_day is not None and t // DAY != previous_day:
            bid = ask = None
        previous_day = t // DAY
        if kind == 0:
            bid = price if volume > 0 else None
        elif kind == 1:
            ask = price if volume > 0 else None
        mids.append((bid + ask) / 2 if bid is not None and ask is not None else math.nan)
    return clock, mids


def fill_rows(events, market, run, maker_fee_bps: float, fee_per_fill: float) -> list[dict]:
    """A3-A5 and A11 for each fill, in event order (`market`: `market_mids(events)`)."""
    clock, mids = market
    ts = events.timestamp_ns.tolist()
    last_of_day = {}
    for i, t in enumerate(ts):
        last_of_day[t // DAY] = i
    out = []
    for seq, f in enumerate(run.fills, start=1):
        r, p, q = f.row, f.price, f.qty
        s = 1.0 if f.side == "buy" else -1.0
        row = {"seq": seq, "row": r, "kind": f.kind, "side": f.side, "price": p, "qty": q}
        row["fee"] = p * q * maker_fee_bps / 1e4 + fee_per_fill
        row["mid_0"] = mids[r]
        for h in HORIZONS:
            j = bisect.bisect_right(clock, ts[r] + h * SECOND) - 1
            j = min(max(j, r), last_of_day[ts[r] // DAY])
            row[f"mid_{h}"] = mids[j]
        row["edge"] = s * (row["mid_0"] - p) * q + 0.0  # Decision (A5): no -0.0
        for h in HORIZONS:
            row[f"markout_{h}"] = s * (row[f"mid_{h}"] - p) * q + 0.0
        out.append(row)
    return out


def markouts(rows: list[dict]) -> dict:
    """A6 over `rows`."""
    out = {"fills": len(rows), "notional": math.fsum(r["price"] * r["qty"] for r in rows)}
    names = [("edge", "mid_0", "edge")] + [(f"markout_{h}", f"mid_{h}", h) for h in HORIZONS]
    for value, mid, label in names:
        have = [r for r in rows if not math.isnan(r[mid])]
        total = math.fsum(r[value] for r in have)
        notional = math.fsum(r["price"] * r["qty"] for r in have)
        bps = 1e4 * total / notional if have else math.nan
        if label == "edge":
            out["edge_total"], out["edge_bps"] = total, bps
        else:
            out[f"markout_total_{label}"], out[f"markout_bps_{label}"] = total, bps
            both = [r for r in have if not math.isnan(r["mid_0"])]
            out[f"adverse_selection_{label}"] = math.fsum(r["edge"] - r[value] for r in both)
        out[f"undefined_{mid}"] = len(rows) - len(have)
        out[f"notional_{mid}"] = notional
    return out


def pairs(events, market, run) -> list[tuple[int, int]]:
    """A7 pairs (i, i + 1) with their weight c[i+1] - c[i]."""
    clock, _ = market
    ts = events.timestamp_ns.tolist()
    out = []
    for i in range(len(ts) - 1):
        same_date = ts[i] // DAY == ts[i + 1] // DAY
        if same_date and run.in_window[i] and run.in_window[i + 1]:
            if not run.eod_flatten_today[i + 1]:  # Decision (A7): as it stands at row i + 1
                out.append((i, clock[i + 1] - clock[i]))
    return out


def activity_and_inventory(events, market, run, max_position: float) -> dict:
    """A7 and A8."""
    weighted = pairs(events, market, run)
    window = sum(w for _, w in weighted)
    quote_fills = sum(1 for f in run.fills if f.kind == "quote")

    def share(test) -> float:
        return sum(w for i, w in weighted if test(i)) / window if window else math.nan

    return {
        "quotes_placed": run.placed,
        "fill_ratio": quote_fills / run.placed if run.placed else math.nan,
        "uptime_two_sided": share(lambda i: run.live_bid[i] and run.live_ask[i]),
        "uptime_any": share(lambda i: run.live_bid[i] or run.live_ask[i]),
        "window_seconds": window / SECOND,
        "max_abs_position": max([abs(p) for p in run.position], default=0),
        "avg_abs_position": sum(abs(run.position[i]) * w for i, w in weighted) / window
        if window
        else math.nan,
        "time_at_limit": share(lambda i: abs(run.position[i]) >= max_position),
        "inventory_half_life_min": half_life(events, market, run),
    }


def half_life(events, market, run) -> float:
    """A8: whole minutes of the window on each date, the position after the last row at or
    before each, p[k+1] = phi p[k] pooled within dates."""
    clock, _ = market
    xy = xx = 0.0
    for day in sorted({t // DAY for t in events.timestamp_ns.tolist()}):
        samples = []
        for minute in range(WINDOW[0], WINDOW[1], 60 * SECOND):
            j = bisect.bisect_right(clock, day * DAY + minute) - 1
            samples.append(float(run.position[j]) if j >= 0 else 0.0)
        for a, b in zip(samples, samples[1:], strict=False):
            xy += a * b
            xx += a * a
    phi = xy / xx if xx > 0 else math.nan
    return math.log(0.5) / math.log(phi) if 0 < phi < 1 else math.nan


def mtm_after(market, run, fees: list[float], row: int) -> float:
    """A9 mtm after `row`. Decision (A9): the last defined mid at or before the row (the
    same date's when it has one); an unmarkable or flat position adds nothing."""
    _, mids = market
    done = [(f, fee) for f, fee in zip(run.fills, fees, strict=True) if f.row <= row]
    realized = done[-1][0].pnl if done else 0.0
    position = done[-1][0].position if done else 0
    entry = done[-1][0].entry if done else 0.0
    paid = 0.0
    for _, fee in done:
        paid += fee  # running sum, as fees accrue fill by fill
    mid, i = math.nan, row
    while i >= 0 and math.isnan(mid):
        mid, i = mids[i], i - 1
    unrealized = position * (mid - entry) if position != 0 and not math.isnan(mid) else 0.0
    return realized + unrealized - paid


def daily(events, market, run, fees: list[float]) -> dict:
    """A9/A11 per date with fills: {date (days): (mtm_pnl, fees)}. Decision (A9): the change
    since the previous date *with fills*."""
    ts = events.timestamp_ns.tolist()
    last_of_day = {}
    for i, t in enumerate(ts):
        last_of_day[t // DAY] = i
    days = sorted({ts[f.row] // DAY for f in run.fills})
    out, before = {}, 0.0
    for day in days:
        mtm = mtm_after(market, run, fees, last_of_day[day])
        paid = math.fsum(
            fee for f, fee in zip(run.fills, fees, strict=True) if ts[f.row] // DAY == day
        )
        out[day] = (mtm - before, paid)
        before = mtm
    return out


def analytics(events, run, params) -> tuple[list[dict], dict, dict, dict]:
    """(per-fill rows, A6 by kind incl. 'all', A7-A11 figures, daily) of a reference run."""
    market = market_mids(events)
    rows = fill_rows(events, market, run, float(params.maker_fee_bps), float(params.fee_per_fill))
    by_kind = {"all": markouts(rows)}
    by_kind.update({k: markouts([r for r in rows if r["kind"] == k]) for k in KINDS})
    fees = [r["fee"] for r in rows]
    total_fees = math.fsum(fees)
    realized = math.fsum(f.realized for f in run.fills)
    total_mtm = mtm_after(market, run, fees, len(events) - 1) if len(events) else 0.0
    figures = {
        **activity_and_inventory(events, market, run, float(params.max_position)),
        "total_mtm": total_mtm,
        "spread_capture": by_kind["quote"]["edge_total"],
        "inventory_pnl": total_mtm - by_kind["quote"]["edge_total"] + total_fees,
        "fees": total_fees,
        "realized_pnl": realized,
        "net_pnl": realized - total_fees,
    }
    return rows, by_kind, figures, daily(events, market, run, fees)


assert EOD > WINDOW[1]  # the EOD trigger is after the window (SPEC §3.2-4/6)
