"""Where the state that instances share lives: in the process, or in Redis with ``BFF_REDIS_URL``.

=====================  ==========================  ============================================
part                   in the process (default)    with ``BFF_REDIS_URL``
=====================  ==========================  ============================================
entity cache           MemoryStorage               SharedCacheStorage: memory first, Redis second
event bus              InMemoryEventBus            RedisEventBus (a Stream)
idempotency keys       InMemoryIdempotencyStore    RedisIdempotencyStore (leases)
accepted webhooks      InMemoryWebhookQueue        RedisWebhookQueue (a consumer group)
rate-limit counters    ``limits`` memory storage   ``limits`` Redis storage over the same pool
APQ documents          MemoryQueryStore            RedisQueryStore (bounded LRU)
=====================  ==========================  ============================================

Every Redis part sits behind the protocol the in-process one implements, so nothing else in the kit
knows which is in use. What each does when Redis fails is in its module and README "When Redis
fails": the cache is bypassed, rate limits fail open, idempotent writes and webhooks fail closed
(503 with ``Retry-After``), the bus reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from limits.aio.storage import RedisStorage, Storage

from bff.cache import CacheObserver, CacheStorage, MemoryStorage
from bff.events import EventBus, InMemoryEventBus
from bff.idempotency import IdempotencyStore, InMemoryIdempotencyStore
from bff.persisted import QueryStore
from bff.redis.cache import SharedCacheStorage
from bff.redis.events import RedisEventBus
from bff.redis.idempotency import RedisIdempotencyStore
from bff.redis.link import RedisLink, stop_tasks
from bff.redis.queries import RedisQueryStore
from bff.redis.webhooks import RedisWebhookQueue
from bff.settings import Settings
from bff.webhooks import WebhookQueue

__all__ = ["REDIS", "SharedState", "shared_state"]

REDIS: Final = web.AppKey("bff.redis", RedisLink)
"""The app's Redis link, when ``BFF_REDIS_URL`` is set (``/readyz`` pings it)."""


@dataclass
class SharedState:
    """The shared parts of one app; :meth:`lifespan` runs their background work while it serves."""

    cache_storage: CacheStorage
    bus: EventBus
    idempotency: IdempotencyStore
    link: RedisLink | None = None
    webhook_queue: WebhookQueue | None = None
    """``None``: the webhook ingress builds its in-process queue over the bus and the store."""
    query_store: QueryStore | None = None
    """``None``: the in-process APQ store."""
    rate_limit_storage: Storage | None = None
    """``None``: the in-process ``limits`` storage (unless ``BFF_RATE_LIMIT_STORAGE_URL`` names one)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def rate_limit_available(self) -> Callable[[], bool]:
        """Whether the rate-limit storage is worth trying now (Redis not known to be down)."""
        link = self.link
        return (lambda: link.available) if link is not None else (lambda: True)

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: start the bus's reader and the cache's invalidation listener; on the way
        out stop them and close the Redis connections. Does not wait for Redis to answer."""
        if isinstance(self.bus, RedisEventBus):
            await self.bus.start()
        if isinstance(self.cache_storage, SharedCacheStorage):
            self._tasks.append(
                asyncio.create_task(self.cache_storage.listen(), name="bff-cache-invalidation")
            )
        try:
            yield
        finally:
            await stop_tasks(self._tasks)
            self._tasks.clear()
            if isinstance(self.idempotency, RedisIdempotencyStore):
                await self.idempotency.aclose()
            await self.bus.aclose()
            if self.link is not None:
                await self.link.aclose()


def shared_state(settings: Settings, *, cache_observer: CacheObserver | None = None) -> SharedState:
    """The shared parts ``settings`` configure (see the module docstring). Connects to nothing yet.

    ``cache_observer`` hears of the in-process cache level's stores and evictions (metrics).
    """
    link = RedisLink.from_settings(settings)
    if link is None:
        return SharedState(
            cache_storage=MemoryStorage(settings.cache_max_entries, observer=cache_observer),
            bus=InMemoryEventBus(queue_size=settings.subscription_queue_size),
            idempotency=InMemoryIdempotencyStore(
                ttl_s=settings.idempotency_ttl_s, max_keys=settings.idempotency_max_keys
            ),
        )
    assert settings.redis_url is not None
    return SharedState(
        link=link,
        cache_storage=SharedCacheStorage(
            link,
            l1_max_entries=settings.cache_max_entries,
            l1_ttl_s=settings.cache_l1_ttl_ms / 1000,
            l1_observer=cache_observer,
        ),
        bus=RedisEventBus(
            link, queue_size=settings.subscription_queue_size, max_len=settings.event_log_max_len
        ),
        idempotency=RedisIdempotencyStore(
            link, ttl_s=settings.idempotency_ttl_s, lease_s=settings.idempotency_lease_ms / 1000
        ),
        webhook_queue=RedisWebhookQueue(
            link,
            queue_size=settings.webhook_queue_size,
            ttl_s=settings.idempotency_ttl_s,
            claim_idle_s=settings.webhook_claim_idle_ms / 1000,
            log_max_len=settings.event_log_max_len,
        ),
        query_store=RedisQueryStore(link, max_entries=settings.apq_cache_size),
        rate_limit_storage=RedisStorage(
            _limits_uri(settings.redis_url.get_secret_value()),
            implementation="redispy",
            key_prefix=link.key("limits"),
            wrap_exceptions=True,
            # Typed as scalars by limits, passed to redis-py's client as is: the link's own pool.
            **_options(connection_pool=link.pool),
        ),
    )


def _limits_uri(url: str) -> str:
    """The ``limits`` storage URI of a redis-py URL (``unix://`` is ``async+redis+unix://`` there)."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


def _options(**options: Any) -> dict[str, Any]:
    return options
