"""The `mmflow-store` slot (tasks/slot.py): one holder at a time, given back at once, and an API
error answered within milliseconds instead of Prefect's 2-second retry."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from engine.settings import STORE_CONCURRENCY_LIMIT
from tasks import slot
from tasks.backtest import ensure_store_limit


@pytest.fixture
def limit():
    import prefect.settings

    ensure_store_limit(prefect.settings.PREFECT_API_URL.value())
    return STORE_CONCURRENCY_LIMIT


def active_slots(name: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name).active_slots


def test_one_holder_at_a_time_and_the_slot_comes_back(limit):
    inside, overlaps, order = [], [], []

    def write(who: str) -> None:
        with slot.held_slot(limit):
            inside.append(who)
            overlaps.append(len(inside))
            order.append(who)
            time.sleep(0.3)
            inside.remove(who)

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(3)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(order) == ["w0", "w1", "w2"] and max(overlaps) == 1
    assert time.perf_counter() - started < 0.9 + 3 * slot.MAX_WAIT_SECONDS
    assert active_slots(limit) == 0


def test_an_api_error_is_retried_after_milliseconds(limit, monkeypatch):
    from prefect.client.orchestration import SyncPrefectClient

    real = SyncPrefectClient.increment_concurrency_slots_with_lease
    calls = []

    def locked_once(self, *args, **kwargs):
        calls.append(time.perf_counter())
        if len(calls) == 1:  # what the SQLite-backed server answers while it is busy
            request = httpx.Request("POST", "http://prefect/increment-with-lease")
            reply = httpx.Response(503, request=request, text="database is locked")
            raise httpx.HTTPStatusError("503", request=request, response=reply)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "increment_concurrency_slots_with_lease", locked_once)
    started = time.perf_counter()
    with slot.held_slot(limit):
        assert active_slots(limit) == 1
    assert len(calls) == 2 and calls[1] - calls[0] < 0.5
    assert time.perf_counter() - started < 1.5
    assert active_slots(limit) == 0
