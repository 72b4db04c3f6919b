"""The access line of an HTTP request: what its operation recorded, completed with the HTTP status.

An operation knows its name, type, duration, downstream calls and error codes; only the transport
knows the HTTP status it answered with. Over HTTP (and SSE) the operation runs in the request's own
task, so :func:`bff.telemetry.http.telemetry_middleware` puts a :class:`RequestLog` in a context
variable before the handler runs; the operation hands its fields to it (:func:`hand_over`), and the
middleware writes one line with the status once the response is made. A WebSocket carries many
operations: each writes its own line. A request refused before any operation (415, 413, 401, 429)
leaves only the code it was refused with (:func:`note_error_code`, called by
:func:`bff.http_protocol.error_response`).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from bff.telemetry.logs import ACCESS_LOGGER

__all__ = ["REQUEST_LOG", "RequestLog", "access_logger", "hand_over", "note_error_code"]

access_logger: Final = logging.getLogger(ACCESS_LOGGER)


@dataclass(slots=True)
class RequestLog:
    """What one HTTP request to the GraphQL path collects for its access line."""

    operation: dict[str, Any] | None = None
    """The fields of the operation it ran (``None``: none ran)."""
    error_codes: list[str] = field(default_factory=list)
    """Codes of transport-level refusals (``error_response``)."""


REQUEST_LOG: ContextVar[RequestLog | None] = ContextVar("bff_request_log", default=None)


def note_error_code(code: str) -> None:
    """Remember the code of an HTTP error response for the current request's access line."""
    log = REQUEST_LOG.get()
    if log is not None:
        log.error_codes.append(code)


def hand_over(fields: dict[str, Any], *, websocket: bool) -> None:
    """Give an operation's access fields to its request's line, or log them now (WebSocket, or no
    middleware ran)."""
    log = REQUEST_LOG.get()
    if not websocket and log is not None and log.operation is None:
        log.operation = fields
        return
    access_logger.info("operation", extra=fields)
