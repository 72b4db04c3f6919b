"""Idempotency: remember which keys were used, so a replayed request is applied once.

Mutations (``purchaseTracks``, ``payInvoice``) claim ``<mutation>:<scope>:<idempotencyKey>``;
webhook ingress claims ``webhook:<source>:<webhook-id>``. A claim says what the caller must do::

    claim = await store.claim(key, fingerprint)
    NEW          the caller owns the key: do the work, then complete(key, result) or release(key)
    IN_PROGRESS  another caller owns it and has not finished (wait(key) to see how it ends)
    DONE         it was done before: ``claim.result`` is what the first caller completed with
    CONFLICT     the key was used for a different request (another ``fingerprint``)

:class:`IdempotencyStore` is the protocol; :class:`InMemoryIdempotencyStore` keeps keys in this
process for ``ttl_s`` seconds, at most ``max_keys`` of them. Its limits, stated plainly: keys do not
survive a restart and are not shared between instances (:class:`bff.redis.idempotency.RedisIdempotencyStore`,
with ``BFF_REDIS_URL``, is both); when full, the oldest finished keys are forgotten first, so a replay
older than ``max_keys`` newer keys is applied again; when every key is still in progress, new claims
fail with :class:`IdempotencyStoreFull` rather than forgetting work under way. A store that cannot
reach its storage raises :class:`IdempotencyStoreUnavailable`: callers refuse the request (503 with
``Retry-After``) rather than risk applying it twice.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from aiohttp import web

__all__ = [
    "DEFAULT_MAX_KEYS",
    "DEFAULT_TTL_S",
    "IDEMPOTENCY",
    "Claim",
    "ClaimState",
    "IdempotencyStore",
    "IdempotencyStoreFull",
    "IdempotencyStoreUnavailable",
    "InMemoryIdempotencyStore",
]

DEFAULT_TTL_S: Final = 24 * 3600.0
"""How long a key is remembered after it was first claimed, in seconds."""
DEFAULT_MAX_KEYS: Final = 100_000
"""Most keys the in-memory store holds."""


class ClaimState(enum.Enum):
    """What a claim found; see the module docstring."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of :meth:`IdempotencyStore.claim`; ``result`` is set for ``DONE`` only."""

    state: ClaimState
    result: Mapping[str, Any] | None = None


class IdempotencyStoreFull(Exception):
    """No key can be claimed now: the store is full of keys still in progress."""


class IdempotencyStoreUnavailable(Exception):
    """The store's storage cannot be reached: whether a key was used is unknown. Retry after
    ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IdempotencyStore(Protocol):
    """Claims on idempotency keys, kept for a while."""

    async def claim(self, key: str, fingerprint: str) -> Claim:
        """Claim ``key`` for a request identified by ``fingerprint`` (e.g. a hash of its input).

        Never waits. Raises :class:`IdempotencyStoreFull` when the key is new and cannot be stored,
        :class:`IdempotencyStoreUnavailable` when the storage cannot be reached (any method may).
        """
        ...

    async def complete(self, key: str, result: Mapping[str, Any]) -> None:
        """Record that the owner of ``key`` finished with ``result`` (JSON-ready); later claims see DONE."""
        ...

    async def release(self, key: str) -> None:
        """Forget ``key`` (its owner failed without effect), so the request may be tried again."""
        ...

    async def wait(self, key: str, timeout_s: float) -> Claim | None:
        """Wait up to ``timeout_s`` seconds for the owner of an in-progress ``key`` to finish.

        Returns the ``DONE`` claim when the owner completed; ``Claim(ClaimState.NEW)`` when it released
        the key or the key expired (claim it again); ``None`` when the owner is still at work.
        """
        ...


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    expires_at: float
    result: Mapping[str, Any] | None = None
    done: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class InMemoryIdempotencyStore:
    """An :class:`IdempotencyStore` in this process's memory (see the module docstring for its limits)."""

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0 or max_keys < 1:
            raise ValueError("ttl_s must be positive and max_keys at least 1")
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._clock = clock
        # Insertion order is expiry order (one TTL for all), so expired keys sit at the front.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            del self._entries[key]
            entry.finished.set()
            return None
        return entry

    def _make_room(self) -> None:
        now = self._clock()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.expires_at > now:
                break
            del self._entries[key]
            entry.finished.set()
        if len(self._entries) < self.max_keys:
            return
        oldest_done = next((key for key, entry in self._entries.items() if entry.done), None)
        if oldest_done is None:
            raise IdempotencyStoreFull(f"{self.max_keys} idempotency keys are in progress")
        del self._entries[oldest_done]

    async def claim(self, key: str, fingerprint: str) -> Claim:
        """See :meth:`IdempotencyStore.claim`."""
        entry = self._live(key)
        if entry is None:
            self._make_room()
            self._entries[key] = _Entry(fingerprint, self._clock() + self.ttl_s)
            return Claim(ClaimState.NEW)
        if entry.fingerprint != fingerprint:
            return Claim(ClaimState.CONFLICT)
        if entry.done:
            return Claim(ClaimState.DONE, entry.result)
        return Claim(ClaimState.IN_PROGRESS)

    async def complete(self, key: str, result: Mapping[str, Any]) -> None:
        """See :meth:`IdempotencyStore.complete`."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.result = dict(result)
        entry.done = True
        entry.finished.set()

    async def release(self, key: str) -> None:
        """See :meth:`IdempotencyStore.release`."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.finished.set()

    async def wait(self, key: str, timeout_s: float) -> Claim | None:
        """See :meth:`IdempotencyStore.wait`."""
        entry = self._live(key)
        if entry is None:
            return Claim(ClaimState.NEW)
        try:
            async with asyncio.timeout(timeout_s):
                await entry.finished.wait()
        except TimeoutError:
            return None
        if entry.done:
            return Claim(ClaimState.DONE, entry.result)
        return Claim(ClaimState.NEW)


IDEMPOTENCY: Final = web.AppKey("bff.idempotency", IdempotencyStore)
"""Where the app keeps its :class:`IdempotencyStore`."""
