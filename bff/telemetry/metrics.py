r"""Prometheus metrics: every family the BFF exports, in one place, and how ``/metrics`` serves them.

Names and units follow the Prometheus conventions (``bff_`` prefix, base units, ``_seconds``,
``_bytes``, counters end in ``_total``). Every label has a bounded set of values: services, methods,
status classes, error codes and states are fixed by the app and the kit; an operation's name is a
label only when the safelist bounds it (``operation_name`` is otherwise ``unknown``); topics,
subscription fields and webhook endpoints are the app's, and past :data:`MAX_LABEL_VALUES` distinct
values any further one is counted as ``other``.

============================================  =========  ============================================
family                                        type       labels
============================================  =========  ============================================
``bff_operation_duration_seconds``            histogram  operation_type, operation_name, outcome
``bff_operation_errors_total``                counter    code
``bff_refusals_total``                        counter    code
``bff_rate_limited_total``                    counter    limit (``operations``, ``auth_failures``)
``bff_downstream_request_duration_seconds``   histogram  service, method, status_class
``bff_downstream_retries_total``              counter    service, method
``bff_downstream_breaker_state``              gauge      service, state
``bff_downstream_breaker_transitions_total``  counter    service, state
``bff_downstream_bulkhead_in_use``            gauge      service
``bff_downstream_bulkhead_queued``            gauge      service
``bff_downstream_bulkhead_rejected_total``    counter    service
``bff_downstream_inflight_shared_total``      counter    service
``bff_cache_hits_total``                      counter    service
``bff_cache_misses_total``                    counter    service
``bff_cache_stale_served_total``              counter    service
``bff_cache_evictions_total``                 counter    service
``bff_cache_entries``, ``bff_cache_bytes``    gauge
``bff_websocket_connections``                 gauge
``bff_subscriptions_active``                  gauge      field
``bff_events_published_total``                counter    topic
``bff_events_delivered_total``                counter    topic
``bff_slow_subscribers_dropped_total``        counter
``bff_webhooks_received_total``               counter    endpoint, outcome
``bff_webhooks_refused_total``                counter    endpoint, code
``bff_downstream_contract_violations_total``  counter    service, resource, field
``bff_deprecated_field_uses_total``           counter    coordinate
``bff_response_cache_entries``, ``_bytes``    gauge
``bff_response_cache_lookups_total``          counter    outcome
``bff_response_cache_bypassed_total``         counter    reason (:mod:`bff.operation.response_cache`)
``bff_subscription_executions_total``         counter
``bff_subscription_deliveries_total``         counter
``bff_compiled_runs_total``                   counter
``bff_compiled_fallbacks_total``              counter    reason (:mod:`bff.operation.compiled`)
============================================  =========  ============================================

The last eight but the two gauges are the kit's own :class:`bff.counters.Counter`\ s (a service
client's ``contract_violations``, the pipeline's ``deprecations.uses``, the response cache's
``lookups`` and ``bypassed``, the subscription groups' ``executions``
and ``deliveries``, :mod:`bff.subscription_groups`, the compiled plans' ``runs`` and ``fallbacks``),
exported by :meth:`Metrics.follow`.

plus the process collector's ``process_*``, ``python_gc_*`` and ``python_info`` (one process only: see below).

**Several worker processes.** With ``PROMETHEUS_MULTIPROC_DIR`` set in the environment before the
process starts, prometheus-client keeps every value in files in that directory (its multiprocess
mode) and ``/metrics`` answers the sum over every process writing there: counters and histograms add
up, gauges are ``livesum`` (the sum over the processes still alive; a process marks itself dead when
its app shuts down). The directory must be empty when the first worker starts. The per-process
collectors (``process_*``, ``python_gc_*``) are left out then: prometheus-client cannot add them up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bff.contract import contract_violations_counter
from bff.counters import Counter as KitCounter
from bff.operation.deprecations import DeprecationTracker
from bff.operation.fallbacks import compiled_counters
from bff.operation.response_cache import response_cache_counters

__all__ = [
    "MAX_LABEL_VALUES",
    "OTHER",
    "UNKNOWN",
    "BoundedLabel",
    "Metrics",
    "status_class",
]

MAX_LABEL_VALUES: Final = 100
"""Distinct values a label taken from the app (topic, field, endpoint, code) may have; more are ``other``."""
OTHER: Final = "other"
UNKNOWN: Final = "unknown"

OPERATION_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds: from a cached answer (about a millisecond) to the longest operation deadline worth seeing."""
DOWNSTREAM_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: json-server answers in about 2.5 ms here; read timeouts default to 5 s."""

_CODE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class BoundedLabel:
    """The values of one label, at most ``limit`` distinct ones; any further value becomes ``other``."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


