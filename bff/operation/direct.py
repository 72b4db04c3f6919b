"""Direct execution: a query with a compiled plan, without Strawberry's per-operation machinery.

Strawberry's ``Schema.execute`` builds an execution context and an instance of every schema extension
per operation, and runs their hooks around parsing, validation and execution; for a small query that
takes longer than executing it. When the document is parsed and validated already (the app's caches
hold both, without errors) and the operation is a query the transport allows, :class:`DirectExecution`
does inline what the kit's extensions (:func:`bff.graph.schema.build_schema`) do, in Strawberry's
order:

- parsing (:func:`bff.limits.parser_extension`): the app's cached parse;
- validation (``AddValidationRules``, :func:`bff.operation.validation.validation_cache`): the cached
  result, which must be no errors (otherwise Strawberry's path runs, and reports them);
- execution: graphql-core's ``execute`` with the schema's executor, which runs the compiled plan
  (:mod:`bff.operation.compiled`), as Strawberry calls it;
- error logging (:meth:`bff.observability.QuietSchema.process_errors`), then shaping
  (:func:`bff.masking.collapse`) and masking (:class:`bff.masking.MaskUnexpectedErrors`): extensions
  leave ``on_operation`` in the reverse of their order;
- the extensions' results: ``extensions.stale`` (:class:`bff.stale.StaleExtension`).

Anything else (another document, an operation type, a schema with other extensions) runs through
Strawberry's ``execute`` as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeGuard, cast

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, execute
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import OperationType as CoreOperationType
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from bff.masking import collapse, is_unexpected, masked
from bff.observability import QuietSchema
from bff.operation.caches import TextCache
from bff.stale import StaleLog

__all__ = ["DirectExecution"]


class DirectExecution:
    """Runs the queries it can for ``schema`` (see the module docstring).

    ``core`` is the graphql-core schema, ``executor`` its executor class, ``validated`` the app's
    validation cache, ``suggestions`` the ``BFF_FIELD_SUGGESTIONS`` setting.
    """

    def __init__(
        self,
        schema: QuietSchema,
        *,
        core: GraphQLSchema,
        executor: type[Any],
        validated: TextCache[list[GraphQLError]],
        suggestions: bool,
    ) -> None:
        self.schema = schema
        self.core = core
        self.executor = executor
        self.validated = validated
        self.suggestions = suggestions

    def can_run(
        self,
        query: str,
        operation: OperationDefinitionNode | None,
        allowed_operation_types: Iterable[OperationType] | None,
    ) -> bool:
        """Whether ``query`` (its selected ``operation``) runs here: a query the transport allows, of
        a document that validated without errors."""
        if operation is None or operation.operation is not CoreOperationType.QUERY:
            return False
        allowed = (
            DEFAULT_ALLOWED_OPERATION_TYPES if allowed_operation_types is None else allowed_operation_types
        )
        if OperationType.QUERY not in allowed:
            return False
        return self.validated.peek(query) == []

    async def execute(
        self,
        query: str,
        document: DocumentNode,
        *,
        variable_values: dict[str, Any] | None,
        context_value: Any,
        root_value: Any,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """Execute a query :meth:`can_run`; its result as Strawberry's ``execute`` would give it."""
        try:
            run = execute(
                self.core,
                document,
                root_value=root_value,
                context_value=context_value,
                variable_values=variable_values,
                operation_name=operation_name,
                executor_class=self.executor,
                is_awaitable=cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable),
                operation_extensions=operation_extensions,
            )
            result = run if isinstance(run, GraphQLExecutionResult) else await run
        except Exception as exc:  # as Strawberry's execute: a request error
            error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            self._log([error], query, variable_values, context_value, root_value, operation_name)
            return ExecutionResult(data=None, errors=[error], extensions=_extensions(context_value))
        errors = result.errors
        if errors:
            self._log(errors, query, variable_values, context_value, root_value, operation_name)
            request_id = getattr(context_value, "request_id", None)
            errors = [
                masked(error, request_id) if is_unexpected(error) else error
                for error in collapse(list(errors), suggestions=self.suggestions)
            ]
        return ExecutionResult(data=result.data, errors=errors, extensions=_extensions(context_value))

    def _log(
        self,
        errors: list[GraphQLError],
        query: str,
        variables: dict[str, Any] | None,
        context: Any,
        root_value: Any,
        operation_name: str | None,
    ) -> None:
        """Log the errors as the schema logs Strawberry's (with the request id of ``context``)."""
        execution_context = ExecutionContext(
            query=query,
            schema=self.schema,
            allowed_operations=DEFAULT_ALLOWED_OPERATION_TYPES,
            context=context,
            variables=variables,
            root_value=root_value,
            provided_operation_name=operation_name,
        )
        self.schema.process_errors(errors, execution_context)


def _extensions(context: Any) -> dict[str, Any]:
    """What the kit's extensions add to ``extensions``: the stale records used, if any."""
    log = getattr(context, "stale", None)
    if isinstance(log, StaleLog) and log.entries:
        return {"stale": log.entries}
    return {}
