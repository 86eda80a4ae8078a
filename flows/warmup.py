"""`python -m flows.warmup API_URL DASK_ADDRESS TASKS`: one tiny flow through a new `mmflow
server`'s cluster; the flow (with its run) is then deleted.

The first flow run on a fresh Prefect server and Dask cluster takes about 1.2 s longer than the
next ones, even with warm workers: the server's and each worker's first task runs. `mmflow
server` runs this before it says it is ready, so a user's first `mmflow run` does not pay it.
Nothing is left in the UI: deleting the flow deletes its run and task runs; it makes no artifacts.
"""

from __future__ import annotations

import sys

from prefect import flow, task

FLOW_NAME = "mmflow-warm-up"


@task(name="warm-up")
def ping(i: int) -> int:
    return i


@flow(name=FLOW_NAME)
def warm_up(tasks: int) -> int:
    """`tasks` no-op tasks on the flow's task runner."""
    return sum(f.result() for f in [ping.submit(i) for i in range(tasks)])


def main(argv: list[str] | None = None) -> int:
    """Run the warm-up flow against API_URL on the cluster at DASK_ADDRESS; delete it."""
    api_url, address, tasks = argv if argv is not None else sys.argv[1:]
    import prefect.settings
    from prefect.client.orchestration import get_client
    from prefect_dask import DaskTaskRunner

    from flows.runtime import prefect_api

    api = {prefect.settings.PREFECT_API_URL: api_url}  # this server's, not a temporary one
    with prefect.settings.temporary_settings(api), prefect_api():  # prefect_api: no heartbeats
        runner = DaskTaskRunner(address=address)
        state = warm_up.with_options(task_runner=runner)(int(tasks), return_state=True)
        with get_client(sync_client=True) as client:
            flow_id = client.read_flow_run(state.state_details.flow_run_id).flow_id
            client.delete_flow(flow_id)  # and with it its run and task runs
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
