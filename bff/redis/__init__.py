"""Shared state in Redis, behind the protocols the in-process parts implement (``BFF_REDIS_URL``).

:mod:`bff.shared` picks these or the in-process ones; each module says what it keeps in Redis, how
its keys are laid out (:mod:`bff.redis.link`) and what it does when Redis cannot be reached.
"""

from bff.redis.cache import SharedCacheStorage
from bff.redis.events import RedisEventBus
from bff.redis.idempotency import RedisIdempotencyStore
from bff.redis.link import RedisLink, RedisUnavailable
from bff.redis.queries import RedisQueryStore
from bff.redis.webhooks import RedisWebhookQueue

__all__ = [
    "RedisEventBus",
    "RedisIdempotencyStore",
    "RedisLink",
    "RedisQueryStore",
    "RedisUnavailable",
    "RedisWebhookQueue",
    "SharedCacheStorage",
]
