"""`mmflow serve`: register the nightly and on-demand deployments with the Prefect server at
$PREFECT_API_URL (else the running `mmflow server`'s) and run their flow runs in this process
until Ctrl-C.

The nightly backtest runs on its schedule; every deployment can be started from the Prefect UI
(Deployments > a deployment > Run > Quick run, or Custom run to edit the parameters in a form) or
with `prefect deployment run <flow>/<deployment>`. Nothing runs while serve is stopped, and
stopping it pauses the deployments' schedules; the next `mmflow serve` resumes them.
Settings: deployments/nightly.toml (see that file), $MMFLOW_NIGHTLY_SETTINGS, --settings.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.request
from pathlib import Path

from mmflow.cli import UserError

HELP = "serve the nightly and on-demand deployments to the Prefect server (Ctrl-C stops)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `mmflow serve`."""
    p.add_argument(
        "--settings",
        help="settings file (default $MMFLOW_NIGHTLY_SETTINGS or deployments/nightly.toml)",
    )
    p.add_argument(
        "--limit",
        type=int,
        help="most flow runs this process runs at once, all deployments together (default: no limit)",
    )


def api_url() -> str:
    """$PREFECT_API_URL (or the active Prefect profile's), else the running `mmflow server`'s on
    this machine; a UserError that says how to get one."""
    import prefect.settings

    from flows.runtime import recorded_api

    url = prefect.settings.PREFECT_API_URL.value() or recorded_api()
    if not url:
        raise UserError(
            "PREFECT_API_URL is not set and no `mmflow server` runs on this machine. Start one "
            "with `mmflow server` (in another shell) and run `mmflow serve` again, or point at a "
            "server elsewhere: export PREFECT_API_URL=http://HOST:4200/api"
        )
    return url.rstrip("/")


def _check_server(url: str) -> None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            if json.loads(response.read() or b"null") is True:
                return
    except (OSError, ValueError) as exc:
        raise UserError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({exc}); start one with "
            "`mmflow server` and wait for 'ready'"
        ) from exc
    raise UserError(f"the Prefect server at {url} is not healthy yet; try again in a few seconds")


def _describe(deployment) -> tuple[str, str, str]:
    """(full name, schedule, default parameters) of a deployment, for people."""
    schedules = [s.schedule for s in deployment.schedules or []]
    when = ", ".join(f"{s.cron} ({s.timezone or 'UTC'})" for s in schedules) or "on demand"
    if deployment.concurrency_limit:
        when += f"; {deployment.concurrency_limit} run at a time"
    parameters = ", ".join(f"{k}={v!r}" for k, v in deployment.parameters.items())
    return f"{deployment.flow_name}/{deployment.name}", when, parameters


def run(args: argparse.Namespace) -> int:
    """Build the deployments from the settings, print how to use them, and serve them."""
    import prefect.settings

    url = api_url()
    _check_server(url)
    os.environ["PREFECT_API_URL"] = url  # the served flow runs (subprocesses) report there too
    with prefect.settings.temporary_settings({prefect.settings.PREFECT_API_URL: url}):
        return _serve(args, url)


def _serve(args: argparse.Namespace, url: str) -> int:
    """Register the deployments with the server at `url` and run their flow runs."""
    from prefect import serve

    from deployments.definitions import build_deployments, missing_flows
    from deployments.settings import SettingsError, load_settings
    from mmflow.console import console
    from tasks.backtest import ensure_store_limit

    ensure_store_limit(url)  # every store write takes its one slot: one writer at a time
    try:
        settings = load_settings(args.settings)
    except SettingsError as exc:
        raise UserError(str(exc)) from exc
    deployments = build_deployments(settings)
    ui = url.removesuffix("/api")
    console.print(f"Serving {len(deployments)} deployments to {url} (settings: {settings.source})")
    for deployment in deployments:
        name, when, parameters = _describe(deployment)
        console.print(f"  [bold]{name}[/bold]  {when}\n      {parameters}", highlight=False)
    for name in missing_flows():
        console.print(f"  {name}: left out, its flow module is not in this checkout")
    if not Path(settings.data).exists():
        console.print(
            f"[yellow]warning:[/yellow] the nightly data {settings.data} does not exist yet; "
            "set data in the settings file or MMFLOW_NIGHTLY_DATA",
            highlight=False,
        )
    console.print(
        f"\nOpen {ui}/v2/deployments, pick a deployment, then Run > Quick run (its defaults) or "
        "Custom run (a form of its parameters).\n"
        f"Or: PREFECT_API_URL={url} prefect deployment run '{_describe(deployments[0])[0]}'\n"
        "Ctrl-C stops serving. Nothing runs while serve is stopped, and stopping it PAUSES the "
        "deployments' schedules (the UI shows them paused); the next `mmflow serve` resumes them.",
        highlight=False,
    )
    serve(*deployments, print_starting_message=False, limit=args.limit)
    return 0
