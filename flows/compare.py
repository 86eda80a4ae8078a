"""The `compare` flow: stored runs side by side (explicit run ids, a sweep, or the latest sweep),
published as a Prefect table artifact and a Markdown report, optionally written as CSV.

The work is `engine.results.compare` (plain SQL over the store); this flow exists so the comparison can be
deployed and run from the UI. `mmflow compare` calls the engine directly by default, because
starting a temporary Prefect server would cost ~20 s for a read that takes well under a second.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from engine.results.compare import compare_runs, markdown, records, write_csv
from engine.settings import store_path


@flow(name="compare")
def compare(
    run_ids: list[str] | None = None,
    sweep_id: str | None = None,
    latest: bool = False,
    store: str | None = None,
    csv: str | None = None,
) -> dict:
    """Compare runs; publish `compare-summary` (table) and `compare-report` (markdown)."""
    logger = get_run_logger()
    target = store_path(store)
    comparison = compare_runs(target, run_ids=run_ids, sweep_id=sweep_id, latest=latest)
    summary = records(comparison.summary.drop(columns=["label"]))
    create_table_artifact(
        key="compare-summary",
        table=summary,
        description=f"{comparison.title}: portfolio figures per run",
    )
    create_markdown_artifact(
        key="compare-report", markdown=markdown(comparison), description=comparison.title
    )
    written = [str(p) for p in write_csv(comparison, csv)] if csv else []
    logger.info("compared %s (%d runs)%s", comparison.title, len(summary), _wrote(written))
    return {
        "title": comparison.title,
        "store": target,
        "summary": summary,
        "by_security": records(comparison.by_security, index="security"),
        "csv": written,
    }


def _wrote(paths: list[str]) -> str:
    return f"; wrote {', '.join(paths)}" if paths else ""
