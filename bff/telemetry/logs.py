"""Logs: every line in one format, with the request and trace ids from context, and never a secret.

The code logs through the standard library (``logging.getLogger("bff....")``); :func:`configure_logging`
renders every record, ours and the libraries', through structlog's ``ProcessorFormatter``:

- ``BFF_LOG_FORMAT=json``: one JSON object per line, for a log pipeline::

    {"event": "operation", "level": "info", "logger": "bff.access", "timestamp": "2026-11-30T...Z",
     "request_id": "5f0c...", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "operation_name": "Tracks",
     "operation_type": "query", "transport": "http", "status": 200, "duration_ms": 12.4,
     "downstream_calls": 2, "outcome": "success", "error_codes": []}

- ``BFF_LOG_FORMAT=console``: the same fields as aligned ``key=value`` text (the default on a terminal).

**Ids from context.** ``request_id`` is bound in a context variable once per request
(:func:`bff.request_id.request_id_middleware`) and once per WebSocket operation, and ``trace_id`` /
``span_id`` come from the current OpenTelemetry span; every line logged meanwhile carries them, so no
message pastes them in by hand.

**One access line per operation** on ``bff.access`` at INFO (:mod:`bff.telemetry.operations`):
operation name and type, transport, HTTP status (over HTTP), duration in ms, downstream calls, outcome
and the error codes. Requests to the GraphQL path refused before any operation (415, 413, 401, 429)
get one too. Downstream requests are logged one line each on ``bff.downstream`` at DEBUG only (method,
service, path without its query, status, ms); httpx's own per-request lines, which carry the full URL,
are silenced below WARNING unless the level is DEBUG.

**Never a secret.** Nothing logs headers, variable values or documents. As a safety net,
:func:`redact` rewrites any string that still looks like a bearer token, a JWT, a Standard Webhooks
secret or an email address, and the value of any field named like a credential, before rendering.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final, Literal, TextIO

import structlog
from opentelemetry import trace

from bff import json_codec

__all__ = ["ACCESS_LOGGER", "DOWNSTREAM_LOGGER", "REDACTED", "add_trace_ids", "configure_logging", "redact"]

ACCESS_LOGGER: Final = "bff.access"
DOWNSTREAM_LOGGER: Final = "bff.downstream"
REDACTED: Final = "[redacted]"

_SECRET_TEXT: Final = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"  # an Authorization header's value
    r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # a JWT (its header starts {"...)
    r"|whsec_[A-Za-z0-9+/=]+"  # a Standard Webhooks secret
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"  # an email address
)
_SECRET_KEY: Final = re.compile(r"(?i)authorization|password|passwd|secret|token|api[_-]?key|cookie|email")
_QUIET_LOGGERS: Final = ("httpx", "httpcore", "aiohttp.access")
"""Loggers that write every request with its full URL at INFO/DEBUG (httpx for each downstream
request; aiohttp's access log for the demo services in ``bff demo``): WARNING and up unless DEBUG."""

_HANDLER_MARK: Final = "_bff_handler"

EventDict = MutableMapping[str, Any]


def add_trace_ids(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` (hex) of the current OpenTelemetry span, when there is one."""
    if "trace_id" not in event:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format(context.trace_id, "032x")
            event["span_id"] = format(context.span_id, "016x")
    return event


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a field called ``key`` holds a credential (cached: the same few keys come again)."""
    return _SECRET_KEY.search(key) is not None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_TEXT.sub(REDACTED, value) if _maybe_secret(value) else value
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value] if value else value
    if isinstance(value, dict):
        return {key: REDACTED if _secret_key(str(key)) else _scrub(item) for key, item in value.items()}
    return value


def _maybe_secret(text: str) -> bool:
    # A cheap pre-check: every pattern needs one of these.
    return "@" in text or "eyJ" in text or "earer" in text or "EARER" in text or "whsec_" in text


def redact(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """Rewrite what looks like a credential or an email address to ``[redacted]`` (the safety net).

    Also drops the standard library's ``message`` (the rendered ``event`` again).
    """
    if event.get("message") == event.get("event"):
        event.pop("message", None)
    for key, value in event.items():
        if _secret_key(key) and key != "event":
            event[key] = REDACTED
        elif type(value) is str:  # the common case, without a call per field
            if _maybe_secret(value):
                event[key] = _SECRET_TEXT.sub(REDACTED, value)
        elif value and isinstance(value, str | list | tuple | dict):  # numbers, booleans, None: no secret
            event[key] = _scrub(value)
    return event


def _json_line(event: EventDict, **_options: Any) -> str:
    """One event as a JSON line (:func:`bff.json_codec.dumps`; objects JSON cannot hold as ``str``)."""
    return json_codec.dumps_text(event)


def _processors() -> list[Any]:
    """What every event goes through before rendering, whether it was logged through the standard
    library (ours, aiohttp's) or through structlog (stamina's retry warnings)."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(log_format: Literal["json", "console"], *, colors: bool = False) -> logging.Formatter:
    """The formatter of ``log_format``: JSON lines, or console text."""
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
        tail: list[Any] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
        tail = []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_processors(), structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, redact, renderer],
    )


def configure_logging(
    level: str, log_format: Literal["json", "console"] | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Log every record at ``level`` and above to ``stream`` (stderr) in ``log_format``.

    ``log_format`` ``None`` is ``console`` when the stream is a terminal and ``json`` otherwise.
    Replaces the handler an earlier call installed; returns the new one (tests remove it again).
    structlog's own loggers (stamina logs its retries with one) are routed through the same handler.
    """
    out = stream if stream is not None else sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())
    chosen: Literal["json", "console"] = log_format or ("console" if tty else "json")
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(chosen, colors=tty))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric)
    # No rendered line shows a thread or process (see _processors), so records need not look them
    # up: the logging HOWTO's "Optimization", a few microseconds off each access line.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    structlog.configure(
        processors=[*_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler
