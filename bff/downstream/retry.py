"""Which downstream failures are retried, and how long to wait, on top of stamina.

Rules (DESIGN.md): only idempotent methods (RFC 9110 §9.2.2); only transport errors (timeouts,
refused or reset connections), 502, 503, 504 and 429; exponential backoff with jitter; a 429's
``Retry-After`` (RFC 9110 §10.2.3) is waited exactly, unless it exceeds the cap, in which case the
call gives up with ``RATE_LIMITED``; never a wait that would end past the operation deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from bff.errors import DownstreamTimeout, DownstreamUnavailable, RateLimited
from bff.settings import ServiceSettings

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

T = TypeVar("T")


def backoff_hook(settings: ServiceSettings, deadline: float | None) -> Callable[[Exception], bool | float]:
    """The ``on=`` hook for stamina: ``False`` (give up), ``True`` (back off) or seconds to wait."""
    retry_after_cap = settings.retry_after_max_ms / 1000

    def hook(exc: Exception) -> bool | float:
        remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if isinstance(exc, RateLimited):
            wait = exc.retry_after if exc.retry_after is not None else settings.retry_wait_initial_ms / 1000
            if wait > retry_after_cap or (remaining is not None and wait >= remaining):
                return False
            return wait
        if not isinstance(exc, DownstreamUnavailable | DownstreamTimeout):
            return False
        return remaining is None or remaining > settings.retry_wait_initial_ms / 1000

    return hook


async def with_retries(
    method: str,
    settings: ServiceSettings,
    deadline: float | None,
    attempt: Callable[[], Awaitable[T]],
    *,
    enabled: bool = True,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run ``attempt`` once, or up to ``settings.retry_attempts`` times for an idempotent method.

    ``enabled=False`` makes one attempt whatever the method (the caller has a fallback);
    ``on_retry`` is called before each attempt after the first (for metrics).
    """
    if not enabled or method not in IDEMPOTENT_METHODS or settings.retry_attempts == 1:
        return await attempt()
    async for retry in stamina.retry_context(
        on=backoff_hook(settings, deadline),
        attempts=settings.retry_attempts,
        timeout=None,
        wait_initial=settings.retry_wait_initial_ms / 1000,
        wait_max=settings.retry_wait_max_ms / 1000,
        wait_jitter=settings.retry_wait_initial_ms / 1000,
    ):
        if retry.num > 1 and on_retry is not None:
            on_retry()
        with retry:
            return await attempt()
    raise AssertionError("stamina ended the retry loop without a result or an error")  # pragma: no cover
