"""Automatic persisted queries shared by every instance, bounded in Redis.

A document registered on one instance runs by hash on every other. In Redis a document is
``{<prefix>:apq}:doc:<sha256>``, and the sorted set ``{<prefix>:apq}:lru`` holds each hash with the
time it was last registered or used; registering one past ``BFF_APQ_CACHE_SIZE`` removes the least
recently used documents in the same script (both keys share a tag, so it is Cluster-safe). Documents
are bounded in size by ``BFF_MAX_BODY_BYTES``, so the store is bounded in bytes too.

A document never changes under its hash, so each instance also keeps the documents it saw in a
small in-process LRU (:data:`LOCAL_BYTES`), which no invalidation concerns.

When Redis cannot be reached, the store is bypassed: a hash the process does not know is
``PERSISTED_QUERY_NOT_FOUND`` (the client then sends the query with it, as APQ clients do), and a
registration is kept in the process only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bff.persisted import MemoryQueryStore
from bff.redis.link import RedisLink, RedisUnavailable

__all__ = ["LOCAL_BYTES", "RedisQueryStore"]

logger = logging.getLogger("bff.redis.queries")

LOCAL_BYTES: Final = 8_000_000
"""Most bytes of documents each process also keeps in memory."""

_REGISTER: Final = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #gone, 2 do
    redis.call('DEL', ARGV[5] .. gone[i])
  end
end
return over
"""
"""KEYS: the document's key, the LRU set. ARGV: document, time, hash, bound, document key prefix.

The prefix builds the keys of evicted documents, which share the LRU set's hash tag (so their slot)."""


class RedisQueryStore:
    """A :class:`~bff.persisted.QueryStore` in Redis of at most ``max_entries`` documents (module doc)."""

    def __init__(self, link: RedisLink, *, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.link = link
        self.max_entries = max_entries
        self.lru = link.tagged("apq", "lru")
        self._doc_prefix = link.tagged("apq", "doc") + ":"
        self._local = MemoryQueryStore(LOCAL_BYTES)
        self._register = link.client.register_script(_REGISTER)
        self._clock = clock

    async def get(self, sha256: str) -> str | None:
        """The document with this hash: from the process, else from Redis (``None`` when neither has
        it, or Redis cannot be reached)."""
        document = await self._local.get(sha256)
        if document is not None:
            return document

        async def read(redis: Redis) -> list[Any]:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.get(self._doc_prefix + sha256)
                pipe.zadd(self.lru, {sha256: self._clock()}, xx=True)
                return list(await pipe.execute())

        try:
            raw, _touched = await self.link.run(read)
        except (RedisUnavailable, RedisError) as exc:
            logger.debug("APQ lookup of %s without redis: %s", sha256, exc)
            return None
        if raw is None:
            return None
        document = raw.decode() if isinstance(raw, bytes) else str(raw)
        await self._local.set(sha256, document)
        return document

    async def set(self, sha256: str, document: str) -> None:
        """Keep ``document`` in the process and in Redis (where the least recently used go first)."""
        await self._local.set(sha256, document)
        keys = [self._doc_prefix + sha256, self.lru]
        args: list[str | float] = [document, self._clock(), sha256, self.max_entries, self._doc_prefix]
        try:
            await self.link.run(lambda redis: self._register(keys=keys, args=args, client=redis))
        except (RedisUnavailable, RedisError) as exc:
            logger.info("APQ document %s kept in this process only: %s", sha256, exc)
