"""Lineage of a result: which code produced it.

`code_version` hashes the engine's source (it changes whenever simulation or result code does and
keys the kernel cache); `git_revision` names the commit of the checkout the code runs from, with a
dirty flag, so a stored run can be matched with the deployment version shown in the Prefect UI.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from pathlib import Path
from typing import NamedTuple

ENGINE_DIR = Path(__file__).resolve().parent
REPO_DIR = ENGINE_DIR.parent


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


class GitRevision(NamedTuple):
    """The commit the code runs from, and whether the checkout had uncommitted changes."""

    commit: str | None  # None outside a git checkout (an installed wheel, a copied tree)
    dirty: bool | None


@cache
def git_revision() -> GitRevision:
    """The checkout's HEAD commit and dirty flag (tracked files only), or (None, None)."""
    if not (REPO_DIR / ".git").exists():
        return GitRevision(None, None)
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return GitRevision(None, None)
    return GitRevision(commit or None, dirty if commit else None)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()
