"""The served deployments: names, the nightly schedule (02:00 Asia/Dubai), parameters from the
settings file and the environment, one writer at a time; runs triggered through the API complete
and land in the store; `mmflow serve` and `mmflow server` explain what is missing."""

from __future__ import annotations

import asyncio
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from deployments.definitions import (
    BACKTEST,
    COMPARE,
    NIGHTLY,
    SWEEP,
    build_deployments,
    deployment_version,
)
from deployments.settings import SettingsError, load_settings
from engine.lineage import code_version
from engine.results.store import query
from engine.run import outcome
from engine.settings import STORE_CONCURRENCY_LIMIT
from mmflow.cli import main

STRATEGIES = ["v1_baseline", "v2_price_follow_qty_cooldown"]


def write_settings(folder: Path, body: str) -> Path:
    path = folder / "nightly.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return write_settings(
        tmp_path,
        f"""
        [nightly]
        data = "{tmp_path / "data"}"
        strategies = {STRATEGIES!r}
        store = "{tmp_path / "store.duckdb"}"
        """,
    )


def by_name(deployments) -> dict:
    return {f"{d.flow_name}/{d.name}": d for d in deployments}


# ---- settings ----------------------------------------------------------------------------------


def test_the_shipped_settings_file_gives_the_documented_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.data == str(tmp_path / "data" / "sample.xlsx")  # relative to the cwd
    assert settings.strategies == ("v2_price_follow_qty_cooldown",)
    assert settings.store == str(tmp_path / "data" / "mmflow.duckdb")
    assert (settings.cron, settings.timezone) == ("0 2 * * *", "Asia/Dubai")
    assert settings.source.endswith("deployments/nightly.toml")


def test_a_settings_file_named_by_the_environment_and_overrides_on_top(tmp_path, settings_file):
    settings = load_settings(environ={"MMFLOW_NIGHTLY_SETTINGS": str(settings_file)})
    assert settings.data == str(tmp_path / "data")
    assert settings.strategies == tuple(STRATEGIES)
    assert settings.store == str(tmp_path / "store.duckdb")
    assert settings.source == str(settings_file)

    settings = load_settings(
        settings_file,
        environ={
            "MMFLOW_NIGHTLY_DATA": "/srv/ticks/today.xlsx",
            "MMFLOW_NIGHTLY_STRATEGIES": " v2_1_stop_loss , v1_baseline ",
            "MMFLOW_STORE": "/srv/mmflow.duckdb",
        },
    )
    assert settings.data == "/srv/ticks/today.xlsx"
    assert settings.strategies == ("v2_1_stop_loss", "v1_baseline")
    assert settings.store == "/srv/mmflow.duckdb"
    assert "MMFLOW_NIGHTLY_STRATEGIES" in settings.source


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[nightly]\nstrategy = ["v1_baseline"]',
            "unknown key 'strategy' in [nightly]. Did you mean 'strategies'?",
        ),
        (
            '[nightly]\nstrategies = ["v2_price_follow"]',
            "Did you mean 'v2_price_follow_qty_cooldown'?",
        ),
        ("[nightly]\nstrategies = []", "strategies must be a non-empty list"),
        ('[nightly]\ntimezone = "Dubai"', "timezone 'Dubai' is not an IANA time zone"),
        ('[nightly]\ncron = "0 25 * * *"', "cron '0 25 * * *' is not valid"),
        ('[schedule]\ncron = "0 2 * * *"', "unknown table or key 'schedule'"),
        ("[nightly\n", "not valid TOML"),
    ],
)
def test_bad_settings_fail_with_the_file_the_key_and_what_to_do(tmp_path, body, message):
    path = write_settings(tmp_path, body)
    with pytest.raises(SettingsError, match=r"nightly\.toml") as error:
        load_settings(path, environ={})
    assert message in str(error.value)


