"""GraphQL over HTTP: the transport rules of ``/graphql`` (graphql.github.io/graphql-over-http).

- Response media type from ``Accept``: ``application/graphql-response+json`` when the client asks
  for it, ``application/json`` for legacy clients, ``*/*`` and a missing header; anything else
  gets 406. Bodies are UTF-8 JSON.
- ``POST`` needs ``Content-Type: application/json`` (charset utf-8 or none; else 415) and a body
  of at most ``BFF_MAX_BODY_BYTES`` (else 413) holding one JSON object (else 400). ``GET`` takes
  ``query``, ``operationName``, ``variables`` and ``extensions`` from the URL and runs queries
  only: a mutation over GET is 405 with ``Allow: POST``. Other methods are 405.
- ``query`` must be a string, ``operationName`` a string or null, ``variables`` and ``extensions``
  objects or null (else 400). Batches (JSON arrays) are not supported (400).
- A *request error* (the document does not parse or validate, or variables do not coerce, so no
  field ran) has no ``data`` entry: status 200 under ``application/json``, 400 under
  ``application/graphql-response+json``. 401 when no field could run for want of credentials.
  Otherwise 200 with ``data`` (partial data and field errors included).

Refusals before GraphQL runs are :class:`RequestRefused` and answer with the same error shape,
``{"errors": [{"message": ..., "extensions": {"code": ...}}]}``, never with a stack trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from graphql import GraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from bff import json_codec
from bff.telemetry.access import note_error_code

__all__ = [
    "APPLICATION_JSON",
    "BAD_REQUEST",
    "GRAPHQL_RESPONSE_JSON",
    "METHOD_NOT_ALLOWED",
    "NOT_ACCEPTABLE",
    "REQUEST_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "GraphQLParams",
    "RequestRefused",
    "check_content_type",
    "check_query_string",
    "error_response",
    "format_errors",
    "is_request_error",
    "json_response",
    "negotiate",
    "params_from_body",
    "params_from_query_string",
    "read_body",
    "refused_response",
    "result_payload",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"

BAD_REQUEST = "BAD_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"

_UTF8 = ("utf-8", "utf8")


class RequestRefused(Exception):
    """A request refused before GraphQL runs: an HTTP status, an ``extensions.code`` and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


@dataclass(frozen=True, slots=True)
class GraphQLParams:
    """The parameters of one GraphQL request, checked for their types."""

    query: str | None
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


# Media types --------------------------------------------------------------------------------------


def _media_ranges(accept: str) -> Iterable[tuple[str, float]]:
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        yield media.lower(), quality


def negotiate(accept: str | None) -> str:
    """The response media type for an ``Accept`` header; raises :class:`RequestRefused` (406).

    The type with the higher quality wins; at equal quality ``application/graphql-response+json``
    wins only when named explicitly, so wildcards and a missing header mean ``application/json``
    (what legacy clients expect).
    """
    if not accept or not accept.strip():
        return APPLICATION_JSON
    best: dict[str, tuple[int, float]] = {}  # media type -> (specificity, quality)
    for media, quality in _media_ranges(accept):
        for candidate in (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON):
            specificity = {candidate: 2, "application/*": 1, "*/*": 0}.get(media)
            # The most specific matching range decides a type's quality (RFC 9110, 12.5.1).
            if specificity is not None and specificity >= best.get(candidate, (-1, 0.0))[0]:
                best[candidate] = (specificity, quality)
    _, json_quality = best.get(APPLICATION_JSON, (-1, 0.0))
    graphql_specificity, graphql_quality = best.get(GRAPHQL_RESPONSE_JSON, (-1, 0.0))
    if json_quality <= 0 and graphql_quality <= 0:
        raise RequestRefused(
            406,
            NOT_ACCEPTABLE,
            f"The Accept header names no type this endpoint answers in: {GRAPHQL_RESPONSE_JSON} "
            f"or {APPLICATION_JSON}.",
        )
    if graphql_quality > json_quality or (graphql_quality == json_quality and graphql_specificity == 2):
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


# Request parsing ----------------------------------------------------------------------------------


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; raises :class:`RequestRefused` (413) beyond it."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    try:
        # aiohttp keeps what request.read() read: a handler after this one (Strawberry's, for SSE)
        # reads these very bytes. The app's client_max_size bounds the read itself.
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> RequestRefused:
    # Made only when refusing: most requests fit, and an exception per request costs.
    return RequestRefused(
        413, REQUEST_TOO_LARGE, f"The request body is larger than {limit} bytes, the limit.", limit=limit
    )


