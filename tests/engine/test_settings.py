"""Settings: every MMFLOW_* variable the code reads is declared once and documented."""

from __future__ import annotations

import re
from pathlib import Path

from engine import settings

REPO = Path(__file__).resolve().parents[2]


def test_every_variable_the_code_reads_is_declared_and_in_the_readme():
    used = set()
    for folder in ("engine", "flows", "tasks", "mmflow", "deployments"):
        for path in (REPO / folder).rglob("*.py"):
            used |= set(re.findall(r"\bMMFLOW_[A-Z_]+\b", path.read_text()))
    used -= {"MMFLOW_DEBUG"}  # a command-line switch, documented in --help
    assert used <= set(settings.VARIABLES), sorted(used - set(settings.VARIABLES))
    readme = (REPO / "README.md").read_text()
    for name, meaning in settings.VARIABLES.items():
        assert f"| `{name}` | {meaning} |" in readme, name


def test_settings_read_the_environment_when_called():
    env = {"MMFLOW_STORE": "/srv/s.duckdb", "MMFLOW_WORKERS": "3", "MMFLOW_CACHE_DIR": "/c"}
    assert settings.store_path(None, env) == "/srv/s.duckdb"
    assert settings.store_path("x.duckdb", env) == "x.duckdb"
    assert settings.workers(None, env) == 3 and settings.workers(1, env) == 1
    assert settings.cache_dir(env) == Path("/c")
    assert settings.store_path(None, {}) == str(settings.DEFAULT_STORE)
    assert settings.dask_address(None, {}) is None
