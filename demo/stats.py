"""Request counting for the demo services, so tests can prove how many downstream calls the BFF made.

``stats_middleware`` counts every request by method and path as the client sent it (without the query
string), before any fault is injected; the admin endpoints themselves are not counted. The endpoint is
the same as ``demo/jsonserver/counter.js`` adds to real json-server, so tests read both alike::

    GET    /_stats   200 {"total": 4, "requests": {"GET /tracks": 3, "GET /albums/1": 1},
                          "recent": ["GET /tracks?id=1&id=2", ...]}  (the last 100 requests, with query)
    DELETE /_stats   200 {"total": 0, "requests": {}}  (resets the counts)
    other methods    405 {"error": "method not allowed"}
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from bff_chinook.demo.faults import is_admin_path

__all__ = ["STATS", "STATS_PATH", "RequestStats", "setup_stats", "stats_middleware"]

STATS_PATH: Final = "/_stats"
RECENT: Final = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestStats:
    """Counts of the requests one service has seen, keyed ``"<METHOD> <path>"``."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._recent: deque[str] = deque(maxlen=RECENT)

    @property
    def total(self) -> int:
        """How many requests were counted since the last reset."""
        return self._counts.total()

    def count(self, method: str, path: str, query: str = "") -> None:
        """Count one request, e.g. ``count("GET", "/tracks", "id=1&id=2")``."""
        self._counts[f"{method} {path}"] += 1
        self._recent.append(f"{method} {path}?{query}" if query else f"{method} {path}")

    def get(self, key: str) -> int:
        """Return the count of one ``"<METHOD> <path>"`` key, 0 if never seen."""
        return self._counts[key]

    def reset(self) -> None:
        """Forget every count."""
        self._counts.clear()
        self._recent.clear()

    def snapshot(self) -> dict[str, Any]:
        """Return the JSON body of ``GET /_stats``."""
        return {"total": self.total, "requests": dict(self._counts), "recent": list(self._recent)}


STATS: Final = web.AppKey("stats", RequestStats)


@web.middleware
async def stats_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request in the app's ``RequestStats`` (under ``STATS``), then handle it."""
    if not is_admin_path(request.path):
        path, _, query = request.raw_path.partition("?")
        request.app[STATS].count(request.method, path, query)
    return await handler(request)


# A live counter: no client or proxy may answer it from a cache.
_NO_STORE: Final = {"Cache-Control": "no-store"}


async def _get_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].snapshot(), headers=_NO_STORE)


async def _delete_stats(request: web.Request) -> web.Response:
    stats = request.app[STATS]
    stats.reset()
    return web.json_response(stats.snapshot(), headers=_NO_STORE)


async def _stats_not_allowed(_request: web.Request) -> web.Response:
    headers = {**_NO_STORE, "Allow": "GET, DELETE"}
    return web.json_response({"error": "method not allowed"}, status=405, headers=headers)


def setup_stats(app: web.Application) -> RequestStats:
    """Store a ``RequestStats`` under ``STATS`` and add the ``/_stats`` routes; returns it.

    The caller puts ``stats_middleware`` in the app's middlewares, outside the fault middleware so
    faulted requests are counted too.
    """
    stats = RequestStats()
    app[STATS] = stats
    app.router.add_get(STATS_PATH, _get_stats)
    app.router.add_delete(STATS_PATH, _delete_stats)
    app.router.add_route("*", STATS_PATH, _stats_not_allowed)
    return stats