def test_the_nightly_loop_settings_from_the_file_and_the_environment(tmp_path):
    path = write_settings(
        tmp_path,
        '[nightly]\ndrop = "in"\nhistory = "ticks"\nnotify = "json://127.0.0.1:8080/mmflow"',
    )
    settings = load_settings(path, environ={})
    assert (settings.drop, settings.history) == (str(Path("in").absolute()),
                                                 str(Path("ticks").absolute()))  # fmt: skip
    assert settings.notify == "json://127.0.0.1:8080/mmflow"
    nightly = by_name(build_deployments(settings))[NIGHTLY]
    assert nightly.parameters["drop"] == settings.drop
    assert nightly.parameters["notify"] == settings.notify
    settings = load_settings(
        path,
        environ={
            "MMFLOW_NIGHTLY_DROP": "/srv/drop",
            "MMFLOW_NIGHTLY_HISTORY": "/srv/history",
            "MMFLOW_NIGHTLY_NOTIFY": "https://hooks.example/mmflow",
        },
    )
    assert (settings.drop, settings.history) == ("/srv/drop", "/srv/history")
    assert settings.notify == "https://hooks.example/mmflow"
    assert "MMFLOW_NIGHTLY_NOTIFY" in settings.source


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[nightly]\ndrop = "in"', "drop is set but history is not"),
        ('[nightly]\nnotify = "alerts@example.com"', "notify must be a URL"),
        ('[nightly]\nnotify = "nonsense://x"', "'nonsense://' is not one apprise knows"),
        ("[nightly]\nhistory = 3", "history must be a non-empty path string"),
        ('[nightly]\nhistroy = "h"', "Did you mean 'history'?"),
    ],
)
def test_bad_nightly_loop_settings_say_what_to_change(tmp_path, body, message):
    with pytest.raises(SettingsError, match=r"nightly\.toml") as error:
        load_settings(write_settings(tmp_path, body), environ={})
    assert message in str(error.value)


def test_a_missing_settings_file_named_by_the_environment_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="MMFLOW_NIGHTLY_SETTINGS"):
        load_settings(environ={"MMFLOW_NIGHTLY_SETTINGS": str(tmp_path / "nope.toml")})


# ---- deployments -------------------------------------------------------------------------------


def test_deployments_have_their_names_schedules_parameters_and_concurrency(tmp_path, settings_file):
    deployments = by_name(build_deployments(load_settings(settings_file, environ={})))
    assert list(deployments) == [NIGHTLY, BACKTEST, SWEEP, COMPARE]
    data, store = str(tmp_path / "data"), str(tmp_path / "store.duckdb")

    nightly = deployments[NIGHTLY]
    [schedule] = nightly.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 * * *", "Asia/Dubai")
    assert schedule.active
    assert nightly.parameters == {
        "data": data,
        "strategies": STRATEGIES,
        "store": store,
        "drop": None,  # no nightly loop configured: the nightly run backtests `data`
        "history": None,
        "notify": None,
    }
    assert nightly.entrypoint == "flows.nightly.nightly"  # runs import it from any directory

    assert deployments[BACKTEST].parameters == {
        "data": data,
        "strategy": STRATEGIES[0],
        "store": store,
    }
    assert deployments[SWEEP].parameters == {"data": data, "store": store}
    assert deployments[COMPARE].parameters == {"store": store}
    for name in (BACKTEST, SWEEP, COMPARE):
        assert not deployments[name].schedules, f"{name} runs on demand only"
    for name in (NIGHTLY, BACKTEST, SWEEP):
        assert deployments[name].concurrency_limit == 1, f"{name} writes the store"
    assert deployments[COMPARE].concurrency_limit is None  # reads only
    assert all(d.tags == ["mmflow"] for d in deployments.values())
    # The version the UI shows matches the stored runs' code_version (and the git commit).
    assert {d.version for d in deployments.values()} == {deployment_version()}
    assert deployment_version().startswith(code_version())


def test_the_schedule_comes_from_the_settings(tmp_path):
    path = write_settings(tmp_path, '[nightly]\ncron = "30 23 * * 1-5"\ntimezone = "Europe/London"')
    nightly = by_name(build_deployments(load_settings(path, environ={})))[NIGHTLY]
    assert nightly.schedules[0].schedule.cron == "30 23 * * 1-5"
    assert nightly.schedules[0].schedule.timezone == "Europe/London"


