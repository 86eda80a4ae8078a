"""File names made from data: sheet and security names never become paths unchanged.

Owns `safe_stem` (one name -> a portable file stem), `unique_stems` (many names -> stems that do
not collide, even on case-insensitive file systems) and `inside` (a file name joined to a folder,
refused if the result escapes it). Pure: no I/O except resolving paths in `inside`.
A name that is already safe (`MODON`, `SECURITY_00`) keeps its exact spelling.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

MAX_STEM = 100  # with `_trades.csv` or `.parquet` added, far below the usual 255-byte limit
EMPTY_STEM = "unnamed"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HASH_LENGTHS = (8, 16, 64)


class UnsafePathError(ValueError):
    """A file name that would land outside its folder."""


def safe_stem(name: str, *, max_length: int = MAX_STEM) -> str:
    """`name` with every character but ASCII letters, digits and `._-` replaced by `_`, leading
    dots and dashes removed (no hidden files, no option-like names), cut to `max_length`;
    `unnamed` if nothing is left."""
    stem = _UNSAFE.sub("_", str(name)).lstrip(".-")[:max_length]
    return stem or EMPTY_STEM


def unique_stems(names: Iterable[str], *, max_length: int = MAX_STEM) -> dict[str, str]:
    """name -> a safe stem, unique even when compared case-insensitively. When stems collide, a
    name that is already safe keeps its stem (if it is the only one) and the others get
    `-<sha256 of the name>`; the result depends only on the set of names, not their order."""
    names = list(dict.fromkeys(names))
    base = {name: safe_stem(name, max_length=max_length) for name in names}
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[base[name].lower()].append(name)
    out: dict[str, str] = {}
    suffixed: list[str] = []
    for members in groups.values():
        exact = [name for name in members if base[name] == name]
        keeper = members[0] if len(members) == 1 else exact[0] if len(exact) == 1 else None
        for name in members:
            if name == keeper:
                out[name] = base[name]
            else:
                suffixed.append(name)
    taken = {stem.lower() for stem in out.values()}
    for name in sorted(suffixed):
        for length in _HASH_LENGTHS:
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:length]
            stem = f"{base[name][: max(1, max_length - length - 1)]}-{digest}"
            if stem.lower() not in taken:
                break
        taken.add(stem.lower())
        out[name] = stem
    return {name: out[name] for name in names}


def inside(folder: str | Path, filename: str) -> Path:
    """`folder / filename`, resolved (symlinks followed); raises UnsafePathError unless the
    result is a file name directly or deeper inside `folder`."""
    root = Path(folder).resolve()
    target = (root / filename).resolve()
    if target == root or not target.is_relative_to(root):
        raise UnsafePathError(
            f"{filename!r} would be written outside {root} (resolves to {target}); "
            "file names must come from engine.paths.safe_stem"
        )
    return target
