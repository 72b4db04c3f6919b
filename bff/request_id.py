"""Request ids: accept a sane ``X-Request-Id`` from the client or make one, and echo it back."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)

# A client-supplied id is logged and forwarded downstream, so only short plain tokens are trusted.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_of(request: web.Request) -> str:
    """The request's id (set by :func:`request_id_middleware`; a fresh one if it did not run)."""
    existing = request.get(REQUEST_ID)
    return existing if existing is not None else uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Store the request id under :data:`REQUEST_ID`, bind it for every log line of the request
    (:mod:`bff.telemetry.logs`) and send it back in ``X-Request-Id``."""
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = supplied if _SAFE_ID.fullmatch(supplied) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    # aiohttp runs each request in a task of its own: the binding ends with it.
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
