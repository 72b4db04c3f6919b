"""Durable webhooks: accepted deliveries wait in Redis, and any instance's worker publishes them once.

Accepting (:meth:`RedisWebhookQueue.accept`) is one Lua script, run before the sender gets its 202:
it checks the id (``{<prefix>:events}:webhook:<endpoint>:<webhook-id>``, kept
``BFF_IDEMPOTENCY_TTL_S``: the same body again is a duplicate, another body a conflict) and the queue's
length (``BFF_WEBHOOK_QUEUE_SIZE``: beyond it, busy), then records the id and appends the delivery
(its key and its events as JSON) to the stream ``{<prefix>:events}:webhooks``. Either all of it
happens or none, so a 202 means the delivery is in Redis.

Publishing is a consumer group (``bff-webhooks``) on that stream, one consumer per process
(:attr:`~bff.redis.link.RedisLink.instance`). A worker reads new deliveries with ``XREADGROUP``, and
also takes over, with ``XAUTOCLAIM``, deliveries another consumer read but did not finish within
``BFF_WEBHOOK_CLAIM_IDLE_MS`` (its process died, or its publish failed). Publishing a delivery is
one more Lua script, on keys that share the ``{<prefix>:events}`` tag with the bus's log: if the
delivery is still pending for this consumer, append its events to the bus's log
(:mod:`bff.redis.events`), acknowledge it and delete it; else do nothing. Scripts run one at a time,
so when two workers hold the same delivery (one took it over from the other, which was only slow)
exactly one publishes it.

So a process killed between the 202 and the publish loses nothing: its delivery stays pending under
its consumer name and another instance, or the restarted process, takes it over once it has been
idle for the claim time, and publishes it once. Redis restarted empty (no persistence) loses what
it held, as any storage that loses its data does.

When Redis cannot be reached, :meth:`~RedisWebhookQueue.accept` raises
:class:`~bff.webhooks.WebhookQueueUnavailable` (503 with ``Retry-After``: the sender retries, nothing
was recorded), and the worker retries with a backoff of 0.1 s doubling to 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bff.events import Event
from bff.redis.events import decode_event, encode_event
from bff.redis.link import OUTAGE_ERRORS, RETRY_AFTER_S, RedisLink, RedisUnavailable, raise_if_cancelling
from bff.webhooks import Acceptance, WebhookQueueUnavailable

__all__ = ["GROUP", "RedisWebhookQueue"]

logger = logging.getLogger("bff.redis.webhooks")

GROUP: Final = "bff-webhooks"
"""The consumer group of the webhook stream."""
BLOCK_S: Final = 1.0
READ_COUNT: Final = 10
_RECONNECT_MAX_S: Final = 2.0
_FORGET_CONSUMER_S: Final = 3600.0
"""A consumer with nothing pending, idle this long (a process long gone), is removed from the group."""

_ACCEPT: Final = """
local seen = redis.call('GET', KEYS[1])
if seen then
  if seen == ARGV[1] then return 'duplicate' end
  return 'conflict'
end
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[3]) then return 'busy' end
redis.call('XADD', KEYS[2], '*', 'key', ARGV[4], 'events', ARGV[5])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 'accepted'
"""
"""KEYS: the id's key, the queue. ARGV: body fingerprint, TTL in s, queue size, key, events JSON."""

_PUBLISH: Final = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3])
if #mine == 0 then return 0 end
for i = 5, #ARGV, 3 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'topic', ARGV[i], 'id', ARGV[i + 1],
             'data', ARGV[i + 2])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""
