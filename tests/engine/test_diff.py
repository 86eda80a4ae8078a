"""The regression diff on hand-made runs: every status, the spread of a revised day to the days
after it, equality to the last bit, and the night's markdown."""

from __future__ import annotations

import datetime as dt

from engine.results.diff import (
    MAX_ROWS,
    STATUSES,
    DayFigures,
    RunDays,
    StrategyNight,
    diff_runs,
    render_night,
    status_counts,
)

D1, D2, D3, D4 = (dt.date(2025, 4, d) for d in (14, 15, 16, 17))


def run(run_id="new", *, days, figures=None, code="c1", config="k1", data="d1") -> RunDays:
    """A run with `days` {(security, date): hash} and `figures` {(security, date): (pnl, n)}."""
    figures = {k: DayFigures(p, n, p) for k, (p, n) in (figures or {}).items()}
    return RunDays(run_id, code, config, data, days, figures)


def statuses(diffs) -> dict:
    return {(d.security, d.date): (d.status, d.revised_from) for d in diffs}


DAYS = {("A", D1): "h1", ("A", D2): "h2", ("A", D3): "h3", ("B", D1): "b1"}
FIGURES = {("A", D1): (10.0, 2), ("A", D2): (-3.5, 4), ("A", D3): (7.25, 2), ("B", D1): (1.0, 1)}


def test_without_a_previous_run_every_day_is_new():
    diffs = diff_runs(None, run(days=DAYS, figures=FIGURES))
    assert {d.status for d in diffs} == {"new"}
    assert [(d.security, d.date) for d in diffs] == sorted(DAYS)
    assert diffs[0].after == DayFigures(10.0, 2, 10.0) and diffs[0].before is None


def test_the_next_night_same_days_unchanged_and_the_added_day_new():
    before = run("old", days={k: h for k, h in DAYS.items() if k[1] != D3}, figures=FIGURES)
    after = run(days=DAYS | {("B", D4): "b4"}, figures=FIGURES)
    found = statuses(diff_runs(before, after))
    assert found == {
        ("A", D1): ("unchanged", None),
        ("A", D2): ("unchanged", None),
        ("A", D3): ("new", None),
        ("B", D1): ("unchanged", None),
        ("B", D4): ("new", None),
    }


def test_a_revised_day_and_the_changed_days_after_it_are_data_revised_from_it():
    before = run("old", days=DAYS, figures=FIGURES)
    after_figures = FIGURES | {("A", D2): (-1.0, 4), ("A", D3): (6.0, 2)}
    after = run(days=DAYS | {("A", D2): "h2-rev"}, figures=after_figures, data="d2")
    found = statuses(diff_runs(before, after))
    assert found[("A", D1)] == ("unchanged", None)  # before the revision
    assert found[("A", D2)] == ("data_revised", D2)
    assert found[("A", D3)] == ("data_revised", D2)  # state carried over from the revised day
    assert found[("B", D1)] == ("unchanged", None)  # another security is not affected


def test_a_day_after_a_revision_with_the_same_figures_is_unchanged():
    before = run("old", days=DAYS, figures=FIGURES)
    after = run(days=DAYS | {("A", D2): "h2-rev"}, figures=FIGURES)
    found = diff_runs(before, after)
    assert statuses(found)[("A", D3)] == ("unchanged", None)
    [revised] = [d for d in found if d.status == "data_revised"]
    assert "(figures unchanged)" in revised.reason


def test_code_config_and_unexplained_changes_with_the_same_data():
    before = run("old", days=DAYS, figures=FIGURES)
    changed = FIGURES | {("A", D1): (11.0, 2)}
    assert statuses(diff_runs(before, run(days=DAYS, figures=changed, code="c2")))[("A", D1)] == (
        "code_changed",
        None,
    )
    config = diff_runs(before, run(days=DAYS, figures=changed, code="c2", config="k2"))
    assert statuses(config)[("A", D1)] == ("config_changed", None)  # config wins over code
    assert "k1 -> k2" in [d for d in config if d.status == "config_changed"][0].reason
    assert statuses(diff_runs(before, run(days=DAYS, figures=changed)))[("A", D1)] == (
        "unexplained",
        None,
    )


