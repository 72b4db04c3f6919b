"""In-flight de-duplication: identical GETs running at the same time share one downstream request.

Identical means same URL (with query) and same forwarded headers, so two principals never share a
response. The shared request runs as its own task; each caller waits for it under its own deadline.
When the last caller stops waiting (deadline, cancellation), the shared request is cancelled, so no
task or connection outlives every operation that wanted it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class InFlight(Generic[T]):
    """Shares the result of concurrent calls with equal keys; ``on_shared`` is called each time a
    caller joins a call already running (for metrics)."""

    def __init__(self, *, on_shared: Callable[[], None] | None = None) -> None:
        self._flights: dict[Hashable, _Flight[T]] = {}
        self._on_shared = on_shared

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """Return ``fn()``'s result, sharing one run among callers with the same ``key``."""
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(fn()))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda _: self._forget(key, flight))
        elif self._on_shared is not None:
            self._on_shared()
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()
                self._forget(key, flight)

    def _forget(self, key: Hashable, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
