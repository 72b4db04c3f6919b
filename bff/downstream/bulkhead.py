"""Bulkhead: a cap on one service's concurrent calls with a bounded queue in front of it.

Why our own: it is a semaphore plus a counter; the maintained resilience libraries for asyncio
offer rate limiting, not a concurrency cap with a bounded wait queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from bff.errors import DownstreamUnavailable

T = TypeVar("T")


class BulkheadObserver(Protocol):
    """What a bulkhead reports (for metrics): its occupancy after each change, and refusals."""

    def bulkhead_changed(self, in_use: int, queued: int) -> None:
        """``in_use`` calls hold a slot and ``queued`` wait for one, now."""

    def bulkhead_rejected(self) -> None:
        """A call was refused because the queue was full."""


class Bulkhead:
    """At most ``max_concurrency`` calls run at once; at most ``max_queue`` wait for a slot.

    ``observer`` hears of every change of occupancy and every refusal.
    """

    def __init__(
        self,
        service: str,
        *,
        max_concurrency: int,
        max_queue: int,
        observer: BulkheadObserver | None = None,
    ) -> None:
        self.service = service
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(max_concurrency)
        self._waiting = 0
        self._in_use = 0
        self._observer = observer

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` in a slot; raises ``DOWNSTREAM_UNAVAILABLE`` at once when the queue is full."""
        observer = self._observer
        if self._slots.locked():
            if self._waiting >= self.max_queue:
                if observer is not None:
                    observer.bulkhead_rejected()
                raise DownstreamUnavailable(
                    f"{self.service} service has too many calls waiting (bulkhead full)", service=self.service
                )
            self._waiting += 1
            if observer is not None:
                observer.bulkhead_changed(self._in_use, self._waiting)
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        self._in_use += 1
        if observer is not None:
            observer.bulkhead_changed(self._in_use, self._waiting)
        try:
            return await fn()
        finally:
            self._in_use -= 1
            self._slots.release()
            if observer is not None:
                observer.bulkhead_changed(self._in_use, self._waiting)
