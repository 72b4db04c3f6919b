"""CORS for the GraphQL endpoint: only pages on allowed origins may call it from a browser.

``BFF_CORS_ALLOWED_ORIGINS`` lists origins (``https://app.example.com``); ``*`` allows any. A
request whose ``Origin`` is allowed gets ``Access-Control-Allow-Origin`` with that origin (and
``Vary: Origin``); a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed
origin gets 204 with the methods and headers the endpoint accepts, from any other origin 403. The
same list decides WebSocket upgrades (Strawberry's ``allowed_origins``). Without the setting no
CORS header is sent, so only same-origin pages can read answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from aiohttp import web

__all__ = ["ALLOWED_HEADERS", "cors_middleware"]

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = (
    "Accept, Authorization, Content-Type, X-Api-Key, X-Request-Id, "
    "Apollo-Require-Preflight, X-Apollo-Operation-Name, Apollographql-Client-Name, "
    "Apollographql-Client-Version"
)
EXPOSED_HEADERS = "X-Request-Id, Retry-After"
PREFLIGHT_MAX_AGE_S = 600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cors_middleware(
    allowed_origins: Collection[str], path: str
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """CORS headers and preflights for requests to ``path`` from ``allowed_origins``."""
    allow_any = "*" in allowed_origins
    origins = frozenset(origin.rstrip("/").lower() for origin in allowed_origins)

    def allowed(origin: str) -> bool:
        return allow_any or origin.rstrip("/").lower() in origins

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.path != path or origin is None:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed(origin):
                return web.Response(status=403, text="Origin not allowed", headers={"Vary": "Origin"})
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if allowed(origin) and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.headers.add("Vary", "Origin")
        return response

    return middleware
