"""Tracing with OpenTelemetry: configured by the standard ``OTEL_*`` variables, off unless asked for.

``OTEL_TRACES_EXPORTER`` turns it on: ``otlp`` (OTLP over HTTP with protobuf, the only protocol
installed), ``console`` (spans as JSON on stdout, for a look), or both comma-separated; unset or
``none`` (or ``OTEL_SDK_DISABLED=true``) leaves it off, and then nothing of the SDK is imported and no
span is made: the seams check one ``None``.

Variables read from the settings (so a test, or a second app in one process, can pass its own):

=========================================  ==========================================================
``OTEL_TRACES_EXPORTER``                    ``otlp``, ``console``, ``none`` (default)
``OTEL_SDK_DISABLED``                       ``true``: off whatever the exporter says
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``      the traces URL as is, e.g. ``http://collector:4318/v1/traces``
``OTEL_EXPORTER_OTLP_ENDPOINT``             the base URL; ``/v1/traces`` is appended
                                            (default ``http://localhost:4318``)
``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``    ``http/protobuf`` (the default; others are refused)
``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS``     ``key=value,...`` sent with every export (e.g. an API key)
``OTEL_SERVICE_NAME``                       ``service.name`` of the resource (default ``bff``)
``OTEL_RESOURCE_ATTRIBUTES``                further resource attributes, ``key=value,...``
``OTEL_TRACES_SAMPLER`` / ``_ARG``          ``parentbased_always_on`` (default), ``always_on``,
                                            ``always_off``, ``traceidratio``, ``parentbased_traceidratio``,
                                            ``parentbased_always_off``; the ratio for the ``*traceidratio``
``OTEL_BSP_SCHEDULE_DELAY``, ``OTEL_BSP_MAX_QUEUE_SIZE``, ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``,
``OTEL_BSP_EXPORT_TIMEOUT``                 the batch span processor (ms, spans, spans, ms)
=========================================  ==========================================================

The exporter's TLS and compression variables (``OTEL_EXPORTER_OTLP_*CERTIFICATE``, ``*_COMPRESSION``,
``*_TIMEOUT``) are read by the SDK itself from the process environment.

What is traced: one span per GraphQL operation (:mod:`bff.telemetry.operations`; kind ``SERVER``,
named ``query Tracks``, with ``graphql.operation.type`` and ``graphql.operation.name`` per the semantic
conventions), continuing the client's W3C ``traceparent`` when it sends one, and one ``CLIENT`` span
per HTTP exchange with a downstream service (:mod:`bff.telemetry.downstream`), whose ``traceparent``
goes downstream with the request. The operation's trace id is in the response's
``extensions.traceId``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.context import Context as TraceContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bff.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

__all__ = ["DEFAULT_ENDPOINT", "PROTOCOL", "Tracing", "trace_id_of", "traces_endpoint"]

DEFAULT_ENDPOINT: Final = "http://localhost:4318"
PROTOCOL: Final = "http/protobuf"
TRACES_PATH: Final = "/v1/traces"
EXPORTERS: Final = frozenset({"otlp", "console"})

_BSP: Final = {
    "OTEL_BSP_SCHEDULE_DELAY": "schedule_delay_millis",
    "OTEL_BSP_MAX_QUEUE_SIZE": "max_queue_size",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "max_export_batch_size",
    "OTEL_BSP_EXPORT_TIMEOUT": "export_timeout_millis",
}


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value, with its value."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _exporters(env: Mapping[str, str]) -> list[str]:
    """The exporters asked for; empty when tracing is off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [part.strip().lower() for part in env.get("OTEL_TRACES_EXPORTER", "").split(",") if part.strip()]
    if names in ([], ["none"]):
        return []
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise SettingsError(
            f"OTEL_TRACES_EXPORTER: {unknown[0]!r} is not one of otlp, console, none (those installed)"
        )
    return names


