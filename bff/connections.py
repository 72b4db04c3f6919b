"""Per-client caps on what a connection may hold: requests in progress, and idle time.

- **Requests in progress per client IP** (``BFF_MAX_REQUESTS_PER_CLIENT``): HTTP requests, SSE streams
  and WebSockets open at once from one address. Past it, new ones get HTTP 429 ``TOO_MANY_CONNECTIONS``
  with ``Retry-After``, before anything else runs, so one client cannot hold every slot of the process
  with long-lived subscriptions. Behind a proxy every client has the proxy's address: raise the cap
  there, or let the proxy cap clients.
- **Idle time** (``BFF_IDLE_TIMEOUT_MS``, :func:`runner_args`): a connection that has not sent a
  complete request (headers included) within it is closed, as is a keep-alive connection idle that
  long; slow-header (slowloris) clients cannot hold sockets for longer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bff.http_protocol import error_response
from bff.settings import Settings

__all__ = ["TOO_MANY_CONNECTIONS", "client_cap_middleware", "runner_args"]

TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def runner_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner``: aiohttp closes a connection with no request in progress
    once ``keepalive_timeout`` (seconds) passes, from the moment it opens too."""
    return {"keepalive_timeout": settings.idle_timeout_ms / 1000}


def client_cap_middleware(max_in_progress: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse a request while its client IP has ``max_in_progress`` others in progress (429)."""
    in_progress: dict[str, int] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = request.remote or "-"
        count = in_progress.get(client, 0)
        if count >= max_in_progress:
            return error_response(
                429,
                TOO_MANY_CONNECTIONS,
                f"More than {max_in_progress} requests in progress from this client; close some first.",
                headers={"Retry-After": "1"},
                limit=max_in_progress,
            )
        in_progress[client] = count + 1
        try:
            return await handler(request)
        finally:
            remaining = in_progress[client] - 1
            if remaining:
                in_progress[client] = remaining
            else:
                del in_progress[client]

    return middleware
