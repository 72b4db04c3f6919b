"""The event bus: mutations and webhooks publish events, subscriptions receive them.

:class:`EventBus` is the protocol; :class:`InMemoryEventBus` is the one-process implementation (a
Redis one can follow behind the same protocol, so several BFF instances share events)::

    await bus.publish(Event("invoice.created", {"invoice": record}))

    async with bus.subscribe("invoice.created", on_overflow=disconnect) as events:
        async for event in events:
            ...

Every subscriber has its own bounded queue. Publishing never waits for a subscriber: when a
subscriber's queue is full, the subscriber is dropped (it stops receiving, its queue is freed),
``on_overflow`` is called so the transport can disconnect the client, and its iterator raises
:class:`SubscriberOverflow`. A slow client therefore costs at most ``queue_size`` queued references
to shared events, never unbounded memory.

Event ``data`` is JSON-ready (str, int, float, bool, None, lists and dicts), so an implementation
may serialise it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

from aiohttp import web

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "EVENT_BUS",
    "Event",
    "EventBus",
    "InMemoryEventBus",
    "SubscriberOverflow",
    "SubscriberQueue",
]

DEFAULT_QUEUE_SIZE: Final = 256
"""Events one subscriber may have waiting before it counts as too slow."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a ``topic`` the app names (``"invoice.created"``), JSON-ready ``data``,
    an id."""

    topic: str
    data: Mapping[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class SubscriberOverflow(Exception):
    """The subscriber fell more than ``queue_size`` events behind and was dropped."""

    def __init__(self, queue_size: int) -> None:
        super().__init__(f"subscriber too slow: more than {queue_size} events waiting")
        self.queue_size = queue_size


OverflowCallback = Callable[[], None]
"""Called once, synchronously from ``publish``, when a subscriber overflows; must not block."""


class EventBus(Protocol):
    """Publish events to topics; subscribe to topics with a bounded queue per subscriber."""

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every current subscriber of ``event.topic``; never waits for them."""
        ...

    def subscribe(
        self, *topics: str, on_overflow: OverflowCallback | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Subscribe to ``topics`` for the duration of the ``async with``; iterate the events.

        Events published after ``__aenter__`` returns are delivered in publish order. The iterator
        raises :class:`SubscriberOverflow` once the subscriber has been dropped for being slow, and
        ends when the bus closes.
        """
        ...

    def subscriber_count(self, topic: str | None = None) -> int:
        """How many subscribers ``topic`` (or any topic, for ``None``) has in this process."""
        ...

    async def aclose(self) -> None:
        """End every subscription (their iterators stop) and refuse new ones."""
        ...


T = TypeVar("T")


class SubscriberQueue(Generic[T]):
    """One subscriber's bounded queue of items (events, or results shared by a subscription group)
    and the future its reader waits on.

    ``limit`` is the most items that may wait; ``on_overflow`` is called once when an item finds the
    queue full, which also drops what waited and makes :meth:`events` raise :class:`SubscriberOverflow`.
    """

    __slots__ = ("closed", "limit", "on_overflow", "overflowed", "queue", "waiter")

    def __init__(self, limit: int, on_overflow: OverflowCallback | None) -> None:
        self.limit = limit
        self.on_overflow = on_overflow
        self.queue: deque[T] = deque()
        self.overflowed = False
        self.closed = False
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def offer(self, event: T) -> bool:
        """Queue ``event``; return False (and mark the subscriber overflowed) when the queue is full."""
        if len(self.queue) >= self.limit:
            self.drop()
            return False
        self.queue.append(event)
        self._wake()
        return True

    def drop(self) -> None:
        """Drop the subscriber as too slow: what waits is freed, ``on_overflow`` is called, and
        :meth:`events` raises :class:`SubscriberOverflow`."""
        self.overflowed = True
        self.queue.clear()
        self._wake()
        if self.on_overflow is not None:
            self.on_overflow()

    def close(self) -> None:
        """End :meth:`events` once what waits was read."""
        self.closed = True
        self._wake()

    async def events(self) -> AsyncGenerator[T, None]:
        """The queued items in order; ends after :meth:`close`; raises :class:`SubscriberOverflow`."""
        while True:
            if self.overflowed:
                raise SubscriberOverflow(self.limit)
            if self.queue:
                yield self.queue.popleft()
                continue
            if self.closed:
                return
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class InMemoryEventBus:
    """An :class:`EventBus` inside one process: topic -> subscribers, each with a bounded queue.

    ``queue_size`` is the most events a subscriber may have waiting (default
    :data:`DEFAULT_QUEUE_SIZE`). Events reach only subscribers of this process: with several BFF
    instances, use a shared implementation (Redis) behind the same protocol.
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self._topics: dict[str, set[SubscriberQueue[Event]]] = {}
        self._closed = False
        self.published = 0
        """Events published since start (for tests and metrics)."""
        self.dropped_subscribers = 0
        """Subscribers dropped for being too slow since start."""

    async def publish(self, event: Event) -> None:
        """Queue ``event`` for every subscriber of its topic; drop subscribers whose queue is full."""
        self.published += 1
        subscribers = self._topics.get(event.topic)
        if not subscribers:
            return
        for subscriber in list(subscribers):
            if not subscriber.offer(event):
                self.dropped_subscribers += 1
                self._remove(subscriber)

    def subscribe(
        self, *topics: str, on_overflow: OverflowCallback | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """See :meth:`EventBus.subscribe`. Raises ``RuntimeError`` once the bus is closed."""
        if not topics:
            raise ValueError("subscribe to at least one topic")
        return self._subscription(topics, on_overflow)

    @asynccontextmanager
    async def _subscription(
        self, topics: tuple[str, ...], on_overflow: OverflowCallback | None
    ) -> AsyncIterator[AsyncIterator[Event]]:
        if self._closed:
            raise RuntimeError("the event bus is closed")
        subscriber = SubscriberQueue[Event](self.queue_size, on_overflow)
        for topic in topics:
            self._topics.setdefault(topic, set()).add(subscriber)
        events = subscriber.events()
        try:
            yield events
        finally:
            self._remove(subscriber)
            subscriber.close()
            if not getattr(events, "ag_running", False):  # else another task is in it; close() ends it
                await events.aclose()

    def _remove(self, subscriber: SubscriberQueue[Event]) -> None:
        for topic in [topic for topic, members in self._topics.items() if subscriber in members]:
            members = self._topics[topic]
            members.discard(subscriber)
            if not members:
                del self._topics[topic]

    def subscriber_count(self, topic: str | None = None) -> int:
        """See :meth:`EventBus.subscriber_count`."""
        if topic is not None:
            return len(self._topics.get(topic, ()))
        return len({subscriber for members in self._topics.values() for subscriber in members})

    async def aclose(self) -> None:
        """See :meth:`EventBus.aclose`."""
        self._closed = True
        for members in list(self._topics.values()):
            for subscriber in list(members):
                subscriber.close()
        self._topics.clear()


EVENT_BUS: Final = web.AppKey("bff.event_bus", EventBus)
"""Where the app keeps its :class:`EventBus` while it runs."""
