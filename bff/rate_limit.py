"""Rate limiting per principal (or per client IP when anonymous), with the ``limits`` library.

``BFF_RATE_LIMIT`` (``100/minute``, ``10/second;1000/hour``, ...) is a moving window per key. Each
request counts 1, or its operation's cost with ``BFF_RATE_LIMIT_BY_COST`` (then the limit is in
cost units, and one operation counts at most the whole window). Counters live in the storage
``BFF_RATE_LIMIT_STORAGE_URL`` names (``memory://`` in the process, ``redis://host:port/db`` shared),
or by default in the Redis of ``BFF_REDIS_URL`` when it is set (one limit for all instances), else in
the process. Over the limit: HTTP 429 with ``Retry-After`` (seconds) and ``RATE_LIMITED``.

When the storage cannot be reached the limit fails open: the request is let through, counted in
:attr:`RateLimiter.failed_open`, and the first such request of an outage is logged at WARNING (the
recovery at INFO). A rate limit protects capacity; refusing every request because its counter is
unreachable would turn a Redis outage into a full one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from bff.compat import stop_storage_expiry
from bff.settings import Settings, SettingsError

__all__ = ["RATE_LIMITED", "RateLimiter"]

logger = logging.getLogger("bff.rate_limit")

RATE_LIMITED = "RATE_LIMITED"


class RateLimiter:
    """Moving-window limits per key over a ``limits`` async storage.

    ``storage`` (a ready ``limits`` async storage, e.g. over the app's Redis pool) wins over
    ``storage_url``. ``available`` says whether the storage is worth trying now (a Redis known to be
    down is not): when it says no, requests pass without being counted, as on a storage error.
    """

    def __init__(
        self,
        limit: str,
        storage_url: str = "memory://",
        *,
        storage: Storage | None = None,
        available: Callable[[], bool] = lambda: True,
    ) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        if storage is None:
            url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
            try:
                made = storage_from_string(url, wrap_exceptions=True)
            except Exception as exc:  # limits raises ConfigurationError or the driver's ImportError
                raise SettingsError(f"BFF_RATE_LIMIT_STORAGE_URL: {exc}") from None
            if not isinstance(made, Storage):  # pragma: no cover - "async+" always gives an async one
                raise SettingsError(f"BFF_RATE_LIMIT_STORAGE_URL: {storage_url!r} is not an async storage")
            storage = made
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._available = available
        self._open = False
        self.failed_open = 0
        """Requests let through uncounted because the storage could not be reached."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        storage: Storage | None = None,
        available: Callable[[], bool] | None = None,
    ) -> RateLimiter | None:
        """The limiter the settings configure, or ``None`` without ``BFF_RATE_LIMIT``.

        ``storage`` (with its ``available`` check) is used unless ``BFF_RATE_LIMIT_STORAGE_URL`` names
        one; without either, memory.
        """
        if settings.rate_limit is None:
            return None
        if settings.rate_limit_storage_url is not None:
            return cls(settings.rate_limit, settings.rate_limit_storage_url)
        if storage is None:
            return cls(settings.rate_limit)
        return cls(settings.rate_limit, storage=storage, available=available or (lambda: True))

    def _fail_open(self, exc: Exception | None) -> None:
        self.failed_open += 1
        if not self._open:
            self._open = True
            logger.warning("rate limit not enforced: its storage is unreachable (%s)", exc or "down")

    def _closed_again(self) -> None:
        if self._open:
            self._open = False
            logger.info("rate limit enforced again: its storage answers")

    async def hit(self, key: str, cost: int = 1) -> float | None:
        """Count ``cost`` for ``key``; ``None`` when allowed (or the storage cannot be reached), else the
        seconds until a retry may pass."""
        if not self._available():
            self._fail_open(None)
            return None
        try:
            for item in self.items:
                weight = max(1, min(cost, item.amount))
                if not await self._limiter.hit(item, key, cost=weight):
                    stats = await self._limiter.get_window_stats(item, key)
                    self._closed_again()
                    return float(max(1, math.ceil(stats.reset_time - time.time())))
        except (StorageError, OSError) as exc:
            self._fail_open(exc)
            return None
        self._closed_again()
        return None

    async def retry_after(self, key: str) -> float | None:
        """Like :meth:`hit` without counting: ``None`` while ``key`` may be counted once more (or the
        storage cannot be reached), else the seconds until it may."""
        if not self._available():
            return None
        try:
            for item in self.items:
                if not await self._limiter.test(item, key):
                    stats = await self._limiter.get_window_stats(item, key)
                    return float(max(1, math.ceil(stats.reset_time - time.time())))
        except (StorageError, OSError) as exc:
            self._fail_open(exc)
        return None

    async def aclose(self) -> None:
        """Stop the storage's background work (the memory storage's expiry task)."""
        stop_storage_expiry(self.storage)
