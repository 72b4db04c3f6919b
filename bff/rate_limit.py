"""Rate limiting per principal (or per client IP when anonymous), with the ``limits`` library.

``BFF_RATE_LIMIT`` (``100/minute``, ``10/second;1000/hour``, ...) is a moving window per key. Each
request counts 1, or its operation's cost with ``BFF_RATE_LIMIT_BY_COST`` (then the limit is in
cost units, and one operation counts at most the whole window). Counters live in the storage
``BFF_RATE_LIMIT_STORAGE_URL`` names: ``memory://`` in the process, ``redis://host:port/db`` shared
between instances. Over the limit: HTTP 429 with ``Retry-After`` (seconds) and ``RATE_LIMITED``.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from bff.compat import stop_storage_expiry
from bff.settings import Settings, SettingsError

__all__ = ["RATE_LIMITED", "RateLimiter"]

RATE_LIMITED = "RATE_LIMITED"


class RateLimiter:
    """Moving-window limits per key over a ``limits`` async storage."""

    def __init__(self, limit: str, storage_url: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        try:
            storage = storage_from_string(url)
        except Exception as exc:  # limits raises ConfigurationError or the driver's ImportError
            raise SettingsError(f"BFF_RATE_LIMIT_STORAGE_URL: {exc}") from None
        if not isinstance(storage, Storage):  # pragma: no cover - "async+" always gives an async one
            raise SettingsError(f"BFF_RATE_LIMIT_STORAGE_URL: {storage_url!r} is not an async storage")
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        """The limiter the settings configure, or ``None`` without ``BFF_RATE_LIMIT``."""
        if settings.rate_limit is None:
            return None
        return cls(settings.rate_limit, settings.rate_limit_storage_url)

    async def hit(self, key: str, cost: int = 1) -> float | None:
        """Count ``cost`` for ``key``; ``None`` when allowed, else the seconds until a retry may pass."""
        for item in self.items:
            weight = max(1, min(cost, item.amount))
            if not await self._limiter.hit(item, key, cost=weight):
                stats = await self._limiter.get_window_stats(item, key)
                return float(max(1, math.ceil(stats.reset_time - time.time())))
        return None

    async def retry_after(self, key: str) -> float | None:
        """Like :meth:`hit` without counting: ``None`` while ``key`` may be counted once more, else the
        seconds until it may."""
        for item in self.items:
            if not await self._limiter.test(item, key):
                stats = await self._limiter.get_window_stats(item, key)
                return float(max(1, math.ceil(stats.reset_time - time.time())))
        return None

    async def aclose(self) -> None:
        """Stop the storage's background work (the memory storage's expiry task)."""
        stop_storage_expiry(self.storage)
