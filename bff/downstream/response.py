"""What the downstream pipeline hands back: a parsed JSON answer, and which records in it are stale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["JSONResponse", "Params", "StaleMark"]

Params = Sequence[tuple[str, str]]
"""Query parameters as ordered pairs; a key may repeat (``[("id", "1"), ("id", "2")]``)."""


@dataclass(frozen=True, slots=True)
class StaleMark:
    """A record of an answer served from the cache past its lifetime because its service failed.

    ``record`` is the very object in the answer's body (it is told apart by identity); ``age_s`` is
    how old the cached copy is, in seconds.
    """

    record: Any
    service: str
    age_s: float


@dataclass(frozen=True, slots=True)
class JSONResponse:
    """A successful downstream answer: HTTP status, headers, the parsed JSON body, and the records of
    the body that were served stale (empty when everything is fresh)."""

    status: int
    headers: httpx.Headers
    body: Any
    stale: tuple[StaleMark, ...] = ()
