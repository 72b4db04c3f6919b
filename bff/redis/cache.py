"""The entity cache shared by every instance: a small in-process first level over Redis.

:class:`SharedCacheStorage` is a :class:`~bff.cache.CacheStorage`, so :class:`~bff.cache.EntityCache`
and the downstream cache stage work on it unchanged (lifetimes, stale-if-error and the per-resource
versions of whole answers included).

- **Lookups** try the first level (a :class:`~bff.cache.MemoryStorage` of ``BFF_CACHE_MAX_ENTRIES``
  entries, each kept at most ``BFF_CACHE_L1_TTL_MS``), then Redis for the misses in one pipelined
  round trip; what Redis had is copied into the first level.
- **Writes** (stores, invalidations, version bumps) go to both levels, and publish the keys written
  on ``<prefix>:cache:invalidate`` in the same round trip; every other instance drops them from
  its first level as the message arrives, so a mutation on one instance is seen by the others'
  next lookups. A lookup that read Redis while an invalidation arrived does not fill the first
  level (it may have read the old value).
- In Redis an entry is the JSON ``[stored_at, fresh_until, keep_until, value]`` under
  ``<prefix>:cache:<key>``, expiring at ``keep_until`` (Redis drops it; nothing scans).

When Redis is unreachable the cache is bypassed, never an error: lookups use the first level alone
and stores go there only. An invalidation or a new version that could not reach Redis is remembered
(up to :data:`MAX_PENDING` keys; past that, the whole shared level is marked for flushing) and
replayed as a deletion once Redis answers again, so nothing a mutation invalidated during an outage
is served from Redis afterwards. (A plain store that misses Redis is not remembered: Redis keeps its
older copy until that copy's own lifetime ends, as any cache would.) The first level is cleared
whenever the invalidation channel (re)subscribes: messages may have been missed while it was down.
Between a missed message and that, an entry is served at most ``BFF_CACHE_L1_TTL_MS`` past its
invalidation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bff.cache import CacheObserver, Entry, MemoryStorage
from bff.redis.link import OUTAGE_ERRORS, RedisLink, RedisUnavailable, raise_if_cancelling

__all__ = ["MAX_PENDING", "SharedCacheStorage"]

logger = logging.getLogger("bff.redis.cache")

MAX_PENDING: Final = 10_000
"""Most keys whose invalidation waits for Redis to come back; past it the shared level is flushed."""
_RECONNECT_MAX_S: Final = 2.0
_SCAN_COUNT: Final = 1_000


class SharedCacheStorage:
    """A :class:`~bff.cache.CacheStorage` with a first level in the process and the shared one in
    Redis (see the module docstring). Run :meth:`listen` while the app serves."""

    def __init__(
        self,
        link: RedisLink,
        *,
        l1_max_entries: int,
        l1_observer: CacheObserver | None = None,
        l1_ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.l1_ttl_s = l1_ttl_s
        self.l1 = MemoryStorage(l1_max_entries if l1_ttl_s > 0 else 0, clock=clock, observer=l1_observer)
        self.channel = link.key("cache", "invalidate")
        self._clock = clock
        self._epoch = 0
        self._pending: set[str] = set()
        self._flush_all = False
        self.subscribed = asyncio.Event()
        """Set while the invalidation channel is subscribed (tests wait for it)."""

    def _key(self, key: str) -> str:
        return self.link.key("cache", key)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """The entries of ``keys``: from the first level, else from Redis (``None`` where absent)."""
        found = await self.l1.get_many(keys)
        missing = [index for index, entry in enumerate(found) if entry is None]
        if not missing or not self.link.available:
            return found
        epoch = self._epoch

        async def read(redis: Redis) -> list[Any]:
            async with redis.pipeline(transaction=False) as pipe:
                for index in missing:
                    pipe.get(self._key(keys[index]))
                return list(await pipe.execute())

        try:
            raw = await self.link.run(read)
        except RedisUnavailable:
            return found
        now = self._clock()
        for index, value in zip(missing, raw, strict=True):
            if value is None:
                continue
            try:
                stored_at, fresh_until, keep_until, data = json.loads(value)
            except (ValueError, TypeError):
                logger.warning("cache entry %s in redis is not ours; ignored", keys[index])
                continue
            entry = Entry(data, stored_at, math.inf if fresh_until is None else fresh_until)
            found[index] = entry
            kept = math.inf if keep_until is None else keep_until
            if epoch == self._epoch and self.l1_ttl_s > 0 and kept > now:
                await self.l1.set_many({keys[index]: entry}, keep_until=min(kept, now + self.l1_ttl_s))
        return found

    async def set_many(self, entries: Mapping[str, Entry], *, keep_until: float) -> None:
        """Store ``entries`` in both levels until ``keep_until``; other instances drop their copies."""
        if not entries:
            return
        if self.l1_ttl_s > 0:
            await self.l1.set_many(entries, keep_until=min(keep_until, self._clock() + self.l1_ttl_s))
        keep = None if math.isinf(keep_until) else keep_until
        payloads = {
            self._key(key): json.dumps(
                [
                    entry.stored_at,
                    None if math.isinf(entry.fresh_until) else entry.fresh_until,
                    keep,
                    entry.value,
                ],
                separators=(",", ":"),
            )
            for key, entry in entries.items()
        }

        def writes(pipe: Any) -> None:
            for redis_key, payload in payloads.items():
                if keep is None:
                    pipe.set(redis_key, payload)
                else:
                    pipe.set(redis_key, payload, pxat=max(1, int(keep * 1000)))

        # A store that misses Redis leaves Redis's older copy, a cache's ordinary staleness; a version
        # (kept forever) that misses it would bring back answers a mutation retired: remember those.
        await self._write(list(entries), writes, must_reach=math.isinf(keep_until))

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Drop ``keys`` from both levels, and from every other instance's first level."""
        if not keys:
            return
        await self.l1.delete_many(keys)
        redis_keys = [self._key(key) for key in keys]
        await self._write(list(keys), lambda pipe: pipe.unlink(*redis_keys), must_reach=True)

    async def _write(self, keys: list[str], writes: Callable[[Any], None], *, must_reach: bool) -> None:
        """Apply ``writes`` to Redis and announce ``keys``, in one round trip, replaying pending
        invalidations first; when Redis cannot be reached, remember ``keys`` if the write
        ``must_reach`` it (an invalidation, a new version)."""
        if not self.link.available:
            if must_reach:
                self._remember(keys)
            return
        if self._flush_all:
            await self._flush_everything()
        pending = sorted(self._pending)
        announced = [*pending, *keys]

        async def write(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                if pending:
                    pipe.unlink(*(self._key(key) for key in pending))
                writes(pipe)
                pipe.publish(self.channel, self._message(keys=announced))
                await pipe.execute()

        try:
            await self.link.run(write)
        except (RedisUnavailable, RedisError) as exc:
            if not isinstance(exc, RedisUnavailable):
                logger.error("cache write to redis refused: %s", exc)
            if must_reach:
                self._remember(keys)
            return
        self._pending.difference_update(pending)

    def _remember(self, keys: Sequence[str]) -> None:
        if self._flush_all:
            return
        self._pending.update(keys)
        if len(self._pending) > MAX_PENDING:
            logger.warning(
                "more than %d cache invalidations waiting for redis: the shared cache is flushed once "
                "it is back",
                MAX_PENDING,
            )
            self._pending.clear()
            self._flush_all = True

    async def _flush_pending(self) -> None:
        """Replay the invalidations that waited for Redis (called when it answers again)."""
        if self._flush_all:
            await self._flush_everything()
        elif self._pending:
            await self._write([], lambda _pipe: None, must_reach=False)

    async def _flush_everything(self) -> None:
        """Delete every cache entry of this prefix from Redis and tell every instance to clear."""
        pattern = self._key("*")

        async def flush(redis: Redis) -> int:
            deleted = 0
            batch: list[Any] = []
            async for key in redis.scan_iter(match=pattern, count=_SCAN_COUNT):
                batch.append(key)
                if len(batch) >= _SCAN_COUNT:
                    deleted += int(await redis.unlink(*batch))
                    batch.clear()
            if batch:
                deleted += int(await redis.unlink(*batch))
            await redis.publish(self.channel, self._message(everything=True))
            return deleted

        try:
            deleted = await self.link.run(flush)
        except (RedisUnavailable, RedisError) as exc:
            logger.warning("flushing the shared cache failed (%s); will try again", exc)
            return
        self._flush_all = False
        self._pending.clear()
        logger.info("shared cache flushed after an outage: %d entries deleted", deleted)

    def _message(self, *, keys: Sequence[str] = (), everything: bool = False) -> str:
        body: dict[str, Any] = {"from": self.link.instance}
        if everything:
            body["all"] = True
        else:
            body["keys"] = list(keys)
        return json.dumps(body, separators=(",", ":"))

    def _resync(self) -> None:
        """Forget the first level: invalidations may have been missed."""
        self.l1.clear()
        self._epoch += 1

    async def _apply(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            logger.warning("invalidation message not understood; first level cleared")
            self._resync()
            return
        if not isinstance(message, dict) or message.get("from") == self.link.instance:
            return
        if message.get("all"):
            self._resync()
            return
        keys = message.get("keys")
        if isinstance(keys, list):
            self._epoch += 1
            await self.l1.delete_many([str(key) for key in keys])

    async def listen(self) -> None:
        """Apply other instances' invalidations to the first level until cancelled; reconnects on its
        own, clearing the first level and replaying pending invalidations each time it subscribes."""
        backoff = 0.1
        while True:
            pubsub = self.link.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        # (Re)subscribed, perhaps after redis-py reconnected by itself.
                        self.link.succeeded()
                        self._resync()
                        self.subscribed.set()
                        await self._flush_pending()
                    elif message["type"] == "message":
                        await self._apply(message["data"])
                    backoff = 0.1
            except OUTAGE_ERRORS as exc:
                raise_if_cancelling()
                self.link.failed(exc)
            except RedisError as exc:
                logger.error("cache invalidation channel failed: %s", exc)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(*OUTAGE_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RECONNECT_MAX_S)
