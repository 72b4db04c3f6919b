"""The operation pipeline: every operation, from every transport, passes these stages once.

::

    persisted query / safelist / APQ  (bff.persisted)         PERSISTED_QUERY_*, BAD_REQUEST
    input bounds: variable strings     (BFF_MAX_STRING_BYTES)  BAD_USER_INPUT
    parse (bytes-bounded cache, token limit)                    TOO_MANY_TOKENS, GRAPHQL_PARSE_FAILED
    operation selection (GraphQL spec 6.1 GetOperation)         GRAPHQL_VALIDATION_FAILED
    principal still valid (a token's exp, over a WebSocket too) UNAUTHENTICATED
    rate limit per principal or client IP, by cost when set     RATE_LIMITED (retryAfter)
    deprecated fields in use: counted, logged once per name     (bff.operation.deprecations)
    -- then Strawberry: validation (limits, bff.limits), execution with the runtime budget
       (bff.operation.budget), masking (bff.masking) --

Transports only decode requests into (query, operationName, variables, extensions) and encode the
results: HTTP (POST and GET), Server-Sent Events, graphql-transport-ws and legacy graphql-ws all
reach :meth:`OperationPipeline.admit` through the schema (:mod:`bff.operation.schema`), so a policy
written here holds for all of them. A refusal is an :class:`OperationRefused`: one GraphQL error
with ``extensions.code``, formatted by each transport as its other request errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode
from strawberry.types.execution import PreExecutionError

from bff.auth import Principal
from bff.context import Context
from bff.cost_map import CostMap
from bff.limits import operation_cost
from bff.operation.caches import TextCache
from bff.operation.deprecations import DeprecationTracker
from bff.persisted import PersistedQueries, PersistedQueryError, Resolved
from bff.rate_limit import RATE_LIMITED, RateLimiter
from bff.settings import Settings

__all__ = ["Admitted", "OperationPipeline", "OperationRefused"]

logger = logging.getLogger("bff.operation")

COST_CACHE_BYTES = 4_000_000
"""Texts whose operation cost is kept (keys only: a cost is an int)."""


class OperationRefused(Exception):
    """An operation the pipeline does not run: ``code`` for ``extensions.code``, a safe ``message``,
    and further ``extensions`` (``retryAfter`` seconds for ``RATE_LIMITED``)."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = {"code": code, **extensions}
        self.operation: OperationDefinitionNode | None = None
        """The operation refused, when the document was parsed before the refusal (for telemetry)."""

    def result(self) -> PreExecutionError:
        """The refusal as a request error: no ``data``, one coded error."""
        return PreExecutionError(data=None, errors=[GraphQLError(self.message, extensions=self.extensions)])


@dataclass(frozen=True, slots=True)
class Admitted:
    """What runs: the document's text, and the APQ hash to register it under once it ran."""

    query: str
    resolved: Resolved
    parsed: bool
    """Whether the document parsed (a stream registers an APQ document once admitted)."""
    operation: OperationDefinitionNode | None = None
    """The operation the request selects (by ``operationName``, or the only one), when the document
    parsed and has it: its type and name are what telemetry records."""


