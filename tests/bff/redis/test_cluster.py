"""Every Redis part on a Redis Cluster node: no command or script touches keys of two slots.

A node in cluster mode refuses with CROSSSLOT any multi-key command or script whose keys hash to
different slots, even when it serves every slot itself; so one node holding all 16,384 slots checks
the key layout (bff.redis.link) as a real cluster would, with a plain client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bff.cache import Entry
from bff.events import Event
from bff.idempotency import ClaimState
from bff.persisted import sha256_hex
from bff.rate_limit import RateLimiter
from bff.redis.cache import SharedCacheStorage
from bff.redis.events import RedisEventBus
from bff.redis.idempotency import RedisIdempotencyStore
from bff.redis.link import RedisLink, stop_tasks
from bff.redis.queries import RedisQueryStore
from bff.redis.webhooks import RedisWebhookQueue
from bff.shared import shared_state
from bff.webhooks import Acceptance
from tests.support.chinook import chinook_settings
from tests.support.redis import RedisServer, free_port, prefix


@pytest.fixture(scope="module")
async def cluster_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisServer]:
    """One redis-server in cluster mode serving every slot."""
    workdir = tmp_path_factory.mktemp("cluster")
    # The cluster bus port defaults to the port + 10000, past 65535 for a high free port: name one.
    args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-port",
        str(free_port()),
    ]
    server = RedisServer(free_port(), args=args, workdir=workdir)
    await server.start()
    client = server.client()
    try:
        await client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        async with asyncio.timeout(10):
            while b"cluster_state:ok" not in await client.execute_command("CLUSTER", "INFO"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        yield server
    finally:
        await client.aclose()
        await server.stop()


@pytest.fixture
async def link(cluster_node: RedisServer) -> AsyncIterator[RedisLink]:
    made = RedisLink(cluster_node.url, prefix=prefix("cluster"), timeout_s=1.0)
    yield made
    await made.aclose()


async def test_cache_bus_idempotency_and_apq_are_cluster_safe(link: RedisLink) -> None:
    """Cache writes and reads, a bus round trip, an idempotency claim and completion and APQ registration
    with eviction all run on a cluster node."""
    cache = SharedCacheStorage(link, l1_max_entries=10, l1_ttl_s=1.0)
    now = time.time()
    await cache.set_many(
        {"a/b/1": Entry(1, now, now + 60), "c/d/2": Entry(2, now, now + 60)}, keep_until=now + 60
    )
    cache.l1.clear()
    assert [e.value if e else None for e in await cache.get_many(["a/b/1", "c/d/2"])] == [1, 2]
    await cache.delete_many(["a/b/1", "c/d/2"])

    bus = RedisEventBus(link, max_len=100)
    await bus.start()
    try:
        async with bus.subscribe("t") as events:
            await bus.publish(Event("t", {"n": 1}))
            async with asyncio.timeout(5):
                assert (await anext(events)).data == {"n": 1}
    finally:
        await bus.aclose()

    keys = RedisIdempotencyStore(link, ttl_s=60, lease_s=5)
    assert (await keys.claim("k", "fp")).state is ClaimState.NEW
    await keys.complete("k", {"ok": True})
    assert (await keys.claim("k", "fp")).state is ClaimState.DONE

    documents = RedisQueryStore(link, max_entries=2)
    for n in range(4):
        await documents.set(sha256_hex(f"{{ q{n} }}"), f"{{ q{n} }}")
    assert await link.client.zcard(documents.lru) == 2


async def test_webhook_accept_and_publish_scripts_are_cluster_safe(link: RedisLink) -> None:
    """The accept script (id + queue) and the publish script (queue + bus log) run on a cluster node."""
    bus = RedisEventBus(link, max_len=100)
    await bus.start()
    queue = RedisWebhookQueue(link, queue_size=10, ttl_s=60, claim_idle_s=5, log_max_len=100)
    worker = asyncio.create_task(queue.run())
    try:
        async with bus.subscribe("charge.succeeded") as events:
            event = Event("charge.succeeded", {"charge": {"id": 1}}, id="msg_1")
            assert await queue.accept("webhook:payments:msg_1", "fp", [event]) is Acceptance.ACCEPTED
            async with asyncio.timeout(5):
                assert (await anext(events)).id == "msg_1"
    finally:
        await stop_tasks([worker])
        await bus.aclose()


async def test_rate_limits_are_cluster_safe(cluster_node: RedisServer) -> None:
    """The limits library's moving window over the app's Redis pool runs on a cluster node."""
    settings = chinook_settings(
        {"BFF_REDIS_URL": cluster_node.url, "BFF_REDIS_PREFIX": prefix("cl"), "BFF_RATE_LIMIT": "2/minute"}
    )
    state = shared_state(settings)
    assert state.link is not None
    try:
        limiter = RateLimiter.from_settings(settings, storage=state.rate_limit_storage)
        assert limiter is not None
        assert [await limiter.hit("k") is None for _ in range(3)] == [True, True, False]
        assert limiter.failed_open == 0
    finally:
        await state.link.aclose()
