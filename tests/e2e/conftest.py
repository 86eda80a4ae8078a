"""Browser tests: the Chromium binary they drive (skipped locally when missing, never on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium as root on a machine with no outside network (facts §3): no sandbox, and no
# background traffic that would be refused.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """/usr/bin/chromium (Debian `chromium`); skip without it, but fail when CI=true."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM}; install it with `apt-get install chromium`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_launch(chromium_path) -> dict:
    """Keyword arguments for playwright's `chromium.launch`."""
    return {"executable_path": str(chromium_path), "args": list(CHROMIUM_ARGS)}
