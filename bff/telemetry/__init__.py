"""Telemetry: Prometheus metrics, OpenTelemetry traces and JSON logs, one module per concern.

- :mod:`bff.telemetry.metrics`: every metric family, ``/metrics``, multiprocess mode;
- :mod:`bff.telemetry.tracing`: the tracer, configured by the standard ``OTEL_*`` variables;
- :mod:`bff.telemetry.logs`: log format, request and trace ids from context, redaction;
- :mod:`bff.telemetry.access` and :mod:`bff.telemetry.http`: one access line per operation or request;
- :mod:`bff.telemetry.operations`: what each GraphQL operation records (hooked in the operation schema);
- :mod:`bff.telemetry.downstream`: what the downstream pipeline records (hooked in its stages);
- :mod:`bff.telemetry.live`: WebSockets, the event bus, webhooks.

:class:`Telemetry` is the app's: :func:`bff.app.create_app` builds it from the settings and hands each
seam its part. With metrics off (``BFF_METRICS=false``) and tracing off (no ``OTEL_TRACES_EXPORTER``)
every seam gets ``None`` and records nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from aiohttp import web

from bff.counters import Counter as KitCounter
from bff.events import EventBus
from bff.settings import Settings
from bff.telemetry.downstream import CacheTelemetry, ServiceTelemetry
from bff.telemetry.live import LiveTelemetry, MeteredEventBus
from bff.telemetry.metrics import Metrics
from bff.telemetry.operations import OperationTelemetry
from bff.telemetry.tracing import Tracing

__all__ = ["MULTIPROC_VARIABLE", "TELEMETRY", "Telemetry"]

MULTIPROC_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


class Telemetry:
    """The app's metrics (``None``: off), tracing (``None``: off) and the parts each seam records with.

    Raises :class:`~bff.settings.SettingsError` for bad ``OTEL_*`` variables (:meth:`Tracing.from_env`).
    """

    def __init__(self, settings: Settings) -> None:
        multiproc = settings.telemetry_env.get(MULTIPROC_VARIABLE)
        self.metrics = (
            Metrics(multiprocess_dir=Path(multiproc) if multiproc else None) if settings.metrics else None
        )
        self.tracing = Tracing.from_env(settings.telemetry_env)
        self.operations = OperationTelemetry(self.metrics, self.tracing)
        self.live = LiveTelemetry(self.metrics) if self.metrics is not None else None
        self.metrics_address: tuple[str, int] | None = None
        """Where ``/metrics`` listens when ``BFF_METRICS_PORT`` gives it a port of its own."""

    @property
    def on(self) -> bool:
        """Whether anything is recorded."""
        return self.metrics is not None or self.tracing is not None

    def service(self, name: str, base_url: str) -> ServiceTelemetry | None:
        """What the service client of ``name`` records with, or ``None`` when telemetry is off."""
        if not self.on:
            return None
        return ServiceTelemetry(name, base_url, self.metrics, self.tracing)

    def cache(self, services: Iterable[str]) -> CacheTelemetry | None:
        """The entity cache storage's observer, or ``None`` without metrics."""
        return CacheTelemetry(self.metrics, services) if self.metrics is not None else None

    def response_cache_size(self) -> Callable[[int, int], None] | None:
        """What sets the response cache's entries and bytes gauges, or ``None`` without metrics."""
        metrics = self.metrics
        if metrics is None:
            return None

        def observe(entries: int, size_bytes: int) -> None:
            metrics.response_cache_entries.set(entries)
            metrics.response_cache_bytes.set(size_bytes)

        return observe

    def follow(self, counter: KitCounter) -> None:
        """Export one of the kit's own counters (:meth:`Metrics.follow`), when metrics are on."""
        if self.metrics is not None:
            self.metrics.follow(counter)

    def event_bus(self, bus: EventBus) -> EventBus:
        """``bus``, counted when metrics are on."""
        return MeteredEventBus(bus, self.metrics) if self.metrics is not None else bus

    async def aclose(self) -> None:
        """Export the spans still queued (in a thread: it blocks) and mark this process's gauges dead."""
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)
        if self.metrics is not None:
            self.metrics.close()


TELEMETRY: Final = web.AppKey("bff.telemetry", Telemetry)
"""Where the app keeps its :class:`Telemetry`."""
