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

from collections.abc import Mapping
from typing import Any, ClassVar, Final

__all__ = [
    "ERROR_CODES",
    "HTTP_STATUS",
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


ERROR_CODES: Final[Mapping[str, tuple[int | None, str]]] = {
    # Request errors: the operation did not run. Status: the one given, or None for GraphQL over
    # HTTP's rule (400 under application/graphql-response+json, 200 under application/json).
    "BAD_REQUEST": (400, "the request is not a GraphQL request (no query, bad JSON, bad parameters)"),
    "METHOD_NOT_ALLOWED": (405, "not GET or POST, or a mutation over GET"),
    "NOT_ACCEPTABLE": (406, "the Accept header names no type the endpoint answers in"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "a POST body that is not application/json in UTF-8"),
    "REQUEST_TOO_LARGE": (413, "a body or WebSocket message over BFF_MAX_BODY_BYTES"),
    "CSRF_PREVENTED": (400, "a request a browser could send cross-site without a preflight"),
    "GRAPHQL_PARSE_FAILED": (None, "the document does not parse"),
    "GRAPHQL_VALIDATION_FAILED": (None, "the document does not validate against the schema"),
    "TOO_MANY_TOKENS": (None, "BFF_MAX_TOKENS"),
    "QUERY_TOO_DEEP": (None, "BFF_MAX_DEPTH"),
    "QUERY_TOO_COMPLEX": (None, "BFF_MAX_COST"),
    "TOO_MANY_ALIASES": (None, "BFF_MAX_ALIASES"),
    "TOO_MANY_ROOT_FIELDS": (None, "BFF_MAX_ROOT_FIELDS"),
    "INTROSPECTION_DISABLED": (None, "BFF_INTROSPECTION is off"),
    "PERSISTED_QUERY_NOT_FOUND": (None, "APQ: the hash is not stored yet; send the query with it"),
    "PERSISTED_QUERY_NOT_SUPPORTED": (None, "APQ is off (BFF_APQ)"),
    "PERSISTED_QUERY_NOT_IN_LIST": (None, "safelist mode: the document is not in the manifest"),
    "PERSISTED_QUERY_HASH_MISMATCH": (None, "APQ: the hash is not the query's SHA-256"),
    "OPERATION_NOT_SUPPORTED": (None, "a query or mutation over a subscriptions-only transport"),
    "TOO_MANY_CONNECTIONS": (429, "BFF_MAX_REQUESTS_PER_CLIENT requests in progress from one client IP"),
    "RATE_LIMITED": (429, "BFF_RATE_LIMIT exceeded (Retry-After); as a field error: a service's 429"),
    "UNAUTHENTICATED": (401, "bad or expired credentials; as a field error: sign-in needed"),
    # Field errors: the operation ran; the field is null and the response is 200 with partial data.
    "BAD_USER_INPUT": (None, "an argument or variable is invalid"),
    "FORBIDDEN": (None, "the principal may not see the field"),
    "OPERATION_BUDGET_EXCEEDED": (None, "BFF_MAX_ITEMS resolved; the rest of the selection is null"),
    "OPERATION_TIMEOUT": (None, "BFF_OPERATION_TIMEOUT_MS passed while resolving"),
    "DOWNSTREAM_ERROR": (None, "a service answered with an error"),
    "DOWNSTREAM_CONTRACT": (None, "a service's answer breaks the downstream contract"),
    "NOT_FOUND": (None, "a service has no such record"),
    "DOWNSTREAM_TIMEOUT": (None, "a service did not answer in time"),
    "DOWNSTREAM_UNAVAILABLE": (None, "a service refused, reset or answered 502/503/504"),
    "CIRCUIT_OPEN": (None, "a service's circuit breaker is open; it was not called"),
    "MUTATION_FAILED": (None, "a mutation failed after changing something (rolledBack says if undone)"),
    "TOO_BUSY": (None, "too many idempotent mutations in progress; retry shortly"),
    "SUBSCRIBER_TOO_SLOW": (None, "a subscriber fell behind its queue and was dropped"),
    "INTERNAL_SERVER_ERROR": (None, "a bug: masked, with the requestId to find it in the log"),
}
"""Every ``extensions.code`` a GraphQL client may see: (HTTP status of a request error, meaning).

Webhook ingress answers its senders with its own codes (:mod:`bff.webhooks`)."""

HTTP_STATUS: Final[Mapping[str, int]] = {
    code: status for code, (status, _meaning) in ERROR_CODES.items() if status is not None
}
"""The HTTP status of a request error with this code, where GraphQL over HTTP's rule does not decide."""
