"""The HTTP side of telemetry: the access-line middleware, ``/metrics``, and its optional own port.

:func:`telemetry_middleware` wraps each request to the GraphQL path. It gives the request a
:class:`~bff.telemetry.access.RequestLog`, lets the handler run, and writes one access line with the
HTTP status: the operation's fields when one ran, else the code the request was refused with, which
it also counts in ``bff_refusals_total`` (and a ``RATE_LIMITED`` there, the auth failure throttle, in
``bff_rate_limited_total{limit="auth_failures"}``). An accepted WebSocket (101) writes no line: its
operations write their own; a refused upgrade (401, 403, 429) writes one like any refused request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from bff.telemetry.access import REQUEST_LOG, RequestLog, access_logger
from bff.telemetry.metrics import Metrics

__all__ = ["METRICS_PATH", "metrics_port_ctx", "telemetry_middleware"]

METRICS_PATH: Final = "/metrics"
RATE_LIMITED: Final = "RATE_LIMITED"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def telemetry_middleware(
    metrics: Metrics | None, graphql_path: str
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware writing the access line of each HTTP request to ``graphql_path``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != graphql_path:
            return await handler(request)
        log = RequestLog()
        token = REQUEST_LOG.set(log)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            REQUEST_LOG.reset(token)
            if status != 101:  # WebSocket operations log themselves
                _finish(log, request, status, time.perf_counter() - started, metrics)

    return middleware


def _finish(
    log: RequestLog, request: web.Request, status: int, seconds: float, metrics: Metrics | None
) -> None:
    if metrics is not None:
        for code in log.error_codes[:1]:
            label = metrics.error_code(code)
            metrics.refusals.labels(label).inc()
            if label == RATE_LIMITED:
                metrics.rate_limited.labels("auth_failures").inc()
    if not access_logger.isEnabledFor(logging.INFO):
        return  # BFF_LOG_LEVEL above INFO: no line, so no fields to gather
    fields: dict[str, Any]
    if log.operation is not None:
        fields = dict(log.operation)
        if not fields.get("error_codes") and log.error_codes:
            fields["error_codes"] = list(log.error_codes)
    else:
        fields = {
            "operation_name": None,
            "operation_type": None,
            "transport": "http",
            "duration_ms": round(seconds * 1000, 2),
            "downstream_calls": 0,
            "outcome": "error" if status >= 400 else "success",
            "error_codes": list(log.error_codes),
        }
    fields["status"] = status
    fields["method"] = request.method
    access_logger.info("operation" if log.operation is not None else "request", extra=fields)


def metrics_port_ctx(
    metrics: Metrics, host: str, port: int, bound: Callable[[str, int], None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context serving only ``/metrics`` on ``host:port`` while the app runs; ``bound`` gets
    the address it listens on (port 0 picks a free one)."""

    async def serve(_app: web.Application) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_get(METRICS_PATH, metrics.handler())
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            for address in runner.addresses:
                if isinstance(address, tuple):
                    bound(str(address[0]), int(address[1]))
                    break
            yield
        finally:
            await runner.cleanup()

    return serve
