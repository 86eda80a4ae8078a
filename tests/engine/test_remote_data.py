"""Data any worker can reach: Parquet and workbooks read from URLs (file://, and s3:// against a
local S3-compatible server started by the test), and a workbook's cache published to a URL."""

from __future__ import annotations

import socket

import pandas as pd
import pytest

from engine.data.source import open_data
from engine.runner import run_backtest

V2 = "v2_price_follow_qty_cooldown"


def trades_of(run) -> pd.DataFrame:
    return pd.concat([r.trades.assign(security=r.security) for r in run.results], ignore_index=True)


def test_a_file_url_reads_like_the_path(shared_data):
    folder = shared_data / "parquet"
    local = run_backtest(folder, V2, securities=["SPINNEYS", "MODON"])
    remote = run_backtest(folder.as_uri(), V2, securities=["SPINNEYS", "MODON"])
    assert remote.data_hash == local.data_hash and remote.data_source == folder.as_uri()
    pd.testing.assert_frame_equal(trades_of(remote), trades_of(local), check_exact=True)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a free local port; yields a function giving s3:// URLs to a bucket."""
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():  # fmt: skip
        mp.setenv(key, value)
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True
    )
    fs.create_dir("ticks")
    query = f"endpoint_override=127.0.0.1%3A{port}&scheme=http"
    try:
        yield fs, lambda key: f"s3://ticks/{key}?{query}"
    finally:
        server.stop()
        mp.undo()


def test_parquet_on_s3_gives_the_trades_of_the_local_run(s3, shared_data, tmp_path):
    fs, url = s3
    import pyarrow.fs as pafs

    for name in ("spinneys", "modon"):
        pafs.copy_files(str(shared_data / "parquet" / f"{name}.parquet"),
                        f"ticks/parquet/{name}.parquet", destination_filesystem=fs)  # fmt: skip
        (tmp_path / f"{name}.parquet").symlink_to(shared_data / "parquet" / f"{name}.parquet")
    local = run_backtest(tmp_path, V2)
    remote = run_backtest(url("parquet"), V2)
    assert remote.data_hash == local.data_hash
    pd.testing.assert_frame_equal(trades_of(remote), trades_of(local), check_exact=True)


def test_a_workbook_cache_published_to_s3_is_what_workers_read(s3, shared_data, tmp_path):
    fs, url = s3
    workbook = shared_data / "xlsx" / "EMAAR_10k.xlsx"
    source = open_data(str(workbook), cache_dir=url("cache"))
    [file] = source._files.values()
    assert file.startswith("s3://ticks/cache/") and "endpoint_override" in file
    assert fs.get_file_info(file.split("?")[0][len("s3://") :]).size > 0
    local = run_backtest(workbook, V2)
    remote = run_backtest(source, V2)
    pd.testing.assert_frame_equal(trades_of(remote), trades_of(local), check_exact=True)
