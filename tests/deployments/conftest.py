"""Every test in tests/deployments runs against the session's Prefect test harness."""

import pytest


@pytest.fixture(autouse=True)
def _harness(prefect_harness):
    yield
