"""bff.telemetry.logs: JSON or console lines, ids from context, credentials and emails redacted."""

from __future__ import annotations

import io
import json
import logging
import pathlib
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from bff.telemetry.logs import REDACTED, configure_logging
from tests.support.logs import json_logs


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logging at INFO into a string; the previous configuration comes back afterwards."""
    with json_logs() as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_are_json_with_the_request_id_bound_in_context(log_stream: io.StringIO) -> None:
    """A plain stdlib log call comes out as one JSON object carrying the bound request id, its level,
    logger, timestamp and extra fields."""
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        logging.getLogger("bff.test").info("hello %s", "world", extra={"duration_ms": 1.5})
    [line] = lines(log_stream)
    assert line["event"] == "hello world"
    assert line["request_id"] == "req-1"
    assert line["level"] == "info"
    assert line["logger"] == "bff.test"
    assert line["duration_ms"] == 1.5
    assert "timestamp" in line
    assert "message" not in line


def test_json_lines_keep_any_text_and_write_other_objects_as_text(log_stream: io.StringIO) -> None:
    """Non-ASCII text comes out as itself, big integers exactly, and a value JSON cannot hold (a
    path, a set) as its ``str``, so no field stops a line from being written."""
    fields = {"title": "Café ☕", "big": 2**70, "where": pathlib.PurePosixPath("/tmp/x"), "codes": {"A"}}
    logging.getLogger("bff.test").info("fields", extra=fields)
    [raw] = log_stream.getvalue().splitlines()
    assert "Café ☕" in raw
    line = json.loads(raw)
    assert (line["title"], line["big"], line["where"], line["codes"]) == ("Café ☕", 2**70, "/tmp/x", "{'A'}")


def test_lines_carry_the_current_spans_trace_id(log_stream: io.StringIO) -> None:
    """Inside an OpenTelemetry span, each line has its trace and span ids in hex."""
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("op") as span:
        logging.getLogger("bff.test").warning("inside")
    context = span.get_span_context()
    [line] = lines(log_stream)
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


@pytest.mark.parametrize(
    "secret",
    [
        "Bearer abc.def-ghi",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "whsec_dGVzdCBzZWNyZXQ=",
        "someone@example.com",
    ],
)
def test_credentials_and_emails_are_redacted_from_messages(log_stream: io.StringIO, secret: str) -> None:
    """Whatever looks like a bearer token, a JWT, a webhook secret or an email is rewritten, in the
    message and in any field."""
    logging.getLogger("bff.test").info("got %s", secret, extra={"detail": [f"x {secret}"]})
    text = log_stream.getvalue()
    assert secret not in text
    [line] = lines(log_stream)
    assert REDACTED in str(line["event"])
    assert line["detail"] == [f"x {REDACTED}"]


def test_fields_named_like_credentials_are_redacted(log_stream: io.StringIO) -> None:
    """A field called authorization, password, token or api_key never shows its value."""
    logging.getLogger("bff.test").info(
        "fields", extra={"authorization": "x", "password": "y", "api_key": "z", "token": "t", "count": 3}
    )
    [line] = lines(log_stream)
    assert [line[key] for key in ("authorization", "password", "api_key", "token")] == [REDACTED] * 4
    assert line["count"] == 3


def test_request_lines_of_http_libraries_need_debug(log_stream: io.StringIO) -> None:
    """At INFO httpx, httpcore and aiohttp's access log are quiet (they write full URLs); at DEBUG
    they speak again."""
    logging.getLogger("httpx").info("HTTP Request: GET http://svc/customers?email=a@b.c")
    logging.getLogger("aiohttp.access").info("GET /customers?email=a@b.c 200")
    assert log_stream.getvalue() == ""
    handler = configure_logging("DEBUG", "json", stream=log_stream)
    try:
        assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
    finally:
        logging.getLogger().removeHandler(handler)


def test_console_format_is_text_and_json_is_the_default_off_a_terminal() -> None:
    """``console`` renders readable text with the fields; without a format, a non-terminal stream
    gets JSON."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", "console", stream=stream)
    try:
        logging.getLogger("bff.test").info("readable", extra={"status": 200})
        text = stream.getvalue()
        assert "readable" in text
        assert "status=200" in text
        assert not text.startswith("{")
        handler = configure_logging("INFO", None, stream=stream)
        logging.getLogger("bff.test").info("machine")
        assert json.loads(stream.getvalue().splitlines()[-1])["event"] == "machine"
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