"""KEYS: the queue, the bus's log. ARGV: group, entry id, consumer, log length, then per event its
topic, id and data. 1 when this consumer published it, 0 when it was not (or no longer) its own."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisWebhookQueue:
    """A :class:`~bff.webhooks.WebhookQueue` in a Redis Stream with a consumer group (module doc).

    ``queue_size`` bounds the deliveries waiting; ``ttl_s`` is how long ids are remembered;
    ``claim_idle_s`` how long a delivery may stay unpublished with one consumer before another takes
    it over; ``log_max_len`` is the bus's log length (``BFF_EVENT_LOG_MAX_LEN``).
    """

    def __init__(
        self,
        link: RedisLink,
        *,
        queue_size: int,
        ttl_s: float,
        claim_idle_s: float,
        log_max_len: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.queue_size = queue_size
        self.ttl_s = ttl_s
        self.claim_idle_s = claim_idle_s
        self.log_max_len = log_max_len
        self.stream = link.tagged("events", "webhooks")
        self.log = link.tagged("events", "log")
        self.consumer = link.instance
        self._clock = clock
        self._accept = link.client.register_script(_ACCEPT)
        self._publish = link.client.register_script(_PUBLISH)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.processed = 0
        self.taken_over = 0
        """Deliveries this process took over from another consumer since start."""

    async def accept(self, key: str, fingerprint: str, events: Sequence[Event]) -> Acceptance:
        """See :meth:`bff.webhooks.WebhookQueue.accept`: one script records the id and queues."""
        payload = json.dumps([encode_event(event) for event in events], separators=(",", ":"))
        keys = [self.link.tagged("events", key), self.stream]
        args: list[str | int] = [fingerprint, max(1, int(self.ttl_s)), self.queue_size, key, payload]
        try:
            reply = await self.link.run(lambda redis: self._accept(keys=keys, args=args, client=redis))
        except (RedisUnavailable, RedisError) as exc:
            raise WebhookQueueUnavailable(f"redis: {exc}", retry_after_s=RETRY_AFTER_S) from exc
        return Acceptance(_text(reply))

    async def run(self) -> None:
        """See :meth:`bff.webhooks.WebhookQueue.run`: read new deliveries and take over idle ones."""
        client = self.link.blocking_client(BLOCK_S)
        wait_s = 0.1
        grouped = False
        next_claim = 0.0
        next_cleanup = self._clock() + _FORGET_CONSUMER_S / 60
        claim_every = max(0.05, min(self.claim_idle_s / 4, 1.0))
        while True:
            try:
                if not grouped:
                    await self._create_group(client)
                    grouped = True
                if self._clock() >= next_claim:
                    await self._take_over_idle(client)
                    next_claim = self._clock() + claim_every
                if self._clock() >= next_cleanup:
                    await self._forget_old_consumers(client)
                    next_cleanup = self._clock() + _FORGET_CONSUMER_S / 60
                reply = await client.xreadgroup(
                    GROUP,
                    self.consumer,
                    {self.stream: ">"},
                    count=READ_COUNT,
                    block=int(min(BLOCK_S, claim_every) * 1000),
                )
                for entry_id, fields in _entries(reply):
                    await self._process(entry_id, fields)
                wait_s = 0.1
            except OUTAGE_ERRORS as exc:
                raise_if_cancelling()
                self.link.failed(exc)
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, _RECONNECT_MAX_S)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis restarted empty: the group is gone with the stream
                    grouped = False
                    continue
                logger.error("webhook worker: redis refused a command: %s", exc)
                await asyncio.sleep(_RECONNECT_MAX_S)
            except RedisError as exc:
                logger.error("webhook worker: %s", exc)
                await asyncio.sleep(_RECONNECT_MAX_S)

    async def _create_group(self, client: Redis) -> None:
        try:
            # From the start of the stream: whatever is in it was not published yet (published
            # deliveries are deleted).
            await client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _take_over_idle(self, client: Redis) -> None:
        """Take over and publish the deliveries idle past the claim time with any consumer."""
        start = "0-0"
        idle_ms = max(1, int(self.claim_idle_s * 1000))
        while True:
            reply = await client.xautoclaim(
                self.stream, GROUP, self.consumer, min_idle_time=idle_ms, start_id=start, count=READ_COUNT
            )
            start = _text(reply[0])
            for entry_id, fields in _pairs(reply[1]):
                self.taken_over += 1
                logger.warning(
                    "webhook delivery %s idle past %.1f s: taken over", entry_id, self.claim_idle_s
                )
                await self._process(entry_id, fields)
            if start == "0-0":
                return

    async def _forget_old_consumers(self, client: Redis) -> None:
        for consumer in await client.xinfo_consumers(self.stream, GROUP):
            name = _text(consumer.get("name", b""))
            pending = int(consumer.get("pending", 0))
            idle_s = int(consumer.get("idle", 0)) / 1000
            if name != self.consumer and pending == 0 and idle_s > _FORGET_CONSUMER_S:
                await client.xgroup_delconsumer(self.stream, GROUP, name)

    async def _process(self, entry_id: str, fields: Any) -> None:
        """Publish one delivery (if it is still this consumer's), acknowledge and delete it."""
        self._in_flight += 1
        self._idle.clear()
        try:
            events = _events(fields)
            if events is None:
                logger.error("webhook delivery %s is not ours; dropped", entry_id)
                args: list[Any] = [GROUP, entry_id, self.consumer, self.log_max_len]
            else:
                args = [GROUP, entry_id, self.consumer, self.log_max_len]
                for event in events:
                    encoded = encode_event(event)
                    args.extend((encoded["topic"], encoded["id"], encoded["data"]))
            try:
                published = await self.link.run(
                    lambda redis: self._publish(keys=[self.stream, self.log], args=args, client=redis)
                )
            except RedisError as exc:
                # Still pending: taken over (by this worker or another) once idle past the claim time.
                logger.error("webhook delivery %s not published, will be retried: %s", entry_id, exc)
                return
            if published:
                self.processed += 1
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def drain(self, timeout_s: float) -> None:
        """See :meth:`bff.webhooks.WebhookQueue.drain`: what this worker is publishing now. Deliveries
        still in Redis are published by whichever worker runs next."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()


def _events(fields: Any) -> list[Event] | None:
    try:
        raw = {_text(key): _text(value) for key, value in dict(fields).items()}
        items = json.loads(raw["events"])
    except (KeyError, ValueError, TypeError):
        return None
    events = [decode_event(item) for item in items] if isinstance(items, list) else [None]
    return None if any(event is None for event in events) else [e for e in events if e is not None]


def _pairs(entries: Any) -> list[tuple[str, Any]]:
    return [(_text(entry[0]), entry[1]) for entry in entries or () if entry and entry[1] is not None]


def _entries(reply: Any) -> list[tuple[str, Any]]:
    """``(entry id, fields)`` of an ``XREADGROUP`` reply (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    return [pair for _stream, entries in streams for pair in _pairs(entries)]
