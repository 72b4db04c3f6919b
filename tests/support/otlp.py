"""A real OTLP/HTTP receiver for tests: ``run_otlp_receiver`` decodes what an exporter POSTs.

It listens on a free 127.0.0.1 port, takes ``POST /v1/traces`` with an ``ExportTraceServiceRequest``
in protobuf (gzip or not, as the OTLP/HTTP specification allows) and answers an empty
``ExportTraceServiceResponse``, as a collector does. The spans it got are in ``Receiver.spans``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["ReceivedSpan", "Receiver", "run_otlp_receiver"]

PROTOBUF = "application/x-protobuf"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as decoded: ids in hex, attributes as Python values, the resource's attributes."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int


@dataclass
class Receiver:
    """A running receiver: its base URL (for ``OTEL_EXPORTER_OTLP_ENDPOINT``) and what it got."""

    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0

    async def wait_for(
        self, condition: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 10.0
    ) -> None:
        """Wait until ``condition(spans)`` holds (exports come in batches); else ``TimeoutError``."""
        async with asyncio.timeout(timeout_s):
            while not condition(self.spans):  # noqa: ASYNC110 - the exporter runs in its own thread
                await asyncio.sleep(0.02)


async def _traces(request: web.Request, receiver: Receiver) -> web.Response:
    if request.content_type != PROTOBUF:
        return web.Response(status=415, text=f"expected {PROTOBUF}")
    body = await request.read()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    export = ExportTraceServiceRequest.FromString(body)
    receiver.requests += 1
    for resource_spans in export.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                receiver.spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        resource=resource,
                        status_code=span.status.code,
                    )
                )
    return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)


@contextlib.asynccontextmanager
async def run_otlp_receiver() -> AsyncIterator[Receiver]:
    """Run a receiver on a free 127.0.0.1 port; stop it when the block exits."""
    receiver = Receiver()

    async def traces(request: web.Request) -> web.Response:
        return await _traces(request, receiver)

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(address[1] for address in runner.addresses if isinstance(address, tuple))
        receiver.url = f"http://127.0.0.1:{port}"
        yield receiver
    finally:
        await runner.cleanup()
