"""The entity cache: downstream answers kept across operations, with their freshness.

Entries are of three kinds, all written by the downstream pipeline's cache stage
(:mod:`bff.downstream.caching`):

- an entity, ``catalog/tracks/3`` -> the record;
- an index, ``sales/invoices?customerId=1`` -> the ids of the matching records, so a by-foreign-key
  load is answered from the cache too;
- a whole answer (a list page, ``GET /genres``, ``GET /tracks/3``), keyed by its URL under the
  resource's version (:func:`answer_key`); a mutation bumps the version to forget them all.

Lifetime (RFC 9111 §5.2.2 directives, from the answer's ``Cache-Control``): ``no-store`` or
``private`` -> not stored (the BFF is a shared cache), nor an answer to a request that carried
``Authorization`` unless it is ``public`` or has ``s-maxage``; ``s-maxage`` or else ``max-age`` -> that
many seconds; otherwise the service's ``cache_ttl_ms`` (0: not stored). ``no-cache`` (which
json-server sends on every answer) is treated as giving no lifetime: revalidating every entity would
cost the request the cache is there to save.

An entry is kept ``stale_if_error_ms`` past its lifetime (RFC 5861 ``stale-if-error`` semantics):
while the service fails, such a stale entry is served and the response says so.

Storage is a protocol: :class:`MemoryStorage` (cachetools ``TLRUCache``, bounded, per-entry expiry)
is the in-process default; with ``BFF_REDIS_URL``, :class:`bff.redis.cache.SharedCacheStorage` puts a
small one of these in front of Redis, behind the same three methods.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cachetools import TLRUCache

__all__ = [
    "CacheObserver",
    "CacheStorage",
    "EntityCache",
    "Entry",
    "Hit",
    "MemoryStorage",
    "answer_key",
    "entity_key",
    "index_key",
    "lifetime_s",
]


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached value, when it was stored and until when it is fresh (wall-clock seconds)."""

    value: Any
    stored_at: float
    fresh_until: float


@dataclass(frozen=True, slots=True)
class Hit:
    """A lookup result: the value, its age in seconds, whether it is still fresh, and for how many
    more seconds (``fresh_s``, 0 once stale)."""

    value: Any
    age_s: float
    fresh: bool
    fresh_s: float = 0.0


class CacheStorage(Protocol):
    """Where entries live. Keys are strings; ``keep_until`` is when the storage may drop an entry."""

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]: ...

    async def set_many(self, entries: Mapping[str, Entry], *, keep_until: float) -> None: ...

    async def delete_many(self, keys: Sequence[str]) -> None: ...


class CacheObserver(Protocol):
    """What :class:`MemoryStorage` reports (for metrics)."""

    def cache_evicted(self, key: str) -> None:
        """``key`` was dropped to stay within the entry limit (not expired: evicted)."""

    def cache_size(self, entries: int, size_bytes: int) -> None:
        """The storage holds ``entries`` entries of about ``size_bytes`` bytes, after a change."""


class MemoryStorage:
    """In-process storage of at most ``max_entries`` entries (least recently used dropped first).

    With an ``observer``, each entry's size is estimated as its value's compact JSON length, and
    evictions and sizes are reported to it.
    """

    def __init__(
        self,
        max_entries: int,
        *,
        clock: Callable[[], float] = time.time,
        observer: CacheObserver | None = None,
    ) -> None:
        # Sized in bytes (cachetools keeps the sum exact through expiry and eviction); the entry
        # limit is kept by set_many, which can then tell evictions apart.
        self._cache: TLRUCache[str, tuple[Entry, float, int]] = TLRUCache(
            maxsize=sys.maxsize, ttu=lambda _key, value, _now: value[1], timer=clock, getsizeof=_size_of
        )
        self._max_entries = max(max_entries, 1)
        self._enabled = max_entries > 0
        self._observer = observer

    def __len__(self) -> int:
        return len(self._cache)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """The entries of ``keys`` (``None`` where absent or expired)."""
        out: list[Entry | None] = []
        for key in keys:
            kept = self._cache.get(key)
            out.append(None if kept is None else kept[0])
        return out

    async def set_many(self, entries: Mapping[str, Entry], *, keep_until: float) -> None:
        """Store ``entries`` until ``keep_until``."""
        if self._enabled:
            observer = self._observer
            for key, entry in entries.items():
                self._cache[key] = (entry, keep_until, _json_size(entry.value) if observer else 0)
                while len(self._cache) > self._max_entries:
                    evicted, _ = self._cache.popitem()
                    if observer is not None:
                        observer.cache_evicted(evicted)
            if observer is not None:
                observer.cache_size(len(self._cache), int(self._cache.currsize))

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Drop ``keys``; absent keys are ignored."""
        for key in keys:
            self._cache.pop(key, None)
        if self._observer is not None:
            self._observer.cache_size(len(self._cache), int(self._cache.currsize))

    def clear(self) -> None:
        """Drop every entry."""
        self._cache.clear()
        if self._observer is not None:
            self._observer.cache_size(0, 0)


def _size_of(kept: tuple[Entry, float, int]) -> int:
    return kept[2]


def _json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON: an estimate of what an entry holds."""
    return len(json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False))


