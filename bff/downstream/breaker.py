"""A circuit breaker per service: purgatory's state machine plus a single half-open probe.

States (Nygard, *Release It!*): closed (calls flow; consecutive failures are counted), open (calls
fail at once with ``CIRCUIT_OPEN`` and never reach the service), half-open (after the recovery time
one probe call goes through; success closes the breaker, failure opens it again). purgatory lets
every concurrent call through while half-open, so this wrapper admits exactly one probe and fails
the others fast.

A failure is what the service did: a transport error, a timeout, or a 5xx answer. 4xx answers (404
included) and 429 (the service is up and asks us to slow down; retries handle it) do not count, nor
does a call cancelled by its caller, nor a request the client's input made impossible to send
(``BAD_USER_INPUT``) or any other error that is not a :class:`~bff.errors.DownstreamError`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from purgatory import AsyncCircuitBreakerFactory

from bff.compat import CircuitOpened, breaker_event_state, circuit_state
from bff.errors import CircuitOpen, DownstreamError, RateLimited

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_STATE_NAMES = {"closed": CLOSED, "opened": OPEN, "half-opened": HALF_OPEN}


def _is_client_side(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited) or (
        isinstance(exc, DownstreamError) and exc.status is not None and exc.status < 500
    )


class CircuitBreaker:
    """Breaker of one service. ``threshold`` consecutive failures open it for ``recovery_s`` seconds.

    ``on_change`` is called with the state entered (``closed``, ``open``, ``half-open``) at each
    transition, from purgatory's listener (for metrics). An open breaker whose recovery time is over
    becomes half-open in purgatory only when the next call enters it.
    """

    def __init__(
        self,
        service: str,
        *,
        threshold: int,
        recovery_s: float,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.recovery_s = recovery_s
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=recovery_s,
            exclude=[
                (DownstreamError, _is_client_side),
                (RateLimited, lambda exc: True),
                (Exception, lambda exc: not isinstance(exc, DownstreamError)),
            ],
        )
        self._probing = False
        if on_change is not None:

            def listen(name: str, event_name: str, event: Any) -> None:
                state = breaker_event_state(event_name, event)
                if state is not None and name == service:
                    on_change(_STATE_NAMES[state])

            self._factory.add_listener(listen)

    async def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (open whose recovery time is over counts as half-open)."""
        state, opened_at = circuit_state(await self._factory.get_breaker(self.service))
        if state == "opened":
            return HALF_OPEN if time.time() > (opened_at or 0.0) + self.recovery_s else OPEN
        return HALF_OPEN if state == "half-opened" else CLOSED

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` through the breaker; raises ``CIRCUIT_OPEN`` without calling it when open."""
        breaker = await self._factory.get_breaker(self.service)
        probe = circuit_state(breaker)[0] != "closed"
        if probe:
            if self._probing or await self.state() == OPEN:
                raise self._open_error()
            self._probing = True
        try:
            async with breaker:
                return await fn()
        except CircuitOpened:
            raise self._open_error() from None
        finally:
            if probe:
                self._probing = False

    def _open_error(self) -> CircuitOpen:
        return CircuitOpen(
            f"{self.service} service is failing; calls are paused (circuit breaker open)",
            service=self.service,
        )
