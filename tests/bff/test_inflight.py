"""In-flight de-duplication and the bulkhead, in isolation."""

from __future__ import annotations

import asyncio

import pytest

from bff.downstream.bulkhead import Bulkhead
from bff.downstream.inflight import InFlight
from bff.errors import DownstreamUnavailable


async def test_concurrent_equal_keys_share_one_run() -> None:
    """Ten callers with one key run the function once and all get its result."""
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    flights: InFlight[int] = InFlight()
    results = await asyncio.gather(*(flights.run("k", fetch) for _ in range(10)))
    assert results == [42] * 10
    assert calls == 1
    assert len(flights) == 0


async def test_last_waiter_leaving_cancels_the_shared_run() -> None:
    """When every caller stops waiting, the shared run is cancelled rather than left behind."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang() -> int:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    flights: InFlight[int] = InFlight()
    waiter = asyncio.ensure_future(flights.run("k", hang))
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(cancelled.wait(), 1)
    assert len(flights) == 0


async def test_bulkhead_queues_then_rejects() -> None:
    """One slot and one queue place: the third concurrent call fails at once."""
    bulkhead = Bulkhead("catalog", max_concurrency=1, max_queue=1)
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "done"

    first = asyncio.ensure_future(bulkhead.call(work))
    second = asyncio.ensure_future(bulkhead.call(work))
    await asyncio.sleep(0)
    with pytest.raises(DownstreamUnavailable):
        await bulkhead.call(work)
    release.set()
    assert await asyncio.gather(first, second) == ["done", "done"]
