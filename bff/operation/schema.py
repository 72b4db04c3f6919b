"""``OperationSchema``: the schema every transport executes through, running the operation pipeline.

Strawberry's transports all call the schema: HTTP ``execute``, Server-Sent Events and
graphql-transport-ws ``stream``, legacy graphql-ws ``subscribe`` (which calls ``stream``). Running the
pipeline (:mod:`bff.operation.pipeline`) in these two public methods is what makes a policy hold
for every transport at once, as Strawberry's own extensions do.

Strawberry's WebSocket handlers do not pass a message's ``extensions`` (APQ hashes) to the schema;
:data:`OPERATION_EXTENSIONS` carries them from bff's handlers (:mod:`bff.view`) to :meth:`stream`.

The same two methods are where telemetry sees every operation (:mod:`bff.telemetry.operations`):
its duration, errors and refusals, its span, and its access line.

A subscription runs once for all its subscribers with the same document, variables and principal
(:mod:`bff.subscription_groups`): ``stream`` admits each subscriber, then joins it to its group.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

from graphql import DocumentNode, GraphQLError
from graphql import OperationType as CoreOperationType
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from bff.context import Context
from bff.masking import collapse
from bff.observability import QuietSchema, parse_errors_as_results
from bff.operation.caches import TextCache
from bff.operation.direct import DirectExecution
from bff.operation.pipeline import Admitted, OperationPipeline, OperationRefused
from bff.operation.plan_cache import CompiledPlans
from bff.operation.response_cache import ResponseCache
from bff.subscription_groups import SubscriptionGroups, group_key
from bff.telemetry.operations import HTTP, SSE, WEBSOCKET, OperationRecord, OperationTelemetry

__all__ = ["OPERATION_EXTENSIONS", "OperationSchema"]

logger = logging.getLogger("bff.operation")

OPERATION_EXTENSIONS: ContextVar[dict[str, Any] | None] = ContextVar("bff_operation_extensions", default=None)
"""The ``extensions`` of the WebSocket message that started the current operation's task."""