class OperationPipeline:
    """The stages before execution (see the module docstring); one per app.

    ``parse`` is the app's cached, token-limited parser (shared with the schema's parsing stage, so a
    document is parsed once); ``schema`` is bound by :meth:`bind` once the schema exists.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        cost_map: CostMap,
        persisted: PersistedQueries,
        rate_limiter: RateLimiter | None,
        parse: Callable[[str], DocumentNode],
    ) -> None:
        self.settings = settings
        self.cost_map = cost_map
        self.persisted = persisted
        self.rate_limiter = rate_limiter
        self._parse = parse
        self._schema: GraphQLSchema | None = None
        self._costs: TextCache[int] = TextCache(COST_CACHE_BYTES)
        self.deprecations = DeprecationTracker()
        """Deprecated elements operations use (:mod:`bff.operation.deprecations`); metrics observe it."""

    def bind(self, schema: GraphQLSchema) -> None:
        """Measure costs against ``schema`` (the graphql-core schema the app executes with)."""
        self._schema = schema

    async def aclose(self) -> None:
        """Release the rate limiter's storage."""
        if self.rate_limiter is not None:
            await self.rate_limiter.aclose()

    async def admit(
        self,
        *,
        query: str | None,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        extensions: Mapping[str, Any] | None,
        context: Context,
    ) -> Admitted:
        """Run the stages before execution; raises :class:`OperationRefused` with the stage's code."""
        try:
            # An empty query is a transport's way of sending none (a persisted query by hash).
            resolved = await self.persisted.resolve(query or None, dict(extensions) if extensions else None)
        except PersistedQueryError as error:
            raise OperationRefused(error.code, error.message) from None
        if not resolved.query:
            raise OperationRefused("BAD_REQUEST", "The request has no query.")
        if variables:
            _check_strings(variables, self.settings.max_string_bytes)
        document = self.document(resolved.query)
        operation = None
        if document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if operation_name is None:
                if len(operations) > 1:
                    raise OperationRefused(
                        "GRAPHQL_VALIDATION_FAILED",
                        "Must provide operation name if query contains multiple operations.",
                    )
                operation = operations[0] if operations else None
            else:
                named = (d for d in operations if d.name is not None and d.name.value == operation_name)
                operation = next(named, None)
        principal = context.current_principal
        try:
            _check_principal(principal)
            if self.rate_limiter is not None:
                cost = 1
                if self.settings.rate_limit_by_cost and document is not None:
                    cost = self._cost(resolved.query, document, operation_name)
                await self._rate_limit(context, principal, cost)
        except OperationRefused as refused:
            refused.operation = operation
            raise
        if document is not None and self._schema is not None:
            self.deprecations.record(
                self._schema, resolved.query, document, operation_name, request_id=context.request_id
            )
        return Admitted(resolved.query, resolved, parsed=document is not None, operation=operation)

    async def ran(self, admitted: Admitted) -> None:
        """After an operation ran without a request error: register its document (APQ)."""
        await self.persisted.register(admitted.resolved)

    def document(self, query: str) -> DocumentNode | None:
        """The parsed document (from the app's parse cache), or ``None`` when it does not parse
        (Strawberry reports that)."""
        try:
            return self._parse(query)
        except GraphQLError:
            return None

    def _cost(self, query: str, document: DocumentNode, operation_name: str | None) -> int:
        if self._schema is None:
            return 1
        schema = self._schema
        key = f"{operation_name or ''}\n{query}"
        return self._costs.get_or_make(
            key,
            lambda _key: operation_cost(
                schema,
                document,
                operation_name,
                default_list_size=self.settings.default_list_size,
                cost_map=self.cost_map,
            ),
        )

    async def _rate_limit(self, context: Context, principal: Principal | None, cost: int) -> None:
        assert self.rate_limiter is not None
        key = principal.rate_limit_key if principal is not None else f"ip:{context.request.remote}"
        retry_after = await self.rate_limiter.hit(key, cost)
        if retry_after is not None:
            seconds = int(retry_after)
            logger.info("rate limited: retry in %d s", seconds)
            raise OperationRefused(
                RATE_LIMITED,
                f"Rate limit {self.settings.rate_limit} exceeded; retry in {seconds} s.",
                retryAfter=seconds,
            )


def _check_principal(principal: Principal | None) -> None:
    """Refuse an operation whose principal's token has expired since it was checked."""
    if principal is None:
        return
    expires = principal.claim("exp")
    if isinstance(expires, int | float) and not isinstance(expires, bool) and expires < time.time():
        raise OperationRefused("UNAUTHENTICATED", "The token has expired; sign in again.")


def _check_strings(value: Any, limit: int) -> None:
    """Refuse variable values holding a string longer than ``limit`` bytes (``BAD_USER_INPUT``).

    The value is at most a request body's size, so the walk is bounded too.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > limit or len(item.encode("utf-8", "surrogatepass")) > limit:
                raise OperationRefused(
                    "BAD_USER_INPUT",
                    f"A variable holds a string longer than {limit} bytes, the limit.",
                    limit=limit,
                )
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
