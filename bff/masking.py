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

from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from bff.errors import BFFError, DownstreamError

INTERNAL_MESSAGE = "Internal server error"


def is_unexpected(error: GraphQLError) -> bool:
    """True when ``error`` wraps an exception that is neither one of ours nor the client's doing."""
    original = error.original_error
    return original is not None and not isinstance(
        original, BFFError | GraphQLError | InvalidOperationTypeError | CannotGetOperationTypeError
    )


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's ``MaskErrors`` with our rule and the request id in ``extensions``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """Collapse errors sharing one downstream exception, then mask the unexpected ones."""
        grouped: dict[int, GraphQLError] = {}
        counts: dict[int, int] = {}
        kept: list[GraphQLError] = []
        for error in errors:
            original = error.original_error
            if isinstance(original, InvalidOperationTypeError):
                error = _unsupported_operation(error, original)
            elif isinstance(original, CannotGetOperationTypeError):
                error = _unknown_operation(error, original)
            elif isinstance(original, DownstreamError):
                key = id(original)
                counts[key] = counts.get(key, 0) + 1
                if key in grouped:
                    continue
                grouped[key] = error
            kept.append(error)
        for key, error in grouped.items():
            if counts[key] > 1:
                error.extensions = {**(error.extensions or {}), "affectedFields": counts[key]}
        return super()._process_errors(kept)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """Return the masked error, keeping the path and locations."""
        context = self.execution_context.context
        extensions: dict[str, object] = {"code": "INTERNAL_SERVER_ERROR"}
        request_id = getattr(context, "request_id", None)
        if request_id is not None:
            extensions["requestId"] = request_id
        return GraphQLError(
            message=self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )


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