def check_content_type(request: web.Request) -> None:
    """Accept only ``application/json`` bodies in UTF-8; raises :class:`RequestRefused` (415)."""
    if hdrs.CONTENT_TYPE not in request.headers:
        raise RequestRefused(415, UNSUPPORTED_MEDIA_TYPE, "A POST needs Content-Type: application/json.")
    if request.content_type != APPLICATION_JSON:
        raise RequestRefused(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {request.content_type!r} is not supported; send application/json.",
        )
    charset = request.charset
    if charset is not None and charset.lower() not in _UTF8:
        raise RequestRefused(
            415, UNSUPPORTED_MEDIA_TYPE, f"Charset {charset!r} is not supported; send UTF-8."
        )


def _bad(message: str) -> RequestRefused:
    return RequestRefused(400, BAD_REQUEST, message)


def _json(text: str | bytes, what: str) -> Any:
    try:
        return json_codec.loads(text)
    except (ValueError, RecursionError):
        raise _bad(f"The {what} is not valid JSON.") from None


def _checked(data: Mapping[str, Any]) -> GraphQLParams:
    query = data.get("query")
    if query is not None and not isinstance(query, str):
        raise _bad("The query parameter must be a string.")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _bad("The operationName parameter must be a string or null.")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _bad("The variables parameter must be an object or null.")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise _bad("The extensions parameter must be an object or null.")
    return GraphQLParams(query, operation_name, variables, extensions)


def params_from_body(body: bytes) -> GraphQLParams:
    """The parameters in a JSON request body; raises :class:`RequestRefused` (400)."""
    if not body.strip():
        raise _bad("The request body is empty; send a JSON object with a query.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("The request body is not valid UTF-8.") from None
    data = _json(text, "request body")
    if isinstance(data, list):
        raise _bad("Batched operations are not supported; send one JSON object per request.")
    if not isinstance(data, dict):
        raise _bad("The request body must be a JSON object.")
    return _checked(data)


def check_query_string(query_string: str, limit: int) -> None:
    """Refuse a GET whose query string is longer than ``limit`` bytes (413 ``REQUEST_TOO_LARGE``), the
    body limit of a POST: a GET carries its operation in the URL."""
    if len(query_string) > limit:
        raise RequestRefused(
            413,
            REQUEST_TOO_LARGE,
            f"The query string is longer than {limit} bytes, the limit.",
            limit=limit,
        )


def params_from_query_string(query: Mapping[str, str], keys: Sequence[str]) -> GraphQLParams:
    """The parameters in a GET URL (``variables`` and ``extensions`` as JSON); raises 400.

    ``keys`` lists every parameter name as sent, to refuse a parameter given twice.
    """
    for name in ("query", "operationName", "variables", "extensions"):
        if keys.count(name) > 1:
            raise _bad(f"The {name} parameter is given more than once.")
    data: dict[str, Any] = {
        "query": query.get("query"),
        "operationName": query.get("operationName") or None,
    }
    for name in ("variables", "extensions"):
        raw = query.get(name)
        data[name] = _json(raw, f"{name} parameter") if raw else None
    return _checked(data)


# Responses ----------------------------------------------------------------------------------------


def format_errors(errors: Iterable[GraphQLError]) -> list[dict[str, Any]]:
    """Errors as the response's ``errors`` list (shaped already by :mod:`bff.masking`)."""
    return [dict(error.formatted) for error in errors]


def is_request_error(result: ExecutionResult) -> bool:
    """True when no field ran: the document did not parse or validate, or variables did not coerce."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(e.path is None for e in result.errors or ())


def result_payload(result: ExecutionResult) -> dict[str, Any]:
    """The response body of a result; a request error has no ``data`` entry."""
    payload: dict[str, Any] = {}
    if not is_request_error(result):
        payload["data"] = result.data
    if result.errors:
        payload["errors"] = format_errors(result.errors)
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


def json_response(
    payload: Mapping[str, Any], *, status: int, media_type: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A UTF-8 JSON response of ``media_type`` (:func:`bff.json_codec.dumps`)."""
    response_headers = {**(headers or {}), hdrs.CONTENT_TYPE: f"{media_type}; charset=utf-8"}
    return web.Response(body=json_codec.dumps(payload), status=status, headers=response_headers)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    media_type: str = APPLICATION_JSON,
    headers: Mapping[str, str] | None = None,
    **details: Any,
) -> web.Response:
    """A response with one coded error and no ``data`` (its code noted for the access line)."""
    note_error_code(code)
    payload = {"errors": [{"message": message, "extensions": {"code": code, **details}}]}
    return json_response(payload, status=status, media_type=media_type, headers=headers)


def refused_response(refused: RequestRefused, media_type: str = APPLICATION_JSON) -> web.Response:
    """The response of a :class:`RequestRefused`."""
    return error_response(
        refused.status,
        refused.code,
        refused.message,
        media_type=media_type,
        headers=refused.headers,
        **refused.details,
    )
