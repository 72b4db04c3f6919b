"""The event bus over Redis: every subscriber on every instance receives every event once, in order.

**A Stream, not Pub/Sub.** Pub/Sub delivers a message only to connections subscribed at that moment:
an instance whose connection drops (Redis restarting, a network blip, a long GC pause past the
output buffer limit) silently misses what was published meanwhile, and nothing tells it. A Stream
is a log with ids that only grow: each instance reads from the last id it delivered, so after a
reconnect it continues exactly where it stopped, without a gap or a repeat, for as long as the log
still holds those entries (``BFF_EVENT_LOG_MAX_LEN``, trimmed approximately). It also lets a webhook
be published and acknowledged in one atomic script (:mod:`bff.redis.webhooks`), which Pub/Sub's
``PUBLISH`` cannot join. The costs: Redis keeps the recent events (memory, bounded), and each
instance reads every event, also of topics it has no subscriber for.

Layout: one stream ``{<prefix>:events}:log`` whose entries have the fields ``topic``, ``id`` and
``data`` (JSON). One log for all topics gives one order for all of them, stronger than the order
per topic the :class:`~bff.events.EventBus` protocol promises.

Each instance runs one reader (:meth:`RedisEventBus.start`): ``XREAD BLOCK`` on its own connection,
handing each event to an :class:`~bff.events.InMemoryEventBus` of the process, so subscribers keep
the same bounded queues, overflow and ``on_overflow`` as without Redis. :meth:`~RedisEventBus.publish`
only appends to the log: the publishing instance's subscribers get the event through its reader like
everyone else's. The reader remembers the last :data:`DEDUP_SIZE` event ids, so an event appended
twice (a publish retried after its answer was lost) is delivered once.

When Redis cannot be reached, :meth:`~RedisEventBus.publish` keeps the event in an in-process outbox
(at most :data:`OUTBOX_SIZE`, then the oldest are dropped with an error log) and appends it, in order,
once Redis answers; new events queue behind the outbox so the order holds. Events in the outbox are
lost if the process dies first. The reader retries from its last id with a backoff of 0.1 s doubling
to 2 s; the reconnection is logged. A bus started while Redis is down starts reading at the current
wall-clock time (entry ids are Redis's clock in milliseconds).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bff.events import DEFAULT_QUEUE_SIZE, Event, InMemoryEventBus, OverflowCallback
from bff.redis.link import OUTAGE_ERRORS, RedisLink, RedisUnavailable, raise_if_cancelling, stop_tasks

__all__ = ["DEDUP_SIZE", "OUTBOX_SIZE", "RedisEventBus", "decode_event", "encode_event"]

logger = logging.getLogger("bff.redis.events")

DEDUP_SIZE: Final = 10_000
"""Recent event ids each instance remembers, to deliver an event appended twice once."""
OUTBOX_SIZE: Final = 10_000
"""Most events kept in the process while Redis cannot be reached."""
BLOCK_S: Final = 1.0
"""How long one ``XREAD`` waits for new entries."""
READ_COUNT: Final = 500
"""Most entries one ``XREAD`` returns."""
_RECONNECT_MAX_S: Final = 2.0


def encode_event(event: Event) -> dict[str, str]:
    """The fields of ``event``'s log entry."""
    return {"topic": event.topic, "id": event.id, "data": json.dumps(event.data, separators=(",", ":"))}


def decode_event(fields: Mapping[Any, Any]) -> Event | None:
    """The event of a log entry's fields (bytes or str), or ``None`` when they are not one."""
    text = {
        (key.decode() if isinstance(key, bytes) else str(key)): (
            value.decode() if isinstance(value, bytes) else str(value)
        )
        for key, value in fields.items()
    }
    try:
        data = json.loads(text["data"])
        return Event(text["topic"], data, id=text["id"]) if isinstance(data, dict) else None
    except (KeyError, ValueError):
        return None


