"""Browser tests: the Chromium binary they drive (skipped locally when missing, never on CI),
playwright, and a headless tab on the `served` UI of the test module."""

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


@pytest.fixture(scope="module")
def playwright_api():
    """playwright's sync API; skipped locally without it, a failure on CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "python playwright is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="module")
def viewport() -> dict:
    """The tab's size; a module overrides it for taller pages."""
    return {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def page(served, chromium_launch, playwright_api, viewport):
    """A headless Chromium tab, once the module's `served` fixture is up."""
    with playwright_api() as playwright:
        browser = playwright.chromium.launch(**chromium_launch)
        try:
            tab = browser.new_page(viewport=viewport)
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()
