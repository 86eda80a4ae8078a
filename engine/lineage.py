"""Lineage of a result: which code produced it (a hash of the engine's source)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parent


@cache
def code_version() -> str:
    """`<package version>+<12 hex of the engine's source>`: changes whenever simulation code does."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("mmflow")
    except PackageNotFoundError:
        package = "0"
    digest = hashlib.sha256()
    for path in sorted(ENGINE_DIR.rglob("*.py")):
        digest.update(path.relative_to(ENGINE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{package}+{digest.hexdigest()[:12]}"