class RedisEventBus:
    """An :class:`~bff.events.EventBus` shared through a Redis Stream (see the module docstring).

    :meth:`start` before serving, :meth:`aclose` after. ``queue_size`` bounds each subscriber's queue
    as in :class:`~bff.events.InMemoryEventBus`; ``max_len`` is about how many events the log keeps.
    """

    def __init__(
        self, link: RedisLink, *, queue_size: int = DEFAULT_QUEUE_SIZE, max_len: int = 100_000
    ) -> None:
        self.link = link
        self.stream = link.tagged("events", "log")
        self.max_len = max_len
        self._local = InMemoryEventBus(queue_size=queue_size)
        self.queue_size = queue_size
        self._last_id: str | None = None
        self._seen: deque[str] = deque()
        self._seen_set: set[str] = set()
        self._outbox: deque[Event] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.published = 0
        """Events published on this instance since start."""
        self.delivered = 0
        """Events this instance's reader handed to its subscribers since start."""
        self.lost = 0
        """Events dropped: outbox overflow, or refused by Redis."""
        self.reading = asyncio.Event()
        """Set while the reader is connected (tests and ``/readyz`` look)."""

    @property
    def dropped_subscribers(self) -> int:
        """Subscribers of this instance dropped for being too slow."""
        return self._local.dropped_subscribers

    async def start(self) -> None:
        """Note where the log ends now and start reading from there (does not wait for Redis)."""
        try:
            self._last_id = await self.link.run(self._tail)
        except RedisUnavailable:
            self._last_id = f"{int(time.time() * 1000)}-0"
        self._tasks.append(asyncio.create_task(self._read(), name="bff-redis-bus"))

    async def _tail(self, redis: Redis) -> str:
        last = await redis.xrevrange(self.stream, count=1)
        if not last:
            return "0-0"
        entry_id = last[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def publish(self, event: Event) -> None:
        """Append ``event`` to the log; while Redis cannot be reached, to the outbox (module doc)."""
        self.published += 1
        if self._outbox:
            self._to_outbox(event)
            return
        try:
            await self.link.run(lambda redis: self._append(redis, [event]))
        except RedisUnavailable:
            self._to_outbox(event)
        except RedisError as exc:
            self.lost += 1
            logger.error("event %s (%s) refused by redis, not published: %s", event.id, event.topic, exc)

    async def _append(self, redis: Redis, events: Sequence[Event]) -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(self.stream, encode_event(event), maxlen=self.max_len, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()

    def _to_outbox(self, event: Event) -> None:
        if len(self._outbox) >= OUTBOX_SIZE:
            dropped = self._outbox.popleft()
            self.lost += 1
            logger.error(
                "event outbox full while redis is down: event %s (%s) lost", dropped.id, dropped.topic
            )
        self._outbox.append(event)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="bff-redis-bus-outbox")

    async def _flush(self) -> None:
        """Append the outbox, in order, as soon as Redis answers."""
        wait_s = 0.1
        while self._outbox:
            batch = list(itertools.islice(self._outbox, 100))
            try:
                await self.link.run(functools.partial(self._append, events=batch))
            except RedisUnavailable:
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, _RECONNECT_MAX_S)
                continue
            except RedisError as exc:
                self.lost += len(batch)
                logger.error("%d events refused by redis, not published: %s", len(batch), exc)
            for _ in batch:
                self._outbox.popleft()
            wait_s = 0.1
        logger.info("event outbox appended to redis")

    def subscribe(
        self, *topics: str, on_overflow: OverflowCallback | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """See :meth:`bff.events.EventBus.subscribe`; events come from every instance."""
        return self._local.subscribe(*topics, on_overflow=on_overflow)

    def subscriber_count(self, topic: str | None = None) -> int:
        """See :meth:`bff.events.EventBus.subscriber_count` (this process's subscribers)."""
        return self._local.subscriber_count(topic)

    def _first_time(self, event_id: str) -> bool:
        if event_id in self._seen_set:
            return False
        self._seen.append(event_id)
        self._seen_set.add(event_id)
        if len(self._seen) > DEDUP_SIZE:
            self._seen_set.discard(self._seen.popleft())
        return True

    async def _read(self) -> None:
        """Deliver the log's new entries to this process's subscribers until cancelled."""
        client = self.link.blocking_client(BLOCK_S)
        wait_s = 0.1
        cut_off = False
        while True:
            try:
                if self._last_id is None:  # pragma: no cover - start() always sets it
                    self._last_id = await self._tail(client)
                reply = await client.xread(
                    {self.stream: self._last_id}, count=READ_COUNT, block=int(BLOCK_S * 1000)
                )
            except OUTAGE_ERRORS as exc:
                raise_if_cancelling()
                self.reading.clear()
                self.link.failed(exc)
                if not cut_off:
                    cut_off = True
                    logger.warning(
                        "event bus lost redis (%s); reconnecting from %s", type(exc).__name__, self._last_id
                    )
                await asyncio.sleep(wait_s)
                wait_s = min(wait_s * 2, _RECONNECT_MAX_S)
                continue
            except RedisError as exc:
                self.reading.clear()
                logger.error("event bus read failed: %s", exc)
                await asyncio.sleep(_RECONNECT_MAX_S)
                continue
            self.reading.set()
            if cut_off:
                cut_off = False
                self.link.succeeded()
                logger.info("event bus reconnected to redis; reading from %s", self._last_id)
            wait_s = 0.1
            for entry_id, fields in _entries(reply):
                self._last_id = entry_id
                event = decode_event(fields)
                if event is None:
                    logger.warning("log entry %s is not an event; skipped", entry_id)
                    continue
                if self._first_time(event.id):
                    self.delivered += 1
                    await self._local.publish(event)

    async def aclose(self) -> None:
        """Stop reading and end every subscription; events still in the outbox are lost (logged)."""
        await stop_tasks([*self._tasks, *([self._flusher] if self._flusher is not None else [])])
        self._tasks.clear()
        if self._outbox:
            logger.error("%d events still waiting for redis are lost at shutdown", len(self._outbox))
            self.lost += len(self._outbox)
            self._outbox.clear()
        await self._local.aclose()


def _entries(reply: Any) -> list[tuple[str, Mapping[Any, Any]]]:
    """``(entry id, fields)`` of an ``XREAD`` reply: ``[[stream, [[id, fields], ...]]]`` (RESP2) or
    ``{stream: [[id, fields], ...]}`` (RESP3)."""
    if not reply:
        return []
    streams = reply.items() if isinstance(reply, dict) else reply
    return [
        (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), fields)
        for _stream, entries in streams
        for entry_id, fields in entries
    ]
