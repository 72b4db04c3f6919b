"""What the downstream pipeline records, per service: exchanges, retries, breaker, bulkhead, sharing, cache.

:class:`ServiceTelemetry` is one service's view of the app's metrics and tracer, built once per
:class:`~bff.downstream.ServiceClient`, with its labelled children bound up front (a label lookup per
request would cost more than the increment). Each stage of the pipeline calls it at its seam:

- :meth:`ServiceTelemetry.exchange` around each HTTP exchange (``ServiceClient._send``): the duration
  histogram by method and status class, a ``CLIENT`` span whose ``traceparent`` goes with the request,
  one call more for the operation's access line, and a DEBUG line;
- :meth:`~ServiceTelemetry.retried` from the retry loop, :meth:`~ServiceTelemetry.breaker_changed` from
  purgatory's listener, :meth:`~ServiceTelemetry.bulkhead_changed` and
  :meth:`~ServiceTelemetry.bulkhead_rejected` from the bulkhead, :meth:`~ServiceTelemetry.shared` from
  in-flight de-duplication, and ``cache_*`` from the cache stage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import httpx

from bff.telemetry.logs import DOWNSTREAM_LOGGER
from bff.telemetry.metrics import OTHER, Metrics, status_class
from bff.telemetry.operations import count_downstream_call
from bff.telemetry.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from prometheus_client.metrics import Counter, Histogram

__all__ = ["BREAKER_STATES", "CacheTelemetry", "Exchange", "ServiceTelemetry"]

logger = logging.getLogger(DOWNSTREAM_LOGGER)

BREAKER_STATES: Final = ("closed", "open", "half-open")
TIMEOUT: Final = "timeout"
ERROR: Final = "error"


class Exchange:
    """One HTTP exchange being recorded: started by :meth:`ServiceTelemetry.exchange`, ended once by
    :meth:`answered` or :meth:`failed`."""

    __slots__ = ("_method", "_path", "_service", "_span", "_started", "traceparent")

    def __init__(self, service: ServiceTelemetry, method: str, path: str, span: Span | None) -> None:
        self._service = service
        self._method = method
        self._path = path
        self._span = span
        self.traceparent = service.tracing.traceparent(span) if span is not None and service.tracing else None
        """The ``traceparent`` header value to send, when tracing is on."""
        self._started = time.perf_counter()

    def answered(self, status: int) -> None:
        """The service answered with HTTP ``status`` (any: errors are mapped after this)."""
        self._end(status_class(status), status)

    def failed(self, exc: BaseException) -> None:
        """No answer: a transport error, a timeout, or the operation deadline cancelled the exchange."""
        timeout = isinstance(exc, httpx.TimeoutException | asyncio.CancelledError | TimeoutError)
        self._end(TIMEOUT if timeout else ERROR, None, exc)

    def _end(self, outcome: str, status: int | None, exc: BaseException | None = None) -> None:
        seconds = time.perf_counter() - self._started
        service = self._service
        histogram = service.durations.get((self._method, outcome))
        if histogram is None and service.metrics is not None:
            histogram = service.metrics.downstream_duration.labels(service.name, self._method, outcome)
            service.durations[(self._method, outcome)] = histogram
        if histogram is not None:
            histogram.observe(seconds)
        span = self._span
        if span is not None:
            from opentelemetry.trace import Status, StatusCode

            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if exc is not None or (status is not None and status >= 500):
                span.set_attribute("error.type", type(exc).__qualname__ if exc is not None else str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "downstream %s %s %s %s",
                self._method,
                service.name,
                self._path,
                status if status is not None else outcome,
                extra={
                    "service": service.name,
                    "method": self._method,
                    "path": self._path,
                    "status": status if status is not None else outcome,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )


class ServiceTelemetry:
    """One service's metrics (children bound once) and the app's tracer; either may be off (``None``)."""

    def __init__(self, name: str, base_url: str, metrics: Metrics | None, tracing: Tracing | None) -> None:
        self.name = name
        self.metrics = metrics
        self.tracing = tracing
        url = httpx.URL(base_url)
        self._base_url = base_url.rstrip("/")
        self._address = url.host
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self.durations: dict[tuple[str, str], Histogram] = {}
        self._retries: dict[str, Counter] = {}
        self._last_queued = 0
        if metrics is not None:
            self._in_use = metrics.bulkhead_in_use.labels(name)
            self._queued = metrics.bulkhead_queued.labels(name)
            self._rejected = metrics.bulkhead_rejected.labels(name)
            self._shared = metrics.inflight_shared.labels(name)
            self._hits = metrics.cache_hits.labels(name)
            self._misses = metrics.cache_misses.labels(name)
            self._stale = metrics.cache_stale_served.labels(name)
            self._in_use.set(0)
            self._queued.set(0)
            for state in BREAKER_STATES:
                metrics.breaker_state.labels(name, state).set(1 if state == "closed" else 0)

    def exchange(self, method: str, path: str) -> Exchange:
        """Start recording one HTTP exchange of ``method path`` (``path`` without its query: a query may
        carry emails or other personal data, as filters)."""
        count_downstream_call()
        span = None
        tracing = self.tracing
        if tracing is not None:
            from opentelemetry.trace import SpanKind

            span = tracing.tracer.start_span(
                method,
                kind=SpanKind.CLIENT,
                attributes={
                    "http.request.method": method,
                    "server.address": self._address,
                    "server.port": self._port,
                    "url.full": self._base_url + path,
                    "bff.service": self.name,
                },
            )
        return Exchange(self, method, path, span)

    def retried(self, method: str) -> None:
        """One more attempt of a ``method`` call is about to be made."""
        if self.metrics is None:
            return
        counter = self._retries.get(method)
        if counter is None:
            counter = self._retries[method] = self.metrics.downstream_retries.labels(self.name, method)
        counter.inc()

    def breaker_changed(self, state: str) -> None:
        """The breaker entered ``state`` (``closed``, ``open`` or ``half-open``)."""
        metrics = self.metrics
        if metrics is None:
            return
        metrics.breaker_transitions.labels(self.name, state).inc()
        for each in BREAKER_STATES:
            metrics.breaker_state.labels(self.name, each).set(1 if each == state else 0)

    def bulkhead_changed(self, in_use: int, queued: int) -> None:
        """Calls holding a slot and calls waiting for one, now."""
        if self.metrics is not None:
            self._in_use.set(in_use)
            if queued != self._last_queued:  # usually 0 and unchanged: one gauge write saved per call
                self._last_queued = queued
                self._queued.set(queued)

    def bulkhead_rejected(self) -> None:
        """A call was refused because the bulkhead queue was full."""
        if self.metrics is not None:
            self._rejected.inc()

    def shared(self) -> None:
        """A GET joined an identical request in flight instead of sending its own."""
        if self.metrics is not None:
            self._shared.inc()

    def cache_hits(self, count: int) -> None:
        """``count`` records or answers were served fresh from the cache."""
        if self.metrics is not None and count:
            self._hits.inc(count)

    def cache_misses(self, count: int) -> None:
        """``count`` records or answers had to be fetched."""
        if self.metrics is not None and count:
            self._misses.inc(count)

    def cache_stale(self, count: int) -> None:
        """``count`` records or answers were served stale because the fetch failed."""
        if self.metrics is not None and count:
            self._stale.inc(count)


class CacheTelemetry:
    """The entity cache's storage reports (:class:`bff.cache.CacheObserver`): evictions by service (the
    first part of every key), entries and estimated bytes."""

    def __init__(self, metrics: Metrics, services: Iterable[str]) -> None:
        self._metrics = metrics
        self._evictions = {name: metrics.cache_evictions.labels(name) for name in services}
        self._other = metrics.cache_evictions.labels(OTHER)

    def cache_evicted(self, key: str) -> None:
        """Count one eviction for the service the key belongs to."""
        self._evictions.get(key.partition("/")[0], self._other).inc()

    def cache_size(self, entries: int, size_bytes: int) -> None:
        """Set the entries and bytes gauges."""
        self._metrics.cache_entries.set(entries)
        self._metrics.cache_bytes.set(size_bytes)
