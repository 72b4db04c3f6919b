"""bff.telemetry.tracing: the standard OTEL_* variables turn tracing on, configure it, or are refused."""

from __future__ import annotations

import pytest

from bff.settings import SettingsError
from bff.telemetry.tracing import Tracing, trace_id_of, traces_endpoint


@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}],
    ids=["unset", "none", "sdk-disabled"],
)
def test_tracing_is_off_unless_an_exporter_is_named(env: dict[str, str]) -> None:
    """No exporter, ``none``, or the SDK disabled: no tracing at all (the seams get None)."""
    assert Tracing.from_env(env) is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_TRACES_SAMPLER": "traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "2",
            },
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY"),
    ],
    ids=["exporter", "grpc", "http-json", "sampler", "ratio", "delay"],
)
def test_bad_variables_are_refused_naming_them(env: dict[str, str], variable: str) -> None:
    """An exporter, protocol or sampler that is not installed, or a malformed number, stops start-up
    with one line that names the variable."""
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        Tracing.from_env(env)


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, "http://localhost:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9/custom"}, "http://c:9/custom"),
    ],
    ids=["default", "base", "traces"],
)
def test_the_otlp_endpoint_follows_the_specification(env: dict[str, str], endpoint: str) -> None:
    """The traces endpoint is used as given; a base endpoint gets /v1/traces; the default is local."""
    assert traces_endpoint(env) == endpoint


def test_resource_and_sampler_come_from_the_variables() -> None:
    """``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` describe the resource; ``always_off``
    samples nothing."""
    tracing = Tracing.from_env(
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "shop-bff",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=web%20front",
            "OTEL_TRACES_SAMPLER": "always_off",
        }
    )
    assert tracing is not None
    try:
        attributes = tracing.provider.resource.attributes
        assert attributes["service.name"] == "shop-bff"
        assert attributes["deployment.environment"] == "prod"
        assert attributes["team"] == "web front"
        span = tracing.tracer.start_span("x")
        assert not span.is_recording()
        assert trace_id_of(span) is not None  # ids exist, nothing is exported
        span.end()
    finally:
        tracing.shutdown()


def test_traceparent_continues_and_propagates_a_trace() -> None:
    """A client's traceparent is extracted as the parent; a span's traceparent carries its ids."""
    tracing = Tracing.from_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_on"})
    assert tracing is not None
    try:
        parent = tracing.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
        span = tracing.tracer.start_span("op", context=parent)
        assert trace_id_of(span) == "4bf92f3577b34da6a3ce929d0e0e4736"
        header = tracing.traceparent(span)
        assert header is not None
        assert header.split("-")[1:3] == [
            "4bf92f3577b34da6a3ce929d0e0e4736",
            format(span.get_span_context().span_id, "016x"),
        ]
        span.end()
        assert tracing.extract({"traceparent": "garbage"}) == {}
    finally:
        tracing.shutdown()