def status_class(status: int) -> str:
    """``2xx``, ``3xx``, ``4xx`` or ``5xx`` for an HTTP status."""
    return f"{status // 100}xx"


class Metrics:
    """Every metric family of one app, registered in its own :class:`CollectorRegistry`.

    ``multiprocess_dir`` is ``PROMETHEUS_MULTIPROC_DIR`` as the settings found it (see the module
    docstring); without it the registry also holds the process, platform and GC collectors. One
    instance per app: the seams that record (the operation schema, service clients, the cache, the
    bus, webhook ingress) get it or a per-service view of it from :func:`bff.app.create_app`.
    """

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.declared: list[tuple[str, str, tuple[str, ...]]] = []
        """``(exposed name, type, label names)`` of every family declared here."""
        if multiprocess_dir is None:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.code = BoundedLabel()
        self.topic = BoundedLabel()
        self.field = BoundedLabel()
        self.endpoint = BoundedLabel()

        # Operations (bff.operation.schema, via bff.telemetry.operations).
        self.operation_duration = self._histogram(
            "bff_operation_duration_seconds",
            "Time from admission to the last result of GraphQL queries and mutations, any transport.",
            ("operation_type", "operation_name", "outcome"),
            OPERATION_BUCKETS,
        )
        self.operation_errors = self._counter(
            "bff_operation_errors",
            "GraphQL errors sent to clients, by extensions.code (one per error in a response or event).",
            ("code",),
        )
        self.refusals = self._counter(
            "bff_refusals",
            "Requests and operations refused before execution (limits, persisted queries, auth, rate "
            "limits, transport checks), by extensions.code.",
            ("code",),
        )
        self.rate_limited = self._counter(
            "bff_rate_limited",
            "Requests refused by a rate limit: BFF_RATE_LIMIT (operations) or BFF_AUTH_FAILURE_LIMIT "
            "(auth_failures).",
            ("limit",),
        )

        # Downstream (bff.downstream, via bff.telemetry.downstream).
        self.downstream_duration = self._histogram(
            "bff_downstream_request_duration_seconds",
            "One HTTP exchange with a downstream service, to the last byte; status_class is 2xx..5xx, "
            "or timeout/error when no response came.",
            ("service", "method", "status_class"),
            DOWNSTREAM_BUCKETS,
        )
        self.downstream_retries = self._counter(
            "bff_downstream_retries",
            "Attempts of a downstream call after its first (transport errors, 429, 502-504).",
            ("service", "method"),
        )
        self.breaker_state = self._gauge(
            "bff_downstream_breaker_state",
            "1 for the circuit breaker's current state (closed, open, half-open), 0 for the others; "
            "summed over live processes.",
            ("service", "state"),
        )
        self.breaker_transitions = self._counter(
            "bff_downstream_breaker_transitions",
            "Circuit breaker state changes, by the state entered.",
            ("service", "state"),
        )
        self.bulkhead_in_use = self._gauge(
            "bff_downstream_bulkhead_in_use",
            "Downstream calls holding a bulkhead slot now.",
            ("service",),
        )
        self.bulkhead_queued = self._gauge(
            "bff_downstream_bulkhead_queued",
            "Downstream calls waiting for a bulkhead slot now.",
            ("service",),
        )
        self.bulkhead_rejected = self._counter(
            "bff_downstream_bulkhead_rejected",
            "Downstream calls refused at once because the bulkhead queue was full.",
            ("service",),
        )
        self.inflight_shared = self._counter(
            "bff_downstream_inflight_shared",
            "GETs answered by joining an identical request already in flight, instead of sending one.",
            ("service",),
        )

        # Entity cache (bff.downstream.caching and bff.cache).
        self.cache_hits = self._counter(
            "bff_cache_hits",
            "Records and answers found fresh in the entity cache.",
            ("service",),
        )
        self.cache_misses = self._counter(
            "bff_cache_misses",
            "Records and answers fetched because the entity cache had none fresh.",
            ("service",),
        )
        self.cache_stale_served = self._counter(
            "bff_cache_stale_served",
            "Records and answers served past their lifetime because the service failed (stale-if-error).",
            ("service",),
        )
        self.cache_evictions = self._counter(
            "bff_cache_evictions",
            "Entries the in-process cache dropped to stay within BFF_CACHE_MAX_ENTRIES.",
            ("service",),
        )
        self.cache_entries = self._gauge(
            "bff_cache_entries",
            "Entries in the in-process entity cache (records, indexes, answers, versions).",
        )
        self.cache_bytes = self._gauge(
            "bff_cache_bytes",
            "Estimated size of the in-process entity cache: its values as compact JSON.",
        )

        # Whole-response cache (bff.operation.response_cache); its counts are kit counters below.
        self.response_cache_entries = self._gauge(
            "bff_response_cache_entries",
            "Results in the in-process whole-response cache (BFF_RESPONSE_CACHE).",
        )
        self.response_cache_bytes = self._gauge(
            "bff_response_cache_bytes",
            "Estimated size of the whole-response cache: its results as compact JSON, with their keys.",
        )

        # Live: WebSockets, subscriptions, the event bus, webhooks (bff.telemetry.live).
        self.websocket_connections = self._gauge(
            "bff_websocket_connections",
            "Open WebSocket connections.",
        )
        self.subscriptions_active = self._gauge(
            "bff_subscriptions_active",
            "Running subscriptions, by root field.",
            ("field",),
        )
        self.events_published = self._counter(
            "bff_events_published",
            "Events published on the event bus, by topic.",
            ("topic",),
        )
        self.events_delivered = self._counter(
            "bff_events_delivered",
            "Events handed to a subscription (one per subscriber and event), by topic.",
            ("topic",),
        )
        self.slow_subscribers_dropped = self._counter(
            "bff_slow_subscribers_dropped",
            "Subscribers dropped for falling more than BFF_SUBSCRIPTION_QUEUE_SIZE events behind.",
        )
        self.webhooks_received = self._counter(
            "bff_webhooks_received",
            "Webhook deliveries, by endpoint and outcome: accepted, duplicate or refused.",
            ("endpoint", "outcome"),
        )
        self.webhooks_refused = self._counter(
            "bff_webhooks_refused",
            "Webhook deliveries refused, by endpoint and error code (the reason).",
            ("endpoint", "code"),
        )
        # The kit's own counters (bff.counters), declared from the kit's definitions of them. The
        # subscription groups run operations, whose telemetry imports this module: imported here.
        from bff.subscription_groups import sharing_counters

        self._kit_counters = {
            spec.name: self._counter(spec.name.removesuffix("_total"), spec.documentation, spec.labels)
            for spec in (
                contract_violations_counter(),
                DeprecationTracker().uses,
                *response_cache_counters(),
                *sharing_counters(),
                *compiled_counters(),
            )
        }

    def follow(self, counter: KitCounter) -> None:
        """Export one of the kit's counters under its name: what it counted so far, then every
        increment. Raises ``KeyError`` for a counter this module does not declare."""
        exported = self._kit_counters[counter.name]

        def inc(values: tuple[str, ...], amount: int) -> None:
            # prometheus-client refuses labels() on a family declared without labels.
            (exported.labels(*values) if values else exported).inc(amount)

        for values, amount in counter.items():
            inc(values, amount)
        counter.observe(inc)

    def _counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        self.declared.append((f"{name}_total", "counter", labels))
        return Counter(name, documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        self.declared.append((name, "gauge", labels))
        # livesum: with several processes, the sum over those alive (see the module docstring).
        return Gauge(name, documentation, labels, registry=self.registry, multiprocess_mode="livesum")

    def _histogram(
        self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> Histogram:
        self.declared.append((name, "histogram", labels))
        return Histogram(name, documentation, labels, registry=self.registry, buckets=buckets)

    def error_code(self, code: object) -> str:
        """A bounded label value for an ``extensions.code`` (``UNKNOWN`` for none or a malformed one)."""
        if isinstance(code, str) and _CODE.fullmatch(code):
            return self.code(code)
        return UNKNOWN

    def exposition(self) -> bytes:
        """The text exposition of ``/metrics``: this process's registry, or every process's values."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def close(self) -> None:
        """Mark this process dead for the ``livesum`` gauges (multiprocess mode only)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))  # type: ignore[no-untyped-call]

    def handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler of ``GET /metrics``."""

        async def metrics(request: web.Request) -> web.Response:
            response = web.Response(body=self.exposition())
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

        return metrics
