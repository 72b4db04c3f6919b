"""The error tree and its ``extensions.code`` values.

Every error a client may see carries a stable machine-readable code in ``extensions.code``::

    BFFError                     (base; never raised itself)
    ├── BadUserInput             BAD_USER_INPUT          the client's arguments are invalid
    ├── Unauthenticated          UNAUTHENTICATED         the field needs a principal and there is none
    ├── Forbidden                FORBIDDEN               the principal may not see the field
    └── DownstreamError          DOWNSTREAM_ERROR        a downstream service answered with an error
        ├── DownstreamContract   DOWNSTREAM_CONTRACT     an answer breaks the downstream contract
        ├── NotFound             NOT_FOUND               the downstream record does not exist (404)
        ├── DownstreamTimeout    DOWNSTREAM_TIMEOUT      no answer within the configured timeout
        ├── DownstreamUnavailable DOWNSTREAM_UNAVAILABLE the service refused, reset or answered 502/503/504
        ├── CircuitOpen          CIRCUIT_OPEN            the service's circuit breaker is open; not called
        └── RateLimited          RATE_LIMITED            the service answered 429

graphql-core copies an exception's ``extensions`` dict onto the GraphQL error it wraps
(``GraphQLError.__init__``), so raising one of these from a resolver or a batch load function is
all it takes. Errors that are not in this tree are masked as ``INTERNAL_SERVER_ERROR`` (see
:mod:`bff.masking`); messages here never contain stack traces or downstream response bodies.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BFFError",
    "BadUserInput",
    "CircuitOpen",
    "DownstreamContract",
    "DownstreamError",
    "DownstreamTimeout",
    "DownstreamUnavailable",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "Unauthenticated",
]


class BFFError(Exception):
    """Base of every error whose message and code are safe to show to clients."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self._extensions = {key: value for key, value in extensions.items() if value is not None}

    @property
    def extensions(self) -> dict[str, Any]:
        """``{"code": ..., **details}``: what the client sees under ``extensions``."""
        return {"code": self.code, **self._extensions}


class BadUserInput(BFFError):
    """An argument is invalid, e.g. ``first`` above the maximum page size."""

    code = "BAD_USER_INPUT"


class Unauthenticated(BFFError):
    """The field needs a principal (``BFF_AUTH_REQUIRED``) and the request carries no credentials."""

    code = "UNAUTHENTICATED"


class Forbidden(BFFError):
    """The principal may not see the field, e.g. a customer asking for another customer's invoices."""

    code = "FORBIDDEN"


class DownstreamError(BFFError):
    """A downstream service answered with an error status the BFF cannot recover from.

    ``service`` names the service (``extensions.service``); ``status`` is the HTTP status, if any.
    """

    code = "DOWNSTREAM_ERROR"

    def __init__(self, message: str, *, service: str, status: int | None = None, **extensions: Any) -> None:
        super().__init__(message, service=service, status=status, **extensions)
        self.service = service
        self.status = status


class DownstreamContract(DownstreamError):
    """An answer breaks the downstream contract (DESIGN.md): a list that is not one, no
    ``X-Total-Count`` on a page, a record without the fields its declaration needs."""

    code = "DOWNSTREAM_CONTRACT"


class NotFound(DownstreamError):
    """The downstream record does not exist (HTTP 404)."""

    code = "NOT_FOUND"


class DownstreamTimeout(DownstreamError):
    """The service did not answer within its connect or read timeout."""

    code = "DOWNSTREAM_TIMEOUT"


class DownstreamUnavailable(DownstreamError):
    """The service could not be reached, reset the connection, or answered 502, 503 or 504."""

    code = "DOWNSTREAM_UNAVAILABLE"


class CircuitOpen(DownstreamError):
    """The service failed repeatedly; its circuit breaker is open and the call was not made."""

    code = "CIRCUIT_OPEN"


class RateLimited(DownstreamError):
    """The service answered 429; ``retry_after`` (seconds) is its ``Retry-After``, when given."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, service: str, retry_after: float | None = None) -> None:
        super().__init__(message, service=service, status=429, retryAfter=retry_after)
        self.retry_after = retry_after