def test_the_ui_form_is_typed_from_the_flow_parameters(settings_file):
    deployments = by_name(build_deployments(load_settings(settings_file, environ={})))
    nightly = deployments[NIGHTLY]._parameter_openapi_schema.properties
    assert nightly["strategies"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    assert nightly["data"]["type"] == "string"
    sweep = deployments[SWEEP]._parameter_openapi_schema.properties
    assert sweep["fresh"]["type"] == "boolean"
    assert sweep["grid"]["anyOf"][0]["type"] == "object"


def test_runs_triggered_through_the_api_complete_and_are_stored(tmp_path, shared_data, monkeypatch):
    """Like a Quick run in the UI: no parameters given, so the deployments' defaults apply."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    monkeypatch.setenv("MMFLOW_TASK_RUNNER", "threads")  # no Dask cluster start (~12 s)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(shared_data / "parquet" / "spinneys.parquet", data)
    path = write_settings(
        tmp_path,
        f'[nightly]\ndata = "{data}"\nstrategies = {STRATEGIES!r}\nstore = "{tmp_path / "store.duckdb"}"',
    )
    deployments = by_name(build_deployments(load_settings(path, environ={})))
    runner = Runner(name="test-deployments", pause_on_shutdown=False)
    for name in (NIGHTLY, BACKTEST):
        runner.add_deployment(deployments[name])
    nightly = run_deployment(NIGHTLY, timeout=0)
    backtest = run_deployment(BACKTEST, timeout=0)
    asyncio.run(runner.start(run_once=True))  # runs what is due, in subprocesses, then returns

    with get_client(sync_client=True) as client:
        for run in (nightly, backtest):
            state = client.read_flow_run(run.id).state
            assert state.is_completed(), f"{run.name}: {state.type} {state.message}"
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[nightly.id])
            )
        )
    runs = query(
        tmp_path / "store.duckdb", "SELECT strategy, status, data_source, flow_run_id FROM runs"
    )
    assert set(runs["status"]) == {"completed"}
    assert set(runs["data_source"]) == {str(data)}
    stored = dict(zip(runs["flow_run_id"], runs["strategy"], strict=True))
    assert stored[str(backtest.id)] == STRATEGIES[0]
    assert sorted(stored[str(child.id)] for child in children) == STRATEGIES  # one subflow each
    assert len(stored) == 3
    # Every write went through the one-slot global concurrency limit, now free again, and no
    # writer ever met a locked store (two runs started at the same moment).
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(STORE_CONCURRENCY_LIMIT)
        assert (limit.limit, limit.active_slots) == (1, 0)
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(
                    any_=[nightly.id, backtest.id, *(c.id for c in children)]
                )
            )
        )
    assert logs and not [line.message for line in logs if "locked" in line.message.lower()]


def test_a_failing_strategy_fails_the_nightly_run_with_a_row_per_strategy(tmp_path, monkeypatch):
    from flows.nightly import nightly

    monkeypatch.setenv("MMFLOW_TASK_RUNNER", "threads")
    missing = tmp_path / "missing.xlsx"
    state = nightly(
        data=str(missing),
        strategies=STRATEGIES,
        store=str(tmp_path / "s.duckdb"),
        return_state=True,
    )
    assert state.is_failed()
    assert state.message == f"2 of 2 strategies failed: {STRATEGIES}"
    report = outcome(state)  # the report, also of a failed night
    assert [row["strategy"] for row in report["runs"]] == STRATEGIES
    assert all("missing.xlsx" in row["error"] for row in report["runs"]), report


# ---- commands ----------------------------------------------------------------------------------


def test_serve_without_prefect_api_url_or_server_says_how_to_get_one(capsys, tmp_path, monkeypatch):
    import prefect.settings

    monkeypatch.setenv("MMFLOW_CACHE_DIR", str(tmp_path))  # no `mmflow server` recorded here
    with prefect.settings.temporary_settings(restore_defaults={prefect.settings.PREFECT_API_URL}):
        assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert "PREFECT_API_URL is not set and no `mmflow server` runs" in error
    assert "Start one with `mmflow server`" in error and "export PREFECT_API_URL=" in error


def test_serve_with_no_server_at_the_url_says_so(capsys):
    import prefect.settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    with prefect.settings.temporary_settings({prefect.settings.PREFECT_API_URL: url}):
        assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert f"no Prefect server answers at PREFECT_API_URL={url}" in error


def test_server_points_the_ui_at_its_own_api_with_analytics_off(monkeypatch, tmp_path):
    from mmflow.commands import server

    monkeypatch.delenv("PREFECT_UI_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere:4200/api")
    env = server.server_env("127.0.0.1", 4300, home=str(tmp_path))
    assert env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4300/api"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_HOME"] == str(tmp_path)
    assert "PREFECT_API_URL" not in env
    assert server.urls("127.0.0.1", 4300) == ("http://127.0.0.1:4300", "http://127.0.0.1:4300/api")


def test_server_on_a_busy_port_says_so(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["server", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