def traces_endpoint(env: Mapping[str, str]) -> str:
    """The OTLP/HTTP traces URL ``env`` names (the specification's rules for the two variables)."""
    given = _first(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if given is not None:
        return given[1]
    base = _first(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    return (base[1] if base else DEFAULT_ENDPOINT).rstrip("/") + TRACES_PATH


def _headers(env: Mapping[str, str]) -> dict[str, str]:
    given = _first(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    return _pairs(given[1]) if given else {}


def _pairs(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` with URL-encoded values (the OTel environment variable format)."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            pairs[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return pairs


def _sampler(env: Mapping[str, str]) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower() or "parentbased_always_on"
    ratio = 1.0
    if name.endswith("traceidratio"):
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
        try:
            ratio = float(raw)
        except ValueError:
            raise SettingsError(f"OTEL_TRACES_SAMPLER_ARG: not a number (got {raw!r})") from None
        if not 0.0 <= ratio <= 1.0:
            raise SettingsError(f"OTEL_TRACES_SAMPLER_ARG: must be between 0 and 1 (got {raw!r})")
    choices: dict[str, Sampler] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }
    if name not in choices:
        raise SettingsError(f"OTEL_TRACES_SAMPLER: unknown sampler {name!r}")
    return choices[name]


def _batch_options(env: Mapping[str, str]) -> dict[str, int | None]:
    options: dict[str, int | None] = dict.fromkeys(_BSP.values())
    for variable, option in _BSP.items():
        raw = env.get(variable, "").strip()
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise SettingsError(f"{variable}: must be a positive integer (got {raw!r})")
            options[option] = int(raw)
    return options


class Tracing:
    """A tracer provider of its own (the global one is left alone), its tracer and the W3C propagator.

    Build it with :meth:`from_env`; call :meth:`shutdown` once (the app's cleanup does), which
    exports what is still queued.
    """

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("bff")
        self.propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tracing | None:
        """Tracing as ``env`` (``OTEL_*`` variables) configures it, or ``None`` when it is off.

        Raises :class:`~bff.settings.SettingsError` naming the variable for an unknown exporter, a
        protocol other than ``http/protobuf``, an unknown sampler or a malformed number.
        """
        exporters = _exporters(env)
        if not exporters:
            return None
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        if "otlp" in exporters:
            protocol = _first(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
            if protocol is not None and protocol[1] != PROTOCOL:
                raise SettingsError(f"{protocol[0]}: only {PROTOCOL} is installed (got {protocol[1]!r})")
        attributes: dict[str, Any] = _pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        attributes["service.name"] = env.get("OTEL_SERVICE_NAME", "").strip() or attributes.get(
            "service.name", "bff"
        )
        provider = TracerProvider(resource=Resource.create(attributes), sampler=_sampler(env))
        options = _batch_options(env)
        for name in exporters:
            exporter: SpanExporter
            if name == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporter = OTLPSpanExporter(endpoint=traces_endpoint(env), headers=_headers(env))
            else:
                exporter = ConsoleSpanExporter()
            processor = BatchSpanProcessor(
                exporter,
                max_queue_size=options["max_queue_size"],
                schedule_delay_millis=options["schedule_delay_millis"],
                max_export_batch_size=options["max_export_batch_size"],
                export_timeout_millis=options["export_timeout_millis"],
            )
            provider.add_span_processor(processor)
        return cls(provider)

    def extract(self, headers: Mapping[str, str]) -> TraceContext:
        """The trace context a client sent in ``traceparent`` (an empty one when none or malformed)."""
        return self.propagator.extract(headers)

    def traceparent(self, span: trace.Span) -> str | None:
        """The ``traceparent`` header value that makes the receiver's spans children of ``span``."""
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=trace.set_span_in_context(span))
        return carrier.get("traceparent")

    def force_flush(self, timeout_ms: int = 5_000) -> bool:
        """Export every finished span now; whether it was done within ``timeout_ms``."""
        return bool(self.provider.force_flush(timeout_ms))

    def shutdown(self) -> None:
        """Export what is queued and stop the exporters."""
        self.provider.shutdown()


def trace_id_of(span: trace.Span) -> str | None:
    """The 32 hex digits of ``span``'s trace id, or ``None`` for a span that is not recording."""
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
