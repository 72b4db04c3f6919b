"""The HTTP pipeline of ``/graphql`` (everything but WebSockets and streamed subscriptions).

One request goes through, in order:

1. method (GET or POST, else 405) and GraphiQL for a browser's GET without a query;
2. the response media type from ``Accept`` (406) and CSRF prevention (``BFF_CSRF_PREVENTION``);
3. the rate limit, counting 1 (``BFF_RATE_LIMIT``; 429 with ``Retry-After``);
4. the parameters, from the URL or the JSON body (415, 413, 400; :mod:`bff.http_protocol`);
5. the document, from ``query`` or a persisted query (:mod:`bff.persisted`);
6. the rate limit counting the operation's cost, with ``BFF_RATE_LIMIT_BY_COST``;
7. execution (limits and introspection are validation rules, :mod:`bff.limits`), then the status
   and body per GraphQL over HTTP, and APQ registration of a document that ran.

Authentication ran before, in :func:`bff.auth.auth_middleware`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from graphql import GraphQLError, parse
from strawberry.exceptions import MissingQueryError
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from bff.auth import PRINCIPAL, UNAUTHENTICATED
from bff.compat import graphql_core_schema
from bff.cost_map import CostMap
from bff.csrf import CSRF_PREVENTED, is_csrf_safe
from bff.http_protocol import (
    APPLICATION_JSON,
    BAD_REQUEST,
    GRAPHQL_RESPONSE_JSON,
    METHOD_NOT_ALLOWED,
    GraphQLParams,
    RequestRefused,
    check_content_type,
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
from bff.limits import operation_cost
from bff.persisted import PersistedQueries, PersistedQueryError, Resolved
from bff.rate_limit import RATE_LIMITED, RateLimiter
from bff.settings import Settings

__all__ = ["HTTPEndpoint"]

logger = logging.getLogger("bff.endpoint")

COST_CACHE_SIZE = 1_000
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

    def __init__(self, view: ViewHooks, settings: Settings, cost_map: CostMap | None = None) -> None:
        self.view = view
        self.settings = settings
        self.cost_map = cost_map or {}
        self.persisted = PersistedQueries.from_settings(settings)
        self.rate_limiter = RateLimiter.from_settings(settings)
        self._cost: Callable[[str, str | None], int] = functools.lru_cache(maxsize=COST_CACHE_SIZE)(
            self._compute_cost
        )

    async def aclose(self, app: web.Application | None = None) -> None:
        """Release the rate limiter's storage; an ``on_cleanup`` hook."""
        if self.rate_limiter is not None:
            await self.rate_limiter.aclose()

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
            if self.settings.csrf_prevention and not is_csrf_safe(request.headers):
                raise RequestRefused(
                    400,
                    CSRF_PREVENTED,
                    "This request may be a cross-site request forgery: send Content-Type: application/json "
                    "or an apollo-require-preflight header.",
                )
            if not self.settings.rate_limit_by_cost:
                await self._rate_limit(request, 1)
            params = await self._params(request)
            resolved = await self.persisted.resolve(params.query, params.extensions)
            if not resolved.query:
                raise RequestRefused(400, BAD_REQUEST, "The request has no query.")
            if self.settings.rate_limit_by_cost:
                await self._rate_limit(request, self._cost(resolved.query, params.operation_name))
            return await self._execute(request, params, resolved, media_type)
        except RequestRefused as refused:
            return refused_response(refused, media_type)
        except PersistedQueryError as error:
            status = 200 if media_type == APPLICATION_JSON else 400
            return error_response(status, error.code, error.message, media_type=media_type)

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
            return params_from_query_string(request.query, list(request.query.keys()))
        check_content_type(request)
        return params_from_body(await read_body(request, self.settings.max_body_bytes))

    async def _rate_limit(self, request: web.Request, cost: int) -> None:
        if self.rate_limiter is None:
            return
        principal = request.get(PRINCIPAL)
        key = principal.rate_limit_key if principal is not None else f"ip:{request.remote}"
        retry_after = await self.rate_limiter.hit(key, cost)
        if retry_after is not None:
            seconds = int(retry_after)
            raise RequestRefused(
                429,
                RATE_LIMITED,
                f"Rate limit {self.settings.rate_limit} exceeded; retry in {seconds} s.",
                headers={"Retry-After": str(seconds)},
                retryAfter=seconds,
            )

    def _compute_cost(self, query: str, operation_name: str | None) -> int:
        try:
            document = parse(query, max_tokens=self.settings.max_tokens)
        except (GraphQLError, RecursionError):
            return 1
        return operation_cost(
            graphql_core_schema(self.view.schema),
            document,
            operation_name,
            default_list_size=self.settings.default_list_size,
            cost_map=self.cost_map,
        )

    async def _execute(
        self, request: web.Request, params: GraphQLParams, resolved: Resolved, media_type: str
    ) -> web.Response:
        allowed = GET_OPERATIONS if request.method == "GET" else POST_OPERATIONS
        context = await self.view.get_context(request, web.Response())
        try:
            result = await self.view.schema.execute(
                resolved.query,
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
        return await self._respond(request, result, resolved, media_type)

    def _request_error(self, message: str, media_type: str) -> web.Response:
        status = 200 if media_type == APPLICATION_JSON else 400
        return error_response(status, BAD_REQUEST, message, media_type=media_type)

    async def _respond(
        self, request: web.Request, result: ExecutionResult, resolved: Resolved, media_type: str
    ) -> web.Response:
        suggestions = self.settings.field_suggestions
        headers: dict[str, str] = {}
        if _no_field_could_run_unauthenticated(request, result):
            status = 401
            headers["WWW-Authenticate"] = "Bearer"
            payload: dict[str, Any] = {"errors": format_errors(result.errors or (), suggestions=suggestions)}
        elif is_request_error(result):
            status = 400 if media_type == GRAPHQL_RESPONSE_JSON else 200
            payload = result_payload(result, suggestions=suggestions)
        else:
            status = 200
            payload = result_payload(result, suggestions=suggestions)
            await self.persisted.register(resolved)
        return json_response(payload, status=status, media_type=media_type, headers=headers)


def _no_field_could_run_unauthenticated(request: web.Request, result: ExecutionResult) -> bool:
    """Anonymous, every error ``UNAUTHENTICATED`` and no root field with a value."""
    if request.get(PRINCIPAL) is not None or not result.errors:
        return False
    if any((error.extensions or {}).get("code") != UNAUTHENTICATED for error in result.errors):
        return False
    return result.data is None or all(value is None for value in result.data.values())
