"""What one GraphQL operation records: its metrics, its span, its access line.

:class:`bff.operation.schema.OperationSchema` (the schema every transport executes through) starts an
:class:`OperationRecord` for each operation, tells it what the pipeline admitted or refused and hands
it every result; the record then

- observes ``bff_operation_duration_seconds`` (queries and mutations; a subscription lasts as long
  as its client wants, so it is counted in ``bff_subscriptions_active`` instead), counts each error
  by code in ``bff_operation_errors_total`` and each refusal (a result without data whose errors have
  no path) in ``bff_refusals_total``;
- is the operation's span while it runs (current in the OpenTelemetry context, so downstream spans
  are its children) and puts its trace id in every result's ``extensions.traceId``;
- writes the access line (:mod:`bff.telemetry.access`).

Labels stay bounded: ``operation_type`` is ``query``, ``mutation``, ``subscription`` or ``unknown``
(the document did not parse, or lacks the operation); ``operation_name`` is the operation's name, or
for an anonymous one the SHA-256 of its document, only when the document is in the safelist
(``BFF_PERSISTED_QUERIES_MANIFEST``) and ``unknown`` otherwise; ``outcome`` is ``success`` (no
errors), ``partial`` (data and errors) or ``error`` (no data).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Final

import structlog
from graphql import FieldNode, GraphQLError, OperationDefinitionNode

from bff.masking import request_error_code
from bff.persisted import sha256_hex
from bff.telemetry.access import hand_over
from bff.telemetry.metrics import UNKNOWN, Metrics
from bff.telemetry.tracing import Tracing, trace_id_of

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from bff.context import Context
    from bff.operation.pipeline import Admitted, OperationRefused

__all__ = ["HTTP", "SSE", "WEBSOCKET", "OperationRecord", "OperationTelemetry", "count_downstream_call"]

HTTP: Final = "http"
SSE: Final = "sse"
WEBSOCKET: Final = "ws"
RATE_LIMITED: Final = "RATE_LIMITED"
MAX_NAME_LENGTH: Final = 100
MAX_LOGGED_CODES: Final = 10

_CURRENT: ContextVar[OperationRecord | None] = ContextVar("bff_operation_record", default=None)


def count_downstream_call() -> None:
    """Count one downstream HTTP exchange for the operation running in this context, if any."""
    record = _CURRENT.get()
    if record is not None:
        record.downstream_calls += 1


def _is_request_error(result: Any) -> bool:
    errors: list[GraphQLError] = getattr(result, "errors", None) or []
    return result.data is None and bool(errors) and all(error.path is None for error in errors)


def _code(error: GraphQLError) -> str | None:
    """The error's ``extensions.code``; for a request error graphql-core left without one, the code
    :func:`bff.masking.collapse` gives such errors."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    return request_error_code(error) if error.path is None else None


class OperationTelemetry:
    """Per app: starts an :class:`OperationRecord` per operation, over the app's metrics and tracing
    (either may be ``None``: off)."""

    def __init__(self, metrics: Metrics | None, tracing: Tracing | None) -> None:
        self.metrics = metrics
        self.tracing = tracing

    def start(self, context: Context, transport: str) -> OperationRecord:
        """Start recording an operation run for ``context`` over ``transport`` (``http``, ``sse``, ``ws``)."""
        return OperationRecord(self, context, transport)


