"""Mask unexpected errors so no internals reach the client; our coded errors pass through.

An error is shown as is when it is a GraphQL syntax or validation error (no original exception) or
when its original exception is a :class:`~bff.errors.BFFError` (it carries ``extensions.code``).
Anything else becomes "Internal server error" with ``extensions.code = INTERNAL_SERVER_ERROR`` and
the request id, so the full traceback can be found in the log.
"""

from __future__ import annotations

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from bff.errors import BFFError

INTERNAL_MESSAGE = "Internal server error"


def is_unexpected(error: GraphQLError) -> bool:
    """True when ``error`` wraps an exception that is not one of ours."""
    original = error.original_error
    return original is not None and not isinstance(original, BFFError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's ``MaskErrors`` with our rule and the request id in ``extensions``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

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
