"""One header, format and kind per figure the report's tables show, so every table names and
formats a figure the same way (Total P&L is 'Total P&L' in the run page and the sweep page
alike). A table lists the keys it shows; a table that links or decorates a figure passes its own
format for that key.
"""

from __future__ import annotations

from engine.results.report.markup import (
    DRAWDOWN_PCT,
    caveat,
    esc,
    integer,
    missing,
    money,
    pct,
    ratio,
)


def sharpe(value: tuple) -> str:
    """A (Sharpe ratio, days) pair, marked 'indicative' when its basis has too few days."""
    figure, days = value
    return ratio(figure) + (" <small class='caveat'>indicative</small>" if caveat(days) else "")


def bps(value) -> str:
    return "–" if missing(value) else f"{float(value):,.2f}"


def share(value) -> str:
    return "–" if missing(value) else f"{float(value) * 100:.1f}%"


def code(value) -> str:
    return f"<code>{esc(value)}</code>"


# key -> (header, format to HTML, kind: 'text' | 'num' | 'signed' (coloured by sign))
FIGURES: dict[str, tuple] = {
    "security": ("Security", esc, "text"),
    "strategy": ("Strategy", esc, "text"),
    "parameters": ("Parameters", esc, "text"),
    "status": ("Status", esc, "text"),
    "run_id": ("Run", code, "text"),
    "trades": ("Trades", integer, "num"),
    "fills": ("Fills", integer, "num"),
    "volume": ("Volume", integer, "num"),
    "final_position": ("Final pos.", integer, "num"),
    "realized_pnl": ("Realized P&amp;L", money, "signed"),
    "unrealized_pnl": ("Unrealized P&amp;L", money, "signed"),
    "total_pnl": ("Total P&amp;L", money, "signed"),
    "avg_pnl_per_trade": ("Realized P&amp;L / trade", money, "signed"),
    "sharpe": ("Sharpe (daily)", sharpe, "num"),
    "days": ("Days", integer, "num"),
    "max_drawdown": ("Max DD", money, "num"),
    "max_drawdown_pct": (f"<abbr title='{esc(DRAWDOWN_PCT)}'>Max DD %</abbr>", pct, "num"),
    "win_rate": ("Win rate", pct, "num"),
    "profit_factor": ("Profit factor", ratio, "num"),
    # ANALYTICS.md
    "edge_bps": ("Edge bps", bps, "signed"),
    "markout_bps_60": ("Markout 60 s bps", bps, "signed"),
    "adverse_selection_60": ("Adverse sel. 60 s", money, "num"),
    "uptime_two_sided": ("Two-sided uptime", share, "num"),
    "fill_ratio": ("Fill ratio", ratio, "num"),
    "avg_abs_position": ("Avg |position|", money, "num"),
    "time_at_limit": ("At limit", share, "num"),
    "inventory_half_life_min": ("Half-life (min)", ratio, "num"),
    "spread_capture": ("Spread capture", money, "signed"),
    "inventory_pnl": ("Inventory P&amp;L", money, "signed"),
    "fees": ("Fees", money, "num"),
    "net_pnl": ("Net P&amp;L", money, "signed"),
}


def columns(*keys: str, **formats) -> tuple:
    """`markup.table`'s columns for `keys`, from FIGURES; `formats` overrides a key's format."""
    return tuple(
        (FIGURES[key][0], key, formats.get(key, FIGURES[key][1]), FIGURES[key][2]) for key in keys
    )
