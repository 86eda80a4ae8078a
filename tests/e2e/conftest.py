"""Browser tests: the Chromium binary they drive (skipped locally when missing, never on CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """/usr/bin/chromium (Debian `chromium`); skip without it, but fail when CI=true."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM}; install it with `apt-get install chromium`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
