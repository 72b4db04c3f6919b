"""The Redis event bus: every subscriber of every instance gets every event once, in order, across a
Redis restart; subscribers' queues stay bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bff.events import Event, SubscriberOverflow
from bff.redis.events import RedisEventBus, encode_event
from tests.bff.redis.conftest import LinkFactory
from tests.support.redis import RedisServer

WAIT_S = 10.0


@asynccontextmanager
async def instance(links: LinkFactory, *, queue_size: int = 256) -> AsyncIterator[RedisEventBus]:
    """A started bus as one instance has it."""
    bus = RedisEventBus(links(), queue_size=queue_size, max_len=1_000)
    await bus.start()
    try:
        async with asyncio.timeout(WAIT_S):
            await bus.reading.wait()
        yield bus
    finally:
        await bus.aclose()


async def take(events: AsyncIterator[Event], count: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(WAIT_S):
        while len(out) < count:
            out.append(await anext(events))
    return out


async def nothing_more(events: AsyncIterator[Event]) -> None:
    """No further event arrives within a short while."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await anext(events)


async def test_every_subscriber_on_every_instance_gets_each_event_once_in_order(links: LinkFactory) -> None:
    """Events published on A and B reach the subscribers of both, each once, in one order for all."""
    async with (
        instance(links) as a,
        instance(links) as b,
        a.subscribe("x", "y") as on_a,
        b.subscribe("x", "y") as on_b,
        b.subscribe("y") as only_y,
    ):
        for n in range(20):
            await (a if n % 2 else b).publish(Event("x" if n % 3 else "y", {"n": n}))
        seen_a = [e.data["n"] for e in await take(on_a, 20)]
        seen_b = [e.data["n"] for e in await take(on_b, 20)]
        assert seen_a == seen_b == list(range(20))
        assert [e.data["n"] for e in await take(only_y, 7)] == [n for n in range(20) if n % 3 == 0]
        await nothing_more(on_a)
        await nothing_more(on_b)


async def test_events_before_subscribing_are_not_delivered(links: LinkFactory) -> None:
    """A subscriber sees events published after it subscribed, not the log's history."""
    async with instance(links) as a:
        await a.publish(Event("x", {"n": 1}))
        async with instance(links) as b, b.subscribe("x") as events:
            await a.publish(Event("x", {"n": 2}))
            assert [e.data for e in await take(events, 1)] == [{"n": 2}]


async def test_an_event_appended_twice_is_delivered_once(links: LinkFactory) -> None:
    """A publish retried after its answer was lost appends the same event again: delivered once."""
    async with instance(links) as a, a.subscribe("x") as events:
        twice = Event("x", {"n": 1})
        await a.link.client.xadd(a.stream, encode_event(twice))  # type: ignore[arg-type]
        await a.link.client.xadd(a.stream, encode_event(twice))  # type: ignore[arg-type]
        await a.publish(Event("x", {"n": 2}))
        assert [e.data["n"] for e in await take(events, 2)] == [1, 2]


async def test_a_slow_subscriber_is_dropped_not_buffered(links: LinkFactory) -> None:
    """Queues stay bounded per subscriber as without Redis: a reader that falls behind is dropped."""
    async with instance(links, queue_size=2) as a, a.subscribe("x") as slow:
        for n in range(5):
            await a.publish(Event("x", {"n": n}))
        await asyncio.sleep(0.3)
        with pytest.raises(SubscriberOverflow):
            await take(slow, 5)
        assert a.dropped_subscribers == 1


async def test_the_bus_survives_a_redis_restart(redis_server: RedisServer, links: LinkFactory) -> None:
    """Redis killed and restarted (empty): events published on A meanwhile wait in A's outbox and are
    delivered after, in order, once; both readers reconnect by themselves and go on."""
    async with (
        instance(links) as a,
        instance(links) as b,
        a.subscribe("x") as on_a,
        b.subscribe("x") as on_b,
    ):
        await a.publish(Event("x", {"n": 0}))
        assert [e.data["n"] for e in await take(on_b, 1)] == [0]
        await redis_server.stop(kill=True)
        for n in (1, 2):
            await a.publish(Event("x", {"n": n}))  # to the outbox; no error
        await redis_server.start()
        await b.publish(Event("x", {"n": 3}))
        assert sorted(e.data["n"] for e in await take(on_b, 3)) == [1, 2, 3]
        assert next(e.data["n"] for e in await take(on_a, 4)) == 0
        await nothing_more(on_a)
        await nothing_more(on_b)
        assert a.lost == b.lost == 0