def test_equality_is_to_the_last_bit():
    before = run("old", days=DAYS, figures=FIGURES | {("B", D1): (0.0, 0)})
    tiny = FIGURES | {("A", D1): (10.000000000000002, 2), ("B", D1): (-0.0, 0)}
    found = diff_runs(before, run(days=DAYS, figures=tiny))
    assert statuses(found)[("A", D1)] == ("unexplained", None)
    assert statuses(found)[("B", D1)] == ("unchanged", None)  # -0.0 is 0.0
    markdown = render_night([], [StrategyNight("v", "new", "old", "completed", "", tuple(found))])
    assert "10.0 -> 10.000000000000002" in markdown  # agree to the cent: full precision shown


def test_a_day_the_new_run_lacks_is_missing_and_days_without_fills_are_zero():
    before = run("old", days=DAYS, figures=FIGURES)
    after = run(days={k: h for k, h in DAYS.items() if k[0] == "A"}, figures=FIGURES)
    found = {(d.security, d.date): d for d in diff_runs(before, after)}
    assert found[("B", D1)].status == "missing" and found[("B", D1)].after is None
    quiet = run(days=DAYS, figures={k: v for k, v in FIGURES.items() if k != ("A", D3)})
    assert statuses(diff_runs(before, quiet))[("A", D3)] == ("unexplained", None)
    assert diff_runs(before, quiet)[2].after == DayFigures(0.0, 0, 0.0)


def test_without_day_hashes_a_changed_data_hash_explains_changed_days():
    before = run("old", days=dict.fromkeys(FIGURES), figures=FIGURES)
    changed = FIGURES | {("A", D2): (-1.0, 4)}
    after = run(days=dict.fromkeys(FIGURES), figures=changed, data="d2")
    found = [d for d in diff_runs(before, after) if d.status != "unchanged"]
    assert [(d.status, d.revised_from) for d in found] == [("data_revised", None)]


def test_the_markdown_has_counts_the_latest_day_and_every_changed_day_with_its_reason():
    before = run("old", days=DAYS, figures=FIGURES)
    after = run(
        days=DAYS | {("A", D2): "h2-rev", ("A", D4): "h4"},
        figures=FIGURES | {("A", D2): (-1.0, 4), ("A", D4): (2.0, 1)},
    )
    diffs = tuple(diff_runs(before, after))
    night = StrategyNight("v2", "new", "old", "completed", "", diffs)
    markdown = render_night(["## Night"], [night])
    assert "### v2: run new vs previous old (completed)" in markdown
    assert "| " + " | ".join(STATUSES) + " |" in markdown
    assert "| 1 | 3 | 1 | 0 | 0 | 0 | 0 |" in markdown  # new, unchanged, data_revised
    assert "#### P&L of the latest day, 2025-04-17, per security" in markdown
    assert "| A | 2.00 | 1 | 2.00 | new |" in markdown
    assert "| A | 2025-04-15 | **data_revised** | -3.50 -> -1.00 | 4 -> 4 |" in markdown
    assert "the day's data was revised" in markdown
    assert status_counts(diffs)["data_revised"] == 1


def test_the_markdown_lists_at_most_max_rows_changed_days_and_says_where_the_rest_are():
    days = {("A", dt.date(2020, 1, 1) + dt.timedelta(days=i)): "h" for i in range(MAX_ROWS + 5)}
    figures = {k: (1.0, 1) for k in days}
    diffs = diff_runs(
        run("old", days=days, figures=figures),
        run(days=days, figures={k: (2.0, 1) for k in days}, config="k2"),
    )
    markdown = render_night([], [StrategyNight("v", "new", "old", "completed", "", tuple(diffs))])
    assert markdown.count("**config_changed**") == MAX_ROWS
    assert "5 more: `SELECT * FROM nightly_diffs WHERE run_id = 'new'" in markdown


def test_a_strategy_without_a_run_shows_its_error():
    night = StrategyNight("v1", None, None, "failed", "InputError: history | not found")
    markdown = render_night([], [night])
    assert "### v1: no run (failed)" in markdown
    assert "**Failed:** InputError: history \\| not found" in markdown
