"""The deployments `mmflow serve` registers; schedules and default parameters only, no business logic.

* `nightly/nightly-backtest`: the nightly loop (ingest `drop` into `history`, every strategy of the
  settings over the history, or over `data` without one; diff, notify), on a cron in a time zone
  (default 02:00 Asia/Dubai).
* `backtest/backtest-on-demand`, `sweep/sweep-on-demand`, `compare/compare-on-demand`: no
  schedule; started from the Prefect UI (Run > Quick run / Custom run, a form built from the flow's
  typed parameters) or `prefect deployment run <flow>/<deployment> -p key=value`.

Every deployment that writes the store takes one run at a time (`concurrency_limit=1`; further runs
wait in the queue), and every store write, from any flow or deployment, holds the one slot of the
`mmflow-store` global concurrency limit (created by `mmflow server`/`serve`, or by the first write),
because DuckDB allows one writer. The flows are imported when the deployments
are built, and a flow module that is not in this checkout is left out (see `missing_flows`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployments.settings import NightlySettings, load_settings

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

NIGHTLY = "nightly/nightly-backtest"
BACKTEST = "backtest/backtest-on-demand"
SWEEP = "sweep/sweep-on-demand"
COMPARE = "compare/compare-on-demand"
TAGS = ["mmflow"]
WRITES_STORE = 1  # concurrency_limit of a deployment that writes the DuckDB store


@dataclass(frozen=True)
class Spec:
    """One deployment: its full name, where its flow lives, and how it is configured."""

    name: str  # "<flow name>/<deployment name>"
    module: str
    attribute: str
    options: Callable[[NightlySettings], dict[str, Any]]  # keyword arguments of to_deployment


def _nightly(settings: NightlySettings) -> dict[str, Any]:
    from prefect.schedules import Cron

    return dict(
        schedules=[Cron(settings.cron, timezone=settings.timezone)],
        parameters={
            "data": settings.data,
            "strategies": list(settings.strategies),
            "store": settings.store,
            "drop": settings.drop,
            "history": settings.history,
            "notify": settings.notify,
        },
        concurrency_limit=WRITES_STORE,
        description=(
            (f"Ingests {settings.drop} into {settings.history}, then b" if settings.drop else "B")
            + f"acktests {', '.join(settings.strategies)} over {settings.history or settings.data} "
            f"at {settings.cron!r} ({settings.timezone}), stores each run in {settings.store} and "
            "diffs it against the previous night's."
        ),
    )


def _backtest(settings: NightlySettings) -> dict[str, Any]:
    return dict(
        parameters={
            "data": settings.data,
            "strategy": settings.strategies[0],
            "store": settings.store,
        },
        concurrency_limit=WRITES_STORE,
    )


def _sweep(settings: NightlySettings) -> dict[str, Any]:
    return dict(
        parameters={"data": settings.data, "store": settings.store},
        concurrency_limit=WRITES_STORE,
    )


def _compare(settings: NightlySettings) -> dict[str, Any]:
    # reads only; with no run ids or sweep id it compares the latest sweep (or the latest runs)
    return dict(parameters={"store": settings.store})


SPECS = (
    Spec(NIGHTLY, "flows.nightly", "nightly", _nightly),
    Spec(BACKTEST, "flows.backtest", "backtest", _backtest),
    Spec(SWEEP, "flows.sweep", "sweep", _sweep),
    Spec(COMPARE, "flows.compare", "compare", _compare),
)


def _load_flow(spec: Spec):
    """The flow object of `spec`, or None when its module does not exist in this checkout."""
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name == spec.module:
            return None
        raise  # a flow that exists but cannot be imported must fail loudly
    return getattr(module, spec.attribute)


def missing_flows() -> list[str]:
    """Deployments left out because their flow module is not in this checkout."""
    return [spec.name for spec in SPECS if _load_flow(spec) is None]


def deployment_version() -> str:
    """The version the UI shows for a deployment: the runs' `code_version`, plus the git commit
    (and `-dirty`) when served from a checkout, so a stored run can be matched with it."""
    from engine.lineage import code_version, git_revision

    commit, dirty = git_revision()
    if commit is None:
        return code_version()
    return f"{code_version()} git {commit[:12]}{'-dirty' if dirty else ''}"


def build_deployments(settings: NightlySettings | None = None) -> list[RunnerDeployment]:
    """Every deployment whose flow is available, configured from `settings` (default: loaded
    from the settings file and environment). Nothing is sent to the Prefect API."""
    from prefect.deployments.runner import EntrypointType

    settings = settings or load_settings()
    deployments = []
    for spec in SPECS:
        flow = _load_flow(spec)
        if flow is None:
            continue
        flow_name, name = spec.name.split("/")
        assert flow.name == flow_name, f"{spec.module}.{spec.attribute} is flow {flow.name!r}"
        deployments.append(
            flow.to_deployment(
                name=name,
                tags=TAGS,
                # runs import the flow by module path, whatever directory serve started in
                entrypoint_type=EntrypointType.MODULE_PATH,
                version=deployment_version(),
                **spec.options(settings),
            )
        )
    return deployments
