"""JSON logs captured into a string, the process's logging configuration restored afterwards."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import structlog

from bff.telemetry.logs import configure_logging

__all__ = ["json_logs"]

_QUIETED = ("httpx", "httpcore", "aiohttp.access")
"""Loggers whose levels bff's logging configuration changes."""


@contextlib.contextmanager
def json_logs(level: str = "INFO") -> Iterator[io.StringIO]:
    """Log every line as JSON at ``level`` into the stream this yields, while the block runs."""
    root = logging.getLogger()
    saved = (root.level, {name: logging.getLogger(name).level for name in _QUIETED})
    stream = io.StringIO()
    handler = configure_logging(level, "json", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level_saved in saved[1].items():
            logging.getLogger(name).setLevel(level_saved)
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
