"""The shared entity cache: a hit across instances, invalidation reaching every first level, and a
cache that is bypassed, never an error, while Redis is down."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

import bff.redis.cache
from bff.cache import EntityCache, Entry
from bff.redis.cache import SharedCacheStorage
from bff.redis.link import DOWN_S, stop_tasks
from tests.bff.redis.conftest import LinkFactory
from tests.support.redis import RedisServer

WAIT_S = 5.0


@asynccontextmanager
async def instance(links: LinkFactory, *, l1_ttl_s: float = 60.0) -> AsyncIterator[SharedCacheStorage]:
    """A storage as one instance has it, listening to invalidations."""
    storage = SharedCacheStorage(links(), l1_max_entries=100, l1_ttl_s=l1_ttl_s)
    task = asyncio.create_task(storage.listen())
    try:
        async with asyncio.timeout(WAIT_S):
            await storage.subscribed.wait()
        yield storage
    finally:
        await stop_tasks([task])


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 - another instance's message is the event
            await asyncio.sleep(0.005)


def entry(value: object, lifetime_s: float = 60.0) -> Entry:
    now = time.time()
    return Entry(value, now, now + lifetime_s)


async def test_an_entry_stored_by_one_instance_is_a_hit_on_another(links: LinkFactory) -> None:
    """A's store reaches Redis; B finds it there (freshness intact) and keeps a copy in its first level."""
    async with instance(links) as a, instance(links) as b:
        await a.set_many({"catalog/tracks/3": entry({"id": 3})}, keep_until=time.time() + 120)
        (found,) = await b.get_many(["catalog/tracks/3"])
        assert found is not None
        assert found.value == {"id": 3}
        assert found.fresh_until > time.time()
        assert (await b.l1.get_many(["catalog/tracks/3"]))[0] is not None


async def test_invalidation_on_one_instance_empties_every_first_level(links: LinkFactory) -> None:
    """B deletes a key A holds in its first level: A drops it as the message arrives, and finds none."""
    async with instance(links) as a, instance(links) as b:
        await a.set_many({"sales/invoices/1": entry({"total": 1})}, keep_until=time.time() + 120)
        assert (await b.get_many(["sales/invoices/1"]))[0] is not None
        await b.delete_many(["sales/invoices/1"])
        await until(lambda: len(a.l1) == 0)
        assert await a.get_many(["sales/invoices/1"]) == [None]
        assert await b.get_many(["sales/invoices/1"]) == [None]


async def test_a_version_bump_on_one_instance_moves_every_instance_on(links: LinkFactory) -> None:
    """The per-resource version of whole answers (EntityCache) is shared: a mutation's bump on B is the
    version A uses next, so A's answers under the old version are gone for both."""
    async with instance(links) as a_storage, instance(links) as b_storage:
        a, b = EntityCache(a_storage), EntityCache(b_storage)
        first = await a.version("sales", "invoices")
        assert await b.version("sales", "invoices") == first
        await b.invalidate([], resources=[("sales", "invoices")])
        await until(lambda: len(a_storage.l1) == 0)
        second = await a.version("sales", "invoices")
        assert second != first
        assert await b.version("sales", "invoices") == second


async def test_the_first_level_keeps_entries_at_most_its_ttl(links: LinkFactory) -> None:
    """An entry read from Redis stays in the first level no longer than BFF_CACHE_L1_TTL_MS."""
    async with instance(links, l1_ttl_s=0.2) as a, instance(links) as b:
        await b.set_many({"k": entry(1)}, keep_until=time.time() + 120)
        await a.get_many(["k"])
        assert len(a.l1) == 1
        await asyncio.sleep(0.3)
        assert await a.l1.get_many(["k"]) == [None]


async def test_without_redis_the_cache_is_bypassed_not_an_error(
    redis_server: RedisServer, links: LinkFactory
) -> None:
    """Redis down: lookups answer from the first level or miss, stores go to the first level only; once
    it is back the listener resubscribes (first level cleared) and both levels work again."""
    async with instance(links) as a:
        await a.set_many({"kept": entry("v")}, keep_until=time.time() + 120)
        await redis_server.stop()
        assert [e.value if e else None for e in await a.get_many(["kept", "other"])] == ["v", None]
        await a.set_many({"new": entry("n")}, keep_until=time.time() + 120)
        await a.delete_many(["kept"])
        assert [e.value if e else None for e in await a.get_many(["kept", "new"])] == [None, "n"]
        await redis_server.start()
        await until(lambda: a.subscribed.is_set())
        await a.set_many({"after": entry("a")}, keep_until=time.time() + 120)
        async with instance(links) as b:
            assert [e.value if e else None for e in await b.get_many(["after"])] == ["a"]


async def test_writes_that_missed_redis_are_replayed_as_invalidations(links: LinkFactory) -> None:
    """A delete made while A counts Redis as down is replayed once it answers: B, whose copy came from
    Redis, no longer finds the entry (no stale data after an outage)."""
    async with instance(links) as a, instance(links) as b:
        await b.set_many({"playlists/playlists/1": entry("old")}, keep_until=time.time() + 120)
        a.link.failed(ConnectionError("simulated outage"))
        await a.delete_many(["playlists/playlists/1"])
        assert (await b.get_many(["playlists/playlists/1"]))[0] is not None, "not replayed yet"
        await asyncio.sleep(DOWN_S)
        await a.set_many({"unrelated": entry(1)}, keep_until=time.time() + 120)  # the next write replays
        await until(lambda: len(b.l1) == 0)
        assert await b.get_many(["playlists/playlists/1"]) == [None]


async def test_too_many_missed_writes_flush_the_shared_level(
    links: LinkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_PENDING remembered invalidations, the whole shared level of the prefix is flushed once
    Redis answers, and every first level is cleared."""
    monkeypatch.setattr(bff.redis.cache, "MAX_PENDING", 2)
    async with instance(links) as a, instance(links) as b:
        await b.set_many({f"k{i}": entry(i) for i in range(5)}, keep_until=math.inf)
        await b.get_many([f"k{i}" for i in range(5)])
        a.link.failed(ConnectionError("simulated outage"))
        await a.delete_many(["x", "y", "z"])
        await asyncio.sleep(DOWN_S)
        await a.delete_many(["w"])
        await until(lambda: len(b.l1) == 0)
        assert await b.get_many([f"k{i}" for i in range(5)]) == [None] * 5