class OperationRecord:
    """One operation being recorded (see the module docstring). Not shared between operations."""

    __slots__ = (
        "_context_token",
        "_current_token",
        "_finished",
        "_started",
        "codes",
        "downstream_calls",
        "errors",
        "has_data",
        "label_name",
        "name",
        "operation_type",
        "span",
        "subscription_field",
        "telemetry",
        "trace_id",
        "transport",
    )

    def __init__(self, telemetry: OperationTelemetry, context: Context, transport: str) -> None:
        self.telemetry = telemetry
        self.transport = transport
        self.name: str | None = None
        self.label_name = UNKNOWN
        self.operation_type = UNKNOWN
        self.downstream_calls = 0
        self.codes: list[str] = []
        self.errors = False
        self.has_data = False
        self.subscription_field: str | None = None
        self.span: Span | None = None
        self.trace_id: str | None = None
        self._finished = False
        self._context_token: object | None = None
        if transport == WEBSOCKET:
            # The operation's own task (Strawberry starts one per WebSocket operation): its lines
            # carry its connection's request id.
            structlog.contextvars.bind_contextvars(request_id=context.request_id)
        tracing = telemetry.tracing
        if tracing is not None:
            from opentelemetry import context as otel_context
            from opentelemetry import trace

            parent = tracing.extract(context.request.headers)
            self.span = span = tracing.tracer.start_span(
                "graphql", context=parent, kind=trace.SpanKind.SERVER, attributes={"bff.transport": transport}
            )
            self.trace_id = trace_id_of(span)
            self._context_token = otel_context.attach(trace.set_span_in_context(span))
        self._current_token: Token[OperationRecord | None] | None = _CURRENT.set(self)
        self._started = time.perf_counter()

    def admitted(self, admitted: Admitted) -> None:
        """The pipeline admitted the operation: take its type and name."""
        self._operation(admitted.operation, admitted.query if admitted.resolved.safelisted else None)

    def refused(self, refused: OperationRefused) -> None:
        """The pipeline refused the operation: take its type and name when it got as far as parsing
        it (the refusal's result is recorded as any result is, by :meth:`result`)."""
        self._operation(refused.operation, None)

    def _operation(self, operation: OperationDefinitionNode | None, safelisted: str | None) -> None:
        """Take the type and name of ``operation``; ``safelisted``: its document, if safelisted."""
        if operation is None:
            return
        self.operation_type = operation.operation.value
        if operation.name is not None:
            self.name = operation.name.value[:MAX_NAME_LENGTH]
        if safelisted is not None:
            self.label_name = self.name or sha256_hex(safelisted)
        if self.operation_type == "subscription":
            field = next(
                (node for node in operation.selection_set.selections if isinstance(node, FieldNode)), None
            )
            self.subscription_field = field.name.value if field is not None else UNKNOWN
        span = self.span
        if span is not None:
            span.update_name(f"{self.operation_type} {self.name}" if self.name else self.operation_type)
            span.set_attribute("graphql.operation.type", self.operation_type)
            if self.name:
                span.set_attribute("graphql.operation.name", self.name)

    def result(self, result: Any) -> None:
        """One result of the operation (its only one, or one event of a subscription)."""
        self.has_data = self.has_data or getattr(result, "data", None) is not None
        errors = getattr(result, "errors", None) or ()
        metrics = self.telemetry.metrics
        if errors:
            self.errors = True
            for error in errors:
                code = _code(error)
                if code is not None and code not in self.codes and len(self.codes) < MAX_LOGGED_CODES:
                    self.codes.append(code)
                if metrics is not None:
                    metrics.operation_errors.labels(metrics.error_code(code)).inc()
            if metrics is not None and _is_request_error(result):
                code = metrics.error_code(_code(errors[0]))
                metrics.refusals.labels(code).inc()
                if code == RATE_LIMITED:
                    metrics.rate_limited.labels("operations").inc()
        if self.trace_id is not None:
            result.extensions = {**(result.extensions or {}), "traceId": self.trace_id}

    def failed(self, exc: BaseException) -> None:
        """The operation raised instead of giving a result (the transport maps the exception)."""
        self.errors = True
        span = self.span
        if span is not None:
            span.set_attribute("error.type", type(exc).__qualname__)

    @property
    def outcome(self) -> str:
        """``success``, ``partial`` or ``error`` (see the module docstring)."""
        if not self.errors:
            return "success"
        return "partial" if self.has_data else "error"

    def finish(self) -> None:
        """The operation is over: observe its duration, end its span, write (or hand over) its line.

        Called once; later calls do nothing.
        """
        if self._finished:
            return
        self._finished = True
        seconds = time.perf_counter() - self._started
        outcome = self.outcome
        metrics = self.telemetry.metrics
        if metrics is not None and self.operation_type != "subscription":
            metrics.operation_duration.labels(self.operation_type, self.label_name, outcome).observe(seconds)
        span = self.span
        if span is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("bff.downstream_calls", self.downstream_calls)
            if self.codes:
                span.set_attribute("bff.error_codes", self.codes)
            if outcome == "error":
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        fields: dict[str, Any] = {
            "operation_name": self.name,
            "operation_type": self.operation_type,
            "transport": self.transport,
            "duration_ms": round(seconds * 1000, 2),
            "downstream_calls": self.downstream_calls,
            "outcome": outcome,
            "error_codes": list(self.codes),
        }
        if self.trace_id is not None:
            fields["trace_id"] = self.trace_id
        hand_over(fields, websocket=self.transport == WEBSOCKET)

    def detach(self) -> None:
        """Leave the operation's context (the span and this record stop being current).

        For ``execute``, which runs in the request's task; a streamed operation keeps its task's
        context to the end, so it is not detached.
        """
        if self._context_token is not None:
            from opentelemetry import context as otel_context

            otel_context.detach(self._context_token)  # type: ignore[arg-type]
            self._context_token = None
        if self._current_token is not None:
            _CURRENT.reset(self._current_token)
            self._current_token = None

    async def stream(self, results: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
        """``results``, each recorded; the record finishes when the stream ends (or is closed)."""
        metrics = self.telemetry.metrics
        gauge = None
        if self.subscription_field is not None and metrics is not None:
            gauge = metrics.subscriptions_active.labels(metrics.field(self.subscription_field))
            gauge.inc()
        try:
            async with aclosing(results) as source:  # type: ignore[type-var]
                async for result in source:
                    self.result(result)
                    yield result
        except Exception as exc:
            self.failed(exc)
            raise
        finally:
            if gauge is not None:
                gauge.dec()
            self.finish()
