"""Shape errors for clients: mask unexpected ones, pass our coded ones, one error per failed batch.

An error is shown as is when it is a GraphQL syntax or validation error (no original exception) or
when its original exception is a :class:`~bff.errors.BFFError` (it carries ``extensions.code``).
Anything else becomes "Internal server error" with ``extensions.code = INTERNAL_SERVER_ERROR`` and
the request id, so the full traceback can be found in the log.

When a downstream batch fails, every field that waited on it fails with the same exception; the
client gets one error for it (the first field's path) with ``extensions.affectedFields`` counting
the fields it nulled, instead of one copy per field.

A query or mutation sent over a transport that runs only subscriptions (the legacy graphql-ws
protocol) is the client's mistake, not ours: it becomes ``OPERATION_NOT_SUPPORTED`` with a hint. So is
an ``operationName`` the document does not define (WebSockets; HTTP refuses it before execution):
``BAD_REQUEST``, which graphql-transport-ws turns into a 4400 close naming the operation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult

from bff.errors import BFFError, DownstreamError
from bff.operation.budget import BudgetExceeded, OperationTimeout

__all__ = [
    "INTERNAL_MESSAGE",
    "MaskUnexpectedErrors",
    "collapse",
    "is_unexpected",
    "masked",
    "request_error_code",
    "shape_errors",
]

INTERNAL_MESSAGE = "Internal server error"


def _is_variable_error(error: GraphQLError) -> bool:
    """A variable value that did not coerce: the client's doing, whatever the scalar raised."""
    return error.path is None and error.message.startswith("Variable '$")


def is_unexpected(error: GraphQLError) -> bool:
    """True when ``error`` wraps an exception that is neither one of ours nor the client's doing."""
    original = error.original_error
    if _is_variable_error(error):
        return False
    return original is not None and not isinstance(
        original, BFFError | GraphQLError | InvalidOperationTypeError | CannotGetOperationTypeError
    )


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's ``MaskErrors`` with our rule and the request id in ``extensions``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def on_operation(self) -> Iterator[None]:
        """Mask the operation's errors once it has run, as ``MaskErrors`` does; a result without
        errors skips its check, a ``runtime_checkable`` protocol's ``isinstance`` (about 10 us on
        Python 3.11, several percent of a small request)."""
        masking = super().on_operation()
        next(masking)
        yield
        result = self.execution_context.result
        initial = getattr(result, "initial_result", None)
        if getattr(result, "errors", None) or getattr(initial, "errors", None):
            next(masking, None)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """Return the masked error, keeping the path and locations."""
        return masked(error, getattr(self.execution_context.context, "request_id", None))


def masked(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """``error`` as a client sees an unexpected one: :data:`INTERNAL_MESSAGE`, ``INTERNAL_SERVER_ERROR``
    and the request id (when there is one), with its path and locations."""
    extensions: dict[str, object] = {"code": "INTERNAL_SERVER_ERROR"}
    if request_id is not None:
        extensions["requestId"] = request_id
    return GraphQLError(
        message=INTERNAL_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


_SUGGESTION = re.compile(r"\s*Did you mean .*\?$", re.DOTALL)


def collapse(errors: list[GraphQLError], *, suggestions: bool = True) -> list[GraphQLError]:
    """One error per failed downstream batch or spent budget (``affectedFields`` counting the fields
    it nulled), ``OPERATION_NOT_SUPPORTED`` for an operation the transport does not run, and a code
    for every request error graphql-core reports without one (Apollo's ``GRAPHQL_PARSE_FAILED``,
    ``GRAPHQL_VALIDATION_FAILED``; ``BAD_USER_INPUT`` for variables that do not coerce). Without
    ``suggestions`` (``BFF_FIELD_SUGGESTIONS=false``) messages lose their "Did you mean" hints, which
    tell a prober the schema."""
    grouped: dict[int, GraphQLError] = {}
    counts: dict[int, int] = {}
    kept: list[GraphQLError] = []
    for error in errors:
        original = error.original_error
        if isinstance(original, InvalidOperationTypeError):
            error = _unsupported_operation(error, original)
        elif isinstance(original, CannotGetOperationTypeError):
            error = _unknown_operation(error, original)
        elif (original is None or _is_variable_error(error)) and not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": request_error_code(error)}
            if not suggestions:
                error.message = _SUGGESTION.sub("", error.message)
        elif isinstance(original, DownstreamError | BudgetExceeded | OperationTimeout):
            key = id(original)
            counts[key] = counts.get(key, 0) + 1
            if key in grouped:
                continue
            grouped[key] = error
        kept.append(error)
    for key, error in grouped.items():
        if counts[key] > 1:
            error.extensions = {**(error.extensions or {}), "affectedFields": counts[key]}
    return kept


def shape_errors(*, suggestions: bool) -> type[SchemaExtension]:
    """An extension applying :func:`collapse` to each result, before :class:`MaskUnexpectedErrors`
    sees it, on every transport. List it after the masking extension: extensions leave
    ``on_operation`` in reverse order."""

    class ShapeErrors(SchemaExtension):
        """Collapse and code the errors of each result."""

        def on_operation(self) -> Iterator[None]:
            """Shape the operation's errors once it has run."""
            yield
            result = self.execution_context.result
            if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
                result.errors = collapse(list(result.errors), suggestions=suggestions)

        def on_stream_result(self, result: ExecutionResult) -> Iterator[None]:  # type: ignore[override]
            """Shape the errors of one streamed result (a subscription event)."""
            if result.errors:
                result.errors = collapse(list(result.errors), suggestions=suggestions)
            yield None

    return ShapeErrors


def request_error_code(error: GraphQLError) -> str:
    """The code of a request error graphql-core reports without one (see :func:`collapse`)."""
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if _is_variable_error(error):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def _unknown_operation(error: GraphQLError, original: CannotGetOperationTypeError) -> GraphQLError:
    # Keeps the original: Strawberry's graphql-transport-ws handler looks for it to close with 4400.
    return GraphQLError(
        message=original.as_http_error_reason(),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions={"code": "BAD_REQUEST"},
    )


def _unsupported_operation(error: GraphQLError, original: InvalidOperationTypeError) -> GraphQLError:
    kind = original.operation_type.value
    return GraphQLError(
        message=(
            f"This transport runs only subscriptions; send this {kind} over HTTP or graphql-transport-ws."
        ),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "OPERATION_NOT_SUPPORTED"},
    )
