"""Bulkhead: a cap on one service's concurrent calls with a bounded queue in front of it.

Why our own: it is a semaphore plus a counter; the maintained resilience libraries for asyncio
offer rate limiting, not a concurrency cap with a bounded wait queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bff.errors import DownstreamUnavailable

T = TypeVar("T")


class Bulkhead:
    """At most ``max_concurrency`` calls run at once; at most ``max_queue`` wait for a slot."""

    def __init__(self, service: str, *, max_concurrency: int, max_queue: int) -> None:
        self.service = service
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(max_concurrency)
        self._waiting = 0

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` in a slot; raises ``DOWNSTREAM_UNAVAILABLE`` at once when the queue is full."""
        if self._slots.locked():
            if self._waiting >= self.max_queue:
                raise DownstreamUnavailable(
                    f"{self.service} service has too many calls waiting (bulkhead full)", service=self.service
                )
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        try:
            return await fn()
        finally:
            self._slots.release()