class OperationSchema(QuietSchema):
    """A schema whose ``execute`` and ``stream`` admit each operation through ``pipeline`` first.

    ``pipeline``, ``validated`` (the validation cache, for tests and metrics), ``plans`` (the
    compiled plans, :mod:`bff.operation.compiled`, ``None`` when off), ``direct`` (queries run
    without Strawberry's per-operation machinery, :mod:`bff.operation.direct`), ``responses`` (the
    whole-response cache, :mod:`bff.operation.response_cache`, after admission) and ``groups`` (the
    subscription groups) are set by :func:`bff.graph.schema.build_schema`, ``telemetry`` by
    :func:`bff.app.create_app`; without a pipeline, or for a context that is not a
    :class:`~bff.context.Context`, operations run as Strawberry runs them.
    """

    pipeline: OperationPipeline | None = None
    validated: TextCache[list[GraphQLError]] | None = None
    groups: SubscriptionGroups | None = None
    plans: CompiledPlans | None = None
    direct: DirectExecution | None = None
    telemetry: OperationTelemetry | None = None
    responses: ResponseCache | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Admit the operation, then execute it; a refusal is a request error with its code."""
        record = self._record(context_value, HTTP)
        try:
            admitted = await self._admit(
                query, operation_name, variable_values, operation_extensions, context_value, record
            )
            if isinstance(admitted, PreExecutionError):
                if record is not None:
                    record.result(admitted)
                return admitted
            cached = None
            if self.responses is not None and isinstance(context_value, Context):
                cached = await self.responses.lookup(admitted, operation_name, variable_values, context_value)
            if isinstance(cached, ExecutionResult):
                if admitted is not None and self.pipeline is not None:
                    await self.pipeline.ran(admitted)
                if record is not None:
                    record.result(cached)
                return cached
            document = self._direct(admitted, allowed_operation_types)
            if admitted is not None and self.direct is not None and document is not None:
                result = await self.direct.execute(
                    admitted.query,
                    document,
                    variable_values=variable_values,
                    context_value=context_value,
                    root_value=root_value,
                    operation_name=operation_name,
                    operation_extensions=operation_extensions,
                )
            else:
                result = await super().execute(
                    admitted.query if admitted is not None else query,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    allowed_operation_types,
                    operation_extensions,
                )
            if admitted is not None and self.pipeline is not None and not _is_request_error(result):
                await self.pipeline.ran(admitted)
            result = self._shaped(result)
            if cached is not None:
                cached.store(result)
            if record is not None:
                record.result(result)
            return _refused_whole(result)
        except Exception as exc:
            if record is not None:
                record.failed(exc)
            raise
        finally:
            if record is not None:
                record.finish()
                record.detach()

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        """Admit the operation, then stream its result(s); a refusal is one pre-execution error."""
        extensions = operation_extensions if operation_extensions is not None else OPERATION_EXTENSIONS.get()
        websocket = getattr(context_value, "websocket", None) is not None
        record = self._record(context_value, WEBSOCKET if websocket else SSE)
        admitted = await self._admit(
            query, operation_name, variable_values, extensions, context_value, record
        )
        if isinstance(admitted, PreExecutionError):
            return record.stream(_one(admitted)) if record is not None else _one(admitted)
        if admitted is not None and self.pipeline is not None:
            if admitted.parsed:
                # Strawberry streams results after this returns: register the (hash-checked) text now.
                await self.pipeline.ran(admitted)
            query = admitted.query
        stream = super().stream

        async def start(context: Any) -> Any:
            results = await stream(
                query,
                variable_values=variable_values,
                context_value=context,
                root_value=root_value,
                operation_name=operation_name,
                operation_extensions=extensions,
                allowed_operation_types=allowed_operation_types,
            )
            parsed = parse_errors_as_results(results, str(getattr(context, "request_id", "-")))
            return self._shaped_stream(parsed)

        try:
            groups = self.groups
            if (
                groups is not None
                and query is not None
                and isinstance(context_value, Context)
                and _is_subscription(admitted)
            ):
                key = group_key(query, operation_name, variable_values, extensions, context_value)
                shaped = groups.stream(key, context_value, start)  # a group shapes once for all
            else:
                shaped = await start(context_value)
        except Exception as exc:
            if record is not None:
                record.failed(exc)
                record.finish()
            raise
        return record.stream(shaped) if record is not None else shaped

    def _direct(
        self, admitted: Admitted | None, allowed_operation_types: Iterable[OperationType] | None
    ) -> DocumentNode | None:
        """The parsed document when the admitted operation runs by direct execution
        (:mod:`bff.operation.direct`), else ``None``: Strawberry's ``execute`` runs it."""
        if admitted is None or self.direct is None or self.pipeline is None:
            return None
        if not self.direct.can_run(admitted.query, admitted.operation, allowed_operation_types):
            return None
        return self.pipeline.document(admitted.query)

    def _shaped(self, result: ExecutionResult) -> ExecutionResult:
        """A request error's errors with their codes (and without suggestions when they are off).

        Errors raised while parsing leave ``on_operation`` by an exception, so the shaping extension
        (:func:`bff.masking.shape_errors`) never sees them: they are shaped here, for every transport.
        """
        if result.errors and (isinstance(result, PreExecutionError) or _is_request_error(result)):
            suggestions = self.pipeline.settings.field_suggestions if self.pipeline is not None else True
            result.errors = collapse(list(result.errors), suggestions=suggestions)
        return result

    async def _shaped_stream(self, results: Any) -> Any:
        async with aclosing(results):
            async for result in results:
                yield self._shaped(result) if isinstance(result, ExecutionResult) else result

    def _record(self, context: Any, transport: str) -> OperationRecord | None:
        """A telemetry record of the operation about to run, when telemetry is on and the operation
        runs through the pipeline."""
        if self.telemetry is None or self.pipeline is None or not isinstance(context, Context):
            return None
        return self.telemetry.start(context, transport)

    async def _admit(
        self,
        query: str | None,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        extensions: dict[str, Any] | None,
        context: Any,
        record: OperationRecord | None = None,
    ) -> Admitted | PreExecutionError | None:
        """The pipeline's admission, its refusal as a request error, or ``None`` without a pipeline
        (or for a context that is not bff's); ``record`` learns the operation's type and name."""
        pipeline = self.pipeline
        if pipeline is None or not isinstance(context, Context):
            return None
        try:
            admitted = await pipeline.admit(
                query=query,
                operation_name=operation_name,
                variables=variables,
                extensions=extensions,
                context=context,
            )
        except OperationRefused as refused:
            logger.info("operation refused: %s", refused.code)
            if record is not None:
                record.refused(refused)
            return refused.result()
        if record is not None:
            record.admitted(admitted)
        return admitted


REFUSING_CODES = frozenset({"IDEMPOTENCY_UNAVAILABLE"})
"""Codes of field errors that mean the field did nothing: when every root field of an operation
failed with one of them, nothing happened, and the operation is answered as a request error (its
HTTP status and ``Retry-After`` from :data:`bff.errors.ERROR_CODES`), so clients and proxies see a
503 rather than a 200 with nulls."""


def _refused_whole(result: ExecutionResult) -> ExecutionResult:
    """``result``, or one request error when every root field was refused (:data:`REFUSING_CODES`)."""
    if (
        not result.errors
        or not isinstance(result.data, dict)
        or any(v is not None for v in result.data.values())
    ):
        return result
    codes = {(error.extensions or {}).get("code") for error in result.errors}
    if not codes <= REFUSING_CODES:
        return result
    first = result.errors[0]
    return ExecutionResult(
        data=None,
        errors=[GraphQLError(first.message, extensions=first.extensions)],
        extensions=result.extensions,
    )


def _is_subscription(admitted: Admitted | None) -> bool:
    return (
        admitted is not None
        and admitted.operation is not None
        and admitted.operation.operation is CoreOperationType.SUBSCRIPTION
    )


def _is_request_error(result: ExecutionResult) -> bool:
    return result.data is None and bool(result.errors) and all(e.path is None for e in result.errors or ())


async def _one(result: PreExecutionError) -> AsyncGenerator[PreExecutionError, None]:
    yield result
