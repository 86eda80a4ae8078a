"""The nightly loop end to end on daily exports of the synthetic sample (3 securities, 3 days):
night after night, as the drop folder fills up. One sequence of nights (module fixture), then a
test per night reading what it published (the returned report, the `nightly-diff` artifact) and
stored (`nightly_diffs`, `v_nightly_summary`, the catalog).

1. days 1-2 dropped: every day `new`;
2. day 3 dropped (through `mmflow nightly`): days 1-2 `unchanged`, day 3 `new`;
3. a re-export of day 2 with one print of OASISBK 2% lower: OASISBK day 2 `data_revised`, its
   day 3 too (revised_from day 2) if its P&L changed; the other securities `unchanged`;
4. the same re-export again, sheets reordered (same rows): no new revision, all `unchanged`;
5. refill_interval_sec changed: `config_changed` wherever the figures moved;
6. a bad workbook dropped: recorded, the rest backtested, one message to a local webhook;
7. a day file of DUNEGAS corrupted, no notify URL: DUNEGAS fails, its days `missing`, and the
   artifact flags the alarms as not sent.
Thread task runner throughout (MMFLOW_TASK_RUNNER=threads: no Dask start).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from engine.data.export import read_workbook_tables, split_workbook_by_day, write_workbook
from engine.data.sample import write_sample_workbook
from engine.results.store import query
from flows.nightly import nightly
from mmflow.cli import main
from tasks.nightly import send_notification

STRATEGY = "v2_price_follow_qty_cooldown"
DAY1, DAY2, DAY3 = dt.date(2025, 4, 14), dt.date(2025, 4, 15), dt.date(2025, 4, 16)


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list]]:
    """A local HTTP endpoint (127.0.0.1 only) that keeps every JSON body POSTed to it."""
    received: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            length = int(self.headers.get("Content-Length", 0))
            received.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


def lower_a_trade(table: pa.Table) -> pa.Table:
    """One print of the day (the one 40% into its TRADE rows) 2% lower: through our bid, so the
    day's P&L changes."""
    trades = pc.indices_nonzero(pc.equal(table.column("type"), "TRADE")).to_pylist()
    row = trades[int(len(trades) * 0.4)]
    prices = table.column("price").to_pylist()
    prices[row] = round(prices[row] * 0.98, 3)
    return table.set_column(2, "price", pa.array(prices))


@pytest.fixture(scope="module")
def nights(tmp_path_factory, webhook, prefect_harness) -> dict:
    """Run the seven nights in order; their reports (and the paths) by number."""
    base = tmp_path_factory.mktemp("nightly")
    sample = write_sample_workbook(base / "ticks.xlsx", sheets=3, days=3, rows_per_sheet=1500)
    daily = split_workbook_by_day(sample, base / "daily")
    drop, history, store = base / "drop", base / "history", base / "store.duckdb"
    drop.mkdir()
    kwargs = dict(drop=str(drop), history=str(history), store=str(store), strategies=[STRATEGY])
    previous = os.environ.get("MMFLOW_TASK_RUNNER")
    os.environ["MMFLOW_TASK_RUNNER"] = "threads"
    out = {"store": store, "history": history, "drop": drop}
    try:
        out.update(_run_nights(base, sample, daily, kwargs, webhook[0]))
    finally:
        os.environ.pop("MMFLOW_TASK_RUNNER") if previous is None else os.environ.update(
            MMFLOW_TASK_RUNNER=previous
        )
    return out


def _run_nights(base, sample, daily, kwargs, host) -> dict:
    drop, out = Path(kwargs["drop"]), {}
    for file in daily[:2]:
        shutil.copy(file, drop)
    out[1] = nightly(**kwargs)
    shutil.copy(daily[2], drop)
    argv = [
        "nightly",
        "--drop",
        kwargs["drop"],
        "--history",
        kwargs["history"],
        "--store",
        kwargs["store"],
        "--strategies",
        STRATEGY,
    ]
    out["cli_exit"] = main(argv)
    edit = {"OASISBK UH Equity": lower_a_trade}
    [reexport] = split_workbook_by_day(
        sample, base / "r", edit=lambda s, d, t: edit.get(s, lambda t: t)(t) if d == DAY2 else None
    )
    shutil.copy(reexport, drop / "reexport_day2.xlsx")
    out[3] = nightly(**kwargs)
    sheets = read_workbook_tables(reexport)
    write_workbook(drop / "reexport_day2_again.xlsx", dict(reversed(sheets.items())))
    out[4] = nightly(**kwargs)
    out[5] = nightly(**kwargs, overrides={"refill_interval_sec": 600})
    (drop / "zz_bad.xlsx").write_text("Dates,Type,Price,Size\n")  # a CSV renamed
    out[6] = nightly(
        **kwargs, overrides={"refill_interval_sec": 600}, notify=f"json://{host}/mmflow"
    )
    day_file = Path(kwargs["history"]) / "security=DUNEGAS" / "date=2025-04-15" / "part.parquet"
    day_file.write_bytes(b"not parquet")
    state = nightly(**kwargs, overrides={"refill_interval_sec": 600}, return_state=True)
    out[7] = state.result(raise_on_failure=False)
    return out


