"""``Freshness``: what one operation's downstream reads allow a whole-response cache to keep.

Every downstream call an operation makes carries its :class:`~bff.downstream.call.Call`, and with it
one :class:`Freshness`. The cache stage (:mod:`bff.downstream.caching`) notes each answer the
operation used: its resource and how long it stays fresh (a fetched answer's lifetime from its
``Cache-Control``, a cached one's remaining lifetime). Anything a shared cache may not keep spoils
the operation for the response cache (:mod:`bff.operation.response_cache`) with a reason:

- ``uncacheable``: an answer said ``no-store`` or ``private``, or gave no lifetime;
- ``stale``: an answer was served past its lifetime because its service failed;
- ``uncached_read``: a read went around the entity cache (``cache=False``, a path that is not a
  resource) or a write was made.

While the response cache waits for an operation's result (:meth:`Freshness.watch`), the cache stage
also records the version of each resource before its first read (:meth:`bff.cache.EntityCache.version`):
a mutation that invalidates the resource replaces that version, which retires the response.
"""

from __future__ import annotations

import math

__all__ = ["STALE", "UNCACHEABLE", "UNCACHED_READ", "Freshness"]

UNCACHEABLE = "uncacheable"
STALE = "stale"
UNCACHED_READ = "uncached_read"


class Freshness:
    """The shortest lifetime (seconds) of the answers an operation used, the resources they came
    from, and the first reason it may not be cached (``None`` while it may)."""

    __slots__ = ("lifetime_s", "reads", "spoiled", "versions", "watching")

    def __init__(self) -> None:
        self.lifetime_s = math.inf
        self.reads: set[tuple[str, str]] = set()
        """``(service, resource)`` of every answer used."""
        self.spoiled: str | None = None
        self.watching = False
        self.versions: dict[tuple[str, str], str] = {}
        """``(service, resource)`` -> its version before the operation's first read of it, while watched."""

    def watch(self) -> None:
        """Record resource versions from now on (the response cache may keep the result)."""
        self.watching = True

    def used(self, service: str, resource: str, lifetime_s: float | None) -> None:
        """An answer of ``service``'s ``resource`` fresh ``lifetime_s`` more seconds (``None``: may not
        be kept) went into the result."""
        self.reads.add((service, resource))
        if lifetime_s is None or lifetime_s <= 0:
            self.spoil(UNCACHEABLE)
        elif lifetime_s < self.lifetime_s:
            self.lifetime_s = lifetime_s

    def spoil(self, reason: str) -> None:
        """The result may not be cached, for ``reason`` (the first reason given is kept)."""
        if self.spoiled is None:
            self.spoiled = reason