def entity_key(service: str, resource: str, record_id: str) -> str:
    """The key of one record: ``service/resource/id``."""
    return f"{service}/{resource}/{record_id}"


def index_key(service: str, resource: str, field: str, value: str) -> str:
    """The key of the ids of the records whose ``field`` is ``value``: ``service/resource?field=value``."""
    return f"{service}/{resource}?{field}={value}"


def version_key(service: str, resource: str) -> str:
    """The key of a resource's version, part of every whole-answer key of it: ``service/resource@``."""
    return f"{service}/{resource}@"


def answer_key(service: str, resource: str, version: str, url: str) -> str:
    """The key of a whole answer: ``service/resource@version path?query``."""
    return f"{service}/{resource}@{version} {url}"


def lifetime_s(cache_control: str | None, default_s: float, *, authorized: bool = False) -> float | None:
    """Seconds a response may be cached for, or ``None`` when it must not be stored (see module doc).

    ``default_s`` is the lifetime of an answer that gives none (0: not stored). ``authorized`` says
    the request carried ``Authorization``: a shared cache then stores the answer only when it says
    ``public`` or ``s-maxage`` (RFC 9111 §3.5), since it may be that user's alone.
    """
    directives: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip('"') or None
    if "no-store" in directives or "private" in directives:
        return None
    if authorized and "public" not in directives and "s-maxage" not in directives:
        return None
    for name in ("s-maxage", "max-age"):
        given = directives.get(name)
        if given is not None and given.isdigit():
            seconds = float(given)
            return seconds if seconds > 0 else None
    return default_s if default_s > 0 else None


class EntityCache:
    """Looks entries up with their freshness, stores them with a lifetime, and invalidates them."""

    def __init__(self, storage: CacheStorage, *, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self._clock = clock

    async def lookup(self, keys: Sequence[str]) -> dict[str, Hit]:
        """The hits among ``keys`` (fresh or stale-but-kept); misses are absent."""
        if not keys:
            return {}
        now = self._clock()
        entries = await self.storage.get_many(keys)
        return {
            key: Hit(
                entry.value,
                max(0.0, now - entry.stored_at),
                now < entry.fresh_until,
                max(0.0, entry.fresh_until - now),
            )
            for key, entry in zip(keys, entries, strict=True)
            if entry is not None
        }

    async def store(self, values: Mapping[str, Any], *, lifetime_s: float, stale_s: float) -> None:
        """Store ``values`` fresh for ``lifetime_s`` seconds and kept ``stale_s`` seconds longer."""
        if not values:
            return
        now = self._clock()
        fresh_until = now + lifetime_s
        entries = {key: Entry(value, now, fresh_until) for key, value in values.items()}
        await self.storage.set_many(entries, keep_until=fresh_until + stale_s)

    async def invalidate(self, keys: Sequence[str], *, resources: Sequence[tuple[str, str]] = ()) -> None:
        """Forget ``keys`` (built with :func:`entity_key` and :func:`index_key`) and every whole answer
        of ``resources`` (``(service, resource)`` pairs: their versions move on)."""
        await self.storage.delete_many(keys)
        for service, resource in resources:
            await self._new_version(service, resource)

    async def version(self, service: str, resource: str) -> str:
        """The version of a resource's whole answers: a random token that a mutation replaces.

        A version the storage dropped (bounded memory) is replaced too, so answers stored under an
        older version can never come back.
        """
        (entry,) = await self.storage.get_many([version_key(service, resource)])
        if entry is not None:
            return str(entry.value)
        return await self._new_version(service, resource)

    async def versions(self, resources: Sequence[tuple[str, str]]) -> list[str | None]:
        """The current versions of ``resources`` (``(service, resource)`` pairs), in order; ``None``
        for one the storage no longer holds (its next :meth:`version` will be a new one). Makes none."""
        entries = await self.storage.get_many(
            [version_key(service, resource) for service, resource in resources]
        )
        return [None if entry is None else str(entry.value) for entry in entries]

    async def _new_version(self, service: str, resource: str) -> str:
        token = uuid.uuid4().hex[:12]
        entry = Entry(token, self._clock(), float("inf"))
        await self.storage.set_many({version_key(service, resource): entry}, keep_until=float("inf"))
        return token
