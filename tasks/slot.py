"""Holding one slot of a Prefect global concurrency limit without Prefect's 2-second waits.

Prefect's `concurrency()` asks the API for the slot through a client that, when the SQLite-backed
server answers 503 "database is locked" (it does while it still writes the previous flow run's
events), waits a fixed `2**try` = 2 s before asking again: a warm run's store took 2.5 s instead of
0.5 s one time in two. Here the same public client calls (increment/renew/decrement with a lease)
are made with the client's own retries off, and retried after 50 ms. While the slot is taken by
another writer (423 Locked) the server's Retry-After is honoured, at most 1 s at a time. The
lease is renewed while it is held, as Prefect does, so a crashed holder frees it within
`LEASE_SECONDS`.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

LEASE_SECONDS = 300.0  # a dead holder's slot comes free after this long
RETRY_SECONDS = 0.05  # after an API error (503, connection reset)
MAX_WAIT_SECONDS = 1.0  # the longest single wait for a slot another writer holds


@contextmanager
def held_slot(name: str) -> Iterator[None]:
    """Hold one slot of the global concurrency limit `name` (which must exist) while inside."""
    import prefect.settings
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        lease = _acquire(client, name, prefect.settings)
        stop = threading.Event()
        context = contextvars.copy_context()  # this run's API settings, in the renewing thread
        renewer = threading.Thread(target=context.run, args=(_renew, lease, stop), daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=5)
            _release(client, lease, prefect.settings)


def _acquire(client, name: str, settings) -> str:
    """The lease id of one slot of `name`, asking again until the server grants it."""
    import httpx

    while True:
        try:
            reply = _call(client.increment_concurrency_slots_with_lease, [name], 1, "concurrency",
                          LEASE_SECONDS, settings=settings)  # fmt: skip
            return reply.json()["lease_id"]
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:  # 423: another writer holds it
                if exc.response.status_code < 500:
                    raise
                time.sleep(RETRY_SECONDS)
                continue
            after = float(exc.response.headers.get("Retry-After", MAX_WAIT_SECONDS))
            time.sleep(min(max(after, RETRY_SECONDS), MAX_WAIT_SECONDS))
        except httpx.TransportError:
            time.sleep(RETRY_SECONDS)


def _release(client, lease: str, settings, attempts: int = 20) -> None:
    """Give the slot back, asking again after 50 ms while the API errs (else it stays taken
    until the lease runs out)."""
    import httpx

    for attempt in range(attempts):
        try:
            _call(client.release_concurrency_slots_with_lease, lease, settings=settings)
            return
        except (httpx.HTTPStatusError, httpx.TransportError):
            if attempt == attempts - 1:
                raise
            time.sleep(RETRY_SECONDS)


def _call(method, *args, settings):
    """`method(*args)` of the Prefect client with its own retries off (we retry sooner)."""
    with settings.temporary_settings({settings.PREFECT_CLIENT_MAX_RETRIES: 0}):
        return method(*args)


def _renew(lease: str, stop: threading.Event) -> None:
    """Renew the lease every third of its duration until `stop` (a client of this thread's own)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while not stop.wait(LEASE_SECONDS / 3):
            try:
                client.renew_concurrency_lease(lease, LEASE_SECONDS)
            except Exception:  # noqa: BLE001 - a failed renewal only shortens the lease; retry
                continue
