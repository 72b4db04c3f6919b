"""Logging: one logger tree under ``bff``; client errors logged quietly, our bugs loudly.

Strawberry logs every GraphQL error at ERROR with a traceback; for a public endpoint that turns
every typo in a query into an alarm. :class:`QuietSchema` logs errors the client caused or that a
downstream service caused at INFO/WARNING, and only unexpected exceptions at ERROR with traceback.

Logs never repeat what a client sent: graphql-core's messages quote invalid values back (a password
typed into the wrong variable would land in the log), and so does ``BAD_USER_INPUT``. Those errors
are logged as their code (``GRAPHQL_PARSE_FAILED`` and ``GRAPHQL_VALIDATION_FAILED`` when graphql-core
gives none) and where they are: the field path, or the document's ``line:column``.

Each line carries the operation's request id as a field (``request_id``, from the execution context:
a subscription event's own id), not in its message; formats and the rest of the fields are
:mod:`bff.telemetry.logs`'.

Strawberry's ``Schema.stream`` (WebSockets, SSE) does not catch errors raised by ``on_parse``
extensions, as ``execute`` does: a syntax error or a document over the token or nesting limit
(:mod:`bff.limits` parses in ``on_parse``) escaped to the transport with a traceback.
:meth:`QuietSchema.stream` turns them into a first ``PreExecutionError`` result, as ``execute`` would.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import TYPE_CHECKING, Literal

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionContext
from strawberry.types.execution import PreExecutionError

from bff.errors import BadUserInput, BFFError, DownstreamError
from bff.masking import is_unexpected
from bff.telemetry import logs

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

logger = logging.getLogger("bff")
errors_logger = logging.getLogger("bff.errors")


def configure_logging(level: str, log_format: Literal["json", "console"] | None = None) -> None:
    """Log to stderr at ``level`` (a logging level name such as ``INFO``) in ``log_format``
    (:func:`bff.telemetry.logs.configure_logging`)."""
    logs.configure_logging(level, log_format)


def _request_id(execution_context: ExecutionContext | None) -> str:
    context = execution_context.context if execution_context is not None else None
    return str(getattr(context, "request_id", "-"))


def _code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if isinstance(error.original_error, CannotGetOperationTypeError):
        return "BAD_REQUEST"
    return "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"


def _where(error: GraphQLError) -> str:
    if error.path:
        return ".".join(str(part) for part in error.path)
    return ", ".join(f"{location.line}:{location.column}" for location in error.locations or ()) or "-"


async def parse_errors_as_results(results: StreamResult, request_id: str) -> StreamResult:
    """``results`` of Strawberry's ``stream``, with a document that fails to parse as its first result.

    Strawberry's ``Schema.stream`` does not catch errors raised while parsing (strawberry#1439 was
    fixed for HTTP only), where bff's parser stage raises for syntax errors and the token limit.
    """
    started = False
    async with aclosing(results):
        try:
            async for result in results:
                started = True
                yield result
        except GraphQLError as error:
            if started:  # not a parse failure: those come before any result
                raise
            errors_logger.info("%s at %s", _code(error), _where(error), extra={"request_id": request_id})
            yield PreExecutionError(data=None, errors=[error])


class QuietSchema(strawberry.Schema):
    """A ``strawberry.Schema`` whose error logging matches who caused the error."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log each error once: unexpected ones with traceback, the rest as one line; the client's
        own mistakes without their message (see the module docstring).

        Fields nulled by one failed downstream batch share its exception: it is logged once.
        """
        ids = {"request_id": _request_id(execution_context)}
        seen: set[int] = set()
        for error in errors:
            original = error.original_error
            if original is not None:
                if id(original) in seen:
                    continue
                seen.add(id(original))
            if is_unexpected(error):
                errors_logger.error("unexpected error at %s", error.path, exc_info=original, extra=ids)
            elif isinstance(original, DownstreamError):
                errors_logger.warning("%s: %s", original.code, error.message, extra=ids)
            elif original is None or isinstance(
                original, BadUserInput | GraphQLError | CannotGetOperationTypeError
            ):
                errors_logger.info("%s at %s", _code(error), _where(error), extra=ids)
            elif isinstance(original, BFFError):
                errors_logger.info("%s: %s", original.code, error.message, extra=ids)
            else:
                errors_logger.info("%s", error.message, extra=ids)