def diff_rows(store: Path, report: dict) -> dict:
    """(security, date) -> (status, revised_from) of the night's stored diff."""
    [run_id] = [row["run_id"] for row in report["runs"]]
    rows = query(
        store,
        f"SELECT security, date, status, revised_from FROM nightly_diffs WHERE run_id = '{run_id}'",
    )
    return {
        (r.security, r.date.date() if hasattr(r.date, "date") else r.date): (
            r.status,
            None if r.revised_from is None or r.revised_from != r.revised_from else r.revised_from,
        )
        for r in rows.itertuples()
    }


def test_night_1_every_day_is_new(nights):
    report = nights[1]
    assert report["diffs"][STRATEGY]["new"] == 6
    assert report["problems"] == [] and report["ingest"]["ingested"] == 2
    assert "Notification: none needed." in report["markdown"]
    assert "#### P&L of the latest day, 2025-04-15, per security" in report["markdown"]


def test_night_2_from_the_command_line_old_days_unchanged_and_the_new_day_new(nights):
    assert nights["cli_exit"] == 0
    rows = query(nights["store"], "SELECT * FROM v_nightly_summary ORDER BY started_at")
    night2 = rows.iloc[1]
    assert (night2.new, night2.unchanged, night2.alarms) == (3, 6, 0)
    assert night2.previous_run_id == nights[1]["runs"][0]["run_id"]


def test_night_3_a_revised_day_and_what_follows_it_are_data_revised(nights):
    found = diff_rows(nights["store"], nights[3])
    assert found[("OASISBK", DAY2)][0] == "data_revised"
    assert found[("OASISBK", DAY3)] in (("data_revised", DAY2), ("unchanged", None))
    for security in ("FALCONRE", "DUNEGAS"):
        assert {found[(security, d)] for d in (DAY1, DAY2, DAY3)} == {("unchanged", None)}
    assert found[("OASISBK", DAY1)] == ("unchanged", None)
    markdown = nights[3]["markdown"]
    assert "the day's data was revised" in markdown and "1 revised" in markdown
    assert "(figures unchanged)" not in markdown  # the lower print filled our bid
    [run_id] = [row["run_id"] for row in nights[3]["runs"]]
    moved = query(
        nights["store"],
        "SELECT realized_pnl_before, realized_pnl_after FROM "
        f"nightly_diffs WHERE run_id = '{run_id}' AND status = 'data_revised'",
    )
    assert (moved.realized_pnl_before != moved.realized_pnl_after).all()


def test_night_3_artifact_is_the_published_markdown(nights):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-diff"]))
        )
    assert nights[3]["markdown"] in [a.data for a in artifacts]


def test_night_4_an_identical_reexport_adds_no_revision(nights):
    assert nights[4]["ingest"]["ingested"] == 1
    assert set(diff_rows(nights["store"], nights[4]).values()) == {("unchanged", None)}
    revisions = query(nights["store"], "SELECT max(revision) AS r, count(*) AS n FROM history_days")
    assert (revisions.r[0], revisions.n[0]) == (2, 10)  # 9 days + one revision of OASISBK day 2


def test_night_5_a_config_change_is_config_changed(nights):
    statuses = {status for status, _ in diff_rows(nights["store"], nights[5]).values()}
    assert "config_changed" in statuses and statuses <= {"config_changed", "unchanged"}
    assert nights[5]["problems"] == []


def test_night_6_a_bad_workbook_is_recorded_the_rest_run_and_a_message_is_sent(nights, webhook):
    report, (_, received) = nights[6], webhook
    assert report["ingest"]["failed"] == 1
    assert set(diff_rows(nights["store"], report).values()) == {("unchanged", None)}
    [(path, body)] = received
    assert path == "/mmflow" and "1 problem(s)" in body["title"]
    assert "zz_bad.xlsx failed" in body["message"] and "v_nightly_summary" in body["message"]
    assert "Notification: sent to json://127.0.0.1" in report["markdown"]
    failed = query(
        nights["store"], "SELECT status, error FROM ingested_files WHERE path LIKE '%zz_bad.xlsx'"
    )
    assert failed.status[0] == "failed" and "not a valid .xlsx file" in failed.error[0]


def test_night_7_a_failed_security_makes_its_days_missing_and_the_artifact_flags_it(nights):
    report = nights[7]
    found = diff_rows(nights["store"], report)
    assert {found[("DUNEGAS", d)][0] for d in (DAY1, DAY2, DAY3)} == {"missing"}
    assert any("DUNEGAS" in p and "partial" in p for p in report["problems"])
    assert any("3 missing day(s)" in p for p in report["problems"])
    assert "**Alarms (" in report["markdown"]
    assert "Notification: **not sent** (no `notify` URL configured)" in report["markdown"]


def test_a_plain_https_webhook_gets_a_json_post(webhook):
    host, received = webhook
    before = len(received)
    where = send_notification.fn(f"http://{host}/hook?token=secret", "title", "body")
    assert where == f"http://{host}" and "secret" not in where
    assert received[before:] == [
        ("/hook?token=secret", {"title": "title", "message": "body", "type": "failure"})
    ]
