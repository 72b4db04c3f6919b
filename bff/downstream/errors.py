"""Map transport failures and HTTP error statuses to the :mod:`bff.errors` tree, in one place."""

from __future__ import annotations

import email.utils
import time

import httpx

from bff.errors import (
    DownstreamError,
    DownstreamTimeout,
    DownstreamUnavailable,
    NotFound,
    RateLimited,
)

UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3: delay-seconds or HTTP-date).

    Returns ``None`` when the header is absent or malformed; never negative.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


def map_transport_error(service: str, exc: httpx.TransportError) -> DownstreamError:
    """Return the error for a request that got no HTTP response (timeout, refused, reset)."""
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__
        return DownstreamTimeout(f"{service} service did not answer in time ({kind})", service=service)
    return DownstreamUnavailable(f"{service} service is unreachable ({type(exc).__name__})", service=service)


def map_status(service: str, response: httpx.Response) -> DownstreamError | None:
    """Return the error for an error status (``>= 400``), or ``None`` for a success.

    The downstream body is never put into the message: it may hold internals.
    """
    status = response.status_code
    if status < 400:
        return None
    what = f"{response.request.method} {response.request.url.path}"
    if status == 404:
        return NotFound(f"{service} service has no {response.request.url.path}", service=service, status=404)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(
            f"{service} service is rate limiting ({what})", service=service, retry_after=retry_after
        )
    if status in UNAVAILABLE_STATUSES:
        return DownstreamUnavailable(
            f"{service} service is unavailable ({what} answered {status})", service=service, status=status
        )
    return DownstreamError(
        f"{service} service failed ({what} answered {status})", service=service, status=status
    )
