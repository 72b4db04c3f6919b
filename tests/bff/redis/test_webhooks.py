"""Durable webhooks: a 202 means the delivery is in Redis; any instance's worker publishes it once,
taking over what a dead worker held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bff.events import Event
from bff.redis.events import RedisEventBus
from bff.redis.link import RedisLink, stop_tasks
from bff.redis.webhooks import GROUP, RedisWebhookQueue
from bff.webhooks import Acceptance, WebhookQueueUnavailable
from tests.bff.redis.conftest import LinkFactory
from tests.support.redis import RedisServer

WAIT_S = 10.0


def queue(link: RedisLink, *, queue_size: int = 100, claim_idle_s: float = 30.0) -> RedisWebhookQueue:
    return RedisWebhookQueue(
        link, queue_size=queue_size, ttl_s=60, claim_idle_s=claim_idle_s, log_max_len=1_000
    )


@asynccontextmanager
async def working(worker: RedisWebhookQueue) -> AsyncIterator[RedisWebhookQueue]:
    """``worker`` running its loop."""
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await stop_tasks([task])


@asynccontextmanager
async def bus_of(link: RedisLink) -> AsyncIterator[RedisEventBus]:
    bus = RedisEventBus(link, max_len=1_000)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.aclose()


async def take(events: AsyncIterator[Event], count: int) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(WAIT_S):
        while len(out) < count:
            out.append(await anext(events))
    return out


def charge(n: int) -> list[Event]:
    return [Event("charge.succeeded", {"charge": {"id": n}}, id=f"msg_{n}")]


async def test_accepting_records_the_id_and_bounds_the_queue(links: LinkFactory) -> None:
    """Accepted once; the same body again is a duplicate, another body a conflict; beyond the queue's
    size (nothing published yet) busy, and nothing is recorded for a busy delivery."""
    a = queue(links(), queue_size=1)
    assert await a.accept("webhook:payments:m1", "fp1", charge(1)) is Acceptance.ACCEPTED
    assert await a.accept("webhook:payments:m1", "fp1", charge(1)) is Acceptance.DUPLICATE
    assert await a.accept("webhook:payments:m1", "fp2", charge(1)) is Acceptance.CONFLICT
    assert await a.accept("webhook:payments:m2", "fp", charge(2)) is Acceptance.BUSY
    assert await a.link.client.exists(a.link.tagged("events", "webhook:payments:m2")) == 0


async def test_any_instances_worker_publishes_each_delivery_once(links: LinkFactory) -> None:
    """Deliveries accepted on A are published by the workers of A and B together, each exactly once,
    reaching the subscribers of both instances."""
    a_link, b_link = links(), links()
    async with (
        bus_of(a_link) as a_bus,
        bus_of(b_link) as b_bus,
        a_bus.subscribe("charge.succeeded") as on_a,
        b_bus.subscribe("charge.succeeded") as on_b,
        working(queue(a_link)) as a,
        working(queue(b_link)) as b,
    ):
        for n in range(10):
            assert await a.accept(f"webhook:payments:m{n}", "fp", charge(n)) is Acceptance.ACCEPTED
        ids_a = sorted(e.data["charge"]["id"] for e in await take(on_a, 10))
        ids_b = sorted(e.data["charge"]["id"] for e in await take(on_b, 10))
        assert ids_a == ids_b == list(range(10))
        assert a.processed + b.processed == 10
        assert await a_link.client.xlen(a.stream) == 0, "published deliveries are deleted"


async def test_a_delivery_a_dead_worker_held_is_taken_over_and_published_once(links: LinkFactory) -> None:
    """A consumer that read a delivery and died (never acknowledged it) loses it to another worker once
    it has been idle past the claim time; the dead one, were it only slow, could not publish it again."""
    link = links()
    ghost = queue(link, claim_idle_s=0.2)
    await ghost.accept("webhook:payments:m1", "fp", charge(1))
    await link.client.xgroup_create(ghost.stream, GROUP, id="0", mkstream=True)
    taken = await link.client.xreadgroup(GROUP, ghost.consumer, {ghost.stream: ">"}, count=1)
    ((_stream, [(entry_id, fields)]),) = taken.items() if isinstance(taken, dict) else taken
    async with (
        bus_of(link) as bus,
        bus.subscribe("charge.succeeded") as events,
        working(queue(links(), claim_idle_s=0.2)) as rescuer,
    ):
        (event,) = await take(events, 1)
        assert event.id == "msg_1"
        assert rescuer.taken_over == 1
        await ghost._process(entry_id.decode(), fields)  # the slow owner wakes up
        assert ghost.processed == 0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await anext(events)
    assert await link.client.xlen(bus.stream) == 1


async def test_without_redis_deliveries_are_refused_for_a_retry(
    redis_server: RedisServer, links: LinkFactory
) -> None:
    """Redis down: accept raises WebhookQueueUnavailable (503 with Retry-After at the endpoint), so the
    sender retries; the worker waits and goes on once Redis is back."""
    link = links()
    async with working(queue(link)) as a:
        await redis_server.stop()
        try:
            with pytest.raises(WebhookQueueUnavailable) as refused:
                await a.accept("webhook:payments:m1", "fp", charge(1))
            assert refused.value.retry_after_s > 0
        finally:
            await redis_server.start()
        await asyncio.sleep(1.0)
        async with bus_of(link) as bus, bus.subscribe("charge.succeeded") as events:
            assert await a.accept("webhook:payments:m1", "fp", charge(1)) is Acceptance.ACCEPTED
            assert [e.id for e in await take(events, 1)] == ["msg_1"]
