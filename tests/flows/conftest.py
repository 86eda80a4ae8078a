"""Every test in tests/flows runs against the session's Prefect test harness; shared fixtures."""

import pytest


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield


@pytest.fixture
def threads(monkeypatch) -> None:
    """Run the flow's tasks on Prefect's thread pool (no Dask cluster start)."""
    monkeypatch.setenv("MMFLOW_TASK_RUNNER", "threads")


@pytest.fixture
def data(tmp_path, shared_data):
    """SPINNEYS and MODON (the two smallest securities) in a folder of their own."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("spinneys", "modon"):
        (folder / f"{name}.parquet").symlink_to(shared_data / "parquet" / f"{name}.parquet")
    return folder
