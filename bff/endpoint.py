"""GraphQL over HTTP: ``/graphql`` for everything but WebSockets (the transport's part only).

One request goes through, in order:

1. method (GET or POST, else 405) and GraphiQL for a browser's GET without a query;
2. the response media type from ``Accept`` (406) and CSRF prevention (``BFF_CSRF_PREVENTION``);
3. the parameters, from the URL or the JSON body (415, 413, 400; :mod:`bff.http_protocol`);
4. the schema's ``execute``, which runs the operation pipeline every transport shares
   (:mod:`bff.operation.pipeline`: persisted queries, input bounds, operation selection, principal,
   rate limit), then validation, execution and masking;
5. the status and body per GraphQL over HTTP, refusals mapped by :data:`bff.errors.HTTP_STATUS`
   (429 with ``Retry-After``, 401 with ``WWW-Authenticate``).

Authentication ran before, in :func:`bff.auth.auth_middleware`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aiohttp import web
from strawberry.exceptions import MissingQueryError
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from bff.auth import PRINCIPAL, UNAUTHENTICATED
from bff.csrf import CSRF_PREVENTED, is_csrf_safe
from bff.errors import HTTP_STATUS
from bff.http_protocol import (
    APPLICATION_JSON,
    BAD_REQUEST,
    GRAPHQL_RESPONSE_JSON,
    METHOD_NOT_ALLOWED,
    GraphQLParams,
    RequestRefused,
    check_content_type,
    check_query_string,
    error_response,
    format_errors,
    is_request_error,
    json_response,
    negotiate,
    params_from_body,
    params_from_query_string,
    read_body,
    refused_response,
    result_payload,
)
from bff.settings import Settings

__all__ = ["HTTPEndpoint"]

logger = logging.getLogger("bff.endpoint")

GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


class ViewHooks(Protocol):
    """What the endpoint needs from the Strawberry view."""

    schema: BaseSchema
    graphql_ide: Any

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Any:
        """The context of one operation."""

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """The GraphiQL page."""


class HTTPEndpoint:
    """Serves GraphQL over HTTP for a view; built once per app (see the module docstring)."""

    def __init__(self, view: ViewHooks, settings: Settings) -> None:
        self.view = view
        self.settings = settings

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one HTTP request to ``/graphql``."""
        media_type = APPLICATION_JSON
        try:
            if request.method not in ("GET", "POST"):
                raise RequestRefused(
                    405, METHOD_NOT_ALLOWED, "Use GET or POST.", headers={"Allow": "GET, POST"}
                )
            if self._wants_ide(request):
                if self.view.graphql_ide:
                    return await self.view.render_graphql_ide(request)
                raise RequestRefused(404, "NOT_FOUND", "GraphiQL is turned off (BFF_GRAPHIQL).")
            media_type = negotiate(request.headers.get("Accept"))
            self.check_csrf(request)
            params = await self._params(request)
            return await self._execute(request, params, media_type)
        except RequestRefused as refused:
            return refused_response(refused, media_type)

    def check_csrf(self, request: web.Request) -> None:
        """Refuse (400 ``CSRF_PREVENTED``) what a browser could send cross-site without a preflight,
        when ``BFF_CSRF_PREVENTION`` is on; SSE requests pass here too."""
        if self.settings.csrf_prevention and not is_csrf_safe(request.headers):
            raise RequestRefused(
                400,
                CSRF_PREVENTED,
                "This request may be a cross-site request forgery: send Content-Type: application/json "
                "or an apollo-require-preflight header.",
            )

    @staticmethod
    def _wants_ide(request: web.Request) -> bool:
        return (
            request.method == "GET"
            and "query" not in request.query
            and "extensions" not in request.query
            and "text/html" in request.headers.get("Accept", "")
        )

    async def _params(self, request: web.Request) -> GraphQLParams:
        if request.method == "GET":
            check_query_string(request.query_string, self.settings.max_body_bytes)
            return params_from_query_string(request.query, list(request.query.keys()))
        check_content_type(request)
        return params_from_body(await read_body(request, self.settings.max_body_bytes))

    async def _execute(self, request: web.Request, params: GraphQLParams, media_type: str) -> web.Response:
        allowed = GET_OPERATIONS if request.method == "GET" else POST_OPERATIONS
        context = await self.view.get_context(request, web.Response())
        try:
            result = await self.view.schema.execute(
                params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
        except InvalidOperationTypeError as error:
            if request.method == "GET" and error.operation_type == OperationType.MUTATION:
                raise RequestRefused(
                    405, METHOD_NOT_ALLOWED, "Mutations need POST.", headers={"Allow": "POST"}
                ) from None
            raise RequestRefused(
                400, BAD_REQUEST, "Subscriptions run over WebSocket or server-sent events."
            ) from None
        except CannotGetOperationTypeError as error:
            return self._request_error(error.as_http_error_reason(), media_type)
        except MissingQueryError:
            raise RequestRefused(400, BAD_REQUEST, "The request has no query.") from None
        return self._respond(request, result, media_type)

    def _request_error(self, message: str, media_type: str) -> web.Response:
        status = 200 if media_type == APPLICATION_JSON else 400
        return error_response(status, BAD_REQUEST, message, media_type=media_type)

    def _respond(self, request: web.Request, result: ExecutionResult, media_type: str) -> web.Response:
        headers: dict[str, str] = {}
        if _no_field_could_run_unauthenticated(request, result):
            status = 401
            headers["WWW-Authenticate"] = "Bearer"
            payload: dict[str, Any] = {"errors": format_errors(result.errors or ())}
        elif is_request_error(result):
            status = 400 if media_type == GRAPHQL_RESPONSE_JSON else 200
            extensions = (result.errors[0].extensions if result.errors else None) or {}
            status = HTTP_STATUS.get(str(extensions.get("code")), status)
            if "retryAfter" in extensions:
                headers["Retry-After"] = str(extensions["retryAfter"])
            payload = result_payload(result)
        else:
            status = 200
            payload = result_payload(result)
        return json_response(payload, status=status, media_type=media_type, headers=headers)


def _no_field_could_run_unauthenticated(request: web.Request, result: ExecutionResult) -> bool:
    """Anonymous, every error ``UNAUTHENTICATED`` and no root field with a value."""
    if request.get(PRINCIPAL) is not None or not result.errors:
        return False
    if any((error.extensions or {}).get("code") != UNAUTHENTICATED for error in result.errors):
        return False
    return result.data is None or all(value is None for value in result.data.values())
