"""Shared test configuration: where the shared data lives (`../shared` beside the repository),
and one Prefect test harness per session for the tests that run flows.

Prefect reads its settings at import, so the environment is set here, before any test module
imports prefect (facts §2). Engine tests never import prefect and do not pay for the harness.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
SHARED_DATA = SHARED / "data"

_BASE = Path(tempfile.mkdtemp(prefix="mmflow-tests-"))
os.environ["TMPDIR"] = str(_BASE)  # harness DB, Dask scratch, runner storage
tempfile.tempdir = None
os.environ["PREFECT_HOME"] = str(_BASE / "prefect-home")
for _key in (
    "PREFECT_API_URL",
    "PREFECT_PROFILE",
    "MMFLOW_STORE",
    "MMFLOW_DASK_ADDRESS",
    "MMFLOW_WORKERS",
):
    os.environ.pop(_key, None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
os.environ["DASK_TEMPORARY_DIRECTORY"] = str(_BASE / "dask")
os.environ["DASK_LOGGING__DISTRIBUTED"] = "warning"
os.environ["MMFLOW_PARQUET_CACHE"] = str(_BASE / "parquet-cache")  # never the user's cache

# Where tests keep what a person may want to look at afterwards (screenshots, reports).
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has no shared folder beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for the whole session (about 20-30 s to start on 2 cores)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ in the repository (git-ignored): screenshots and reports from tests."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(config, items):
    """Tests that need a Prefect API (the session harness: 20-30 s to start) or a browser are the
    slow lane; `pytest -m "not slow"` runs the rest in well under a minute."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()) or "e2e" in item.path.parts:
            item.add_marker(pytest.mark.slow)
