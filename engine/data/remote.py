"""Data any worker can reach: `--data` and the workbook cache as URLs that pyarrow's filesystems
understand (`file://`, `s3://`, `gs://`, `hdfs://`, ...), so a Dask cluster on several machines
reads from object storage instead of a folder every machine must mount at the same path.

* A URL to a Parquet file or a folder of them is read where it is; the source's files stay URLs,
  so a worker on another machine opens them itself. The data hash is over the files' bytes.
* A URL to a workbook is fetched once into the local cache and converted as a local workbook.
* With a cache URL (`--cache URL`, $MMFLOW_PARQUET_CACHE), a workbook's Parquet cache is also
  copied to `<cache URL>/<sha256>/`, and the source reads from there: remote workers then read
  the cache, never the workbook.

S3 options (endpoint, region) come from the URL's query (`?endpoint_override=...`) or the usual
AWS environment variables.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from engine.data.errors import InputError

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
CHUNK = 1 << 20


def is_url(text: str | Path) -> bool:
    """`scheme://...` (a local path is not a URL)."""
    return isinstance(text, str) and bool(URL.match(text))


def resolve(url: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a URL; InputError when pyarrow cannot reach it."""
    try:
        return pafs.FileSystem.from_uri(url)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot open {url}: {exc}") from exc


def join(url: str, name: str) -> str:
    """`url/name`, keeping the URL's query (e.g. an S3 endpoint) at the end."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/" + name
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{path}{query}"


def parquet_files(url: str) -> dict[str, str]:
    """name -> URL of the Parquet file at `url`, or of each one in the folder at `url`."""
    fs, path = resolve(url)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{url} not found; give a .parquet file or a folder of them")
    if info.type == pafs.FileType.File:
        return {PurePosixPath(path).name: url}
    entries = fs.get_file_info(pafs.FileSelector(path))
    names = sorted(PurePosixPath(e.path).name for e in entries if e.type == pafs.FileType.File)
    names = [n for n in names if n.lower().endswith(".parquet")]
    if not names:
        raise InputError(f"folder {url} has no .parquet files")
    return {name: join(url, name) for name in names}


def sha256(url: str) -> str:
    """sha256 of a remote file's bytes."""
    fs, path = resolve(url)
    digest = hashlib.sha256()
    try:
        with fs.open_input_stream(path) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read {url}: {exc}") from exc
    return digest.hexdigest()


def fetch(url: str, folder: Path) -> Path:
    """A local copy of a remote file (a workbook), kept in `folder` under its content hash."""
    digest = sha256(url)
    name = PurePosixPath(resolve(url)[1]).name
    local = folder / digest / name
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{name}.partial")
        fs, path = resolve(url)
        pafs.copy_files(path, str(partial), source_filesystem=fs,
                        destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
        partial.replace(local)
    return local


def publish(folder: Path, url: str) -> str:
    """Copy a local cache folder to `url` (unless its manifest is there already); its URL."""
    fs, path = resolve(url)
    if fs.get_file_info(f"{path}/manifest.json").type != pafs.FileType.File:
        fs.create_dir(path, recursive=True)
        for file in sorted(folder.iterdir(), key=lambda f: f.name == "manifest.json"):
            if file.is_file():  # the manifest last: its presence means the copy is complete
                pafs.copy_files(str(file), f"{path}/{file.name}",
                                source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)  # fmt: skip
    return url
