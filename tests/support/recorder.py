"""A reverse proxy that remembers the headers of every request it forwards: ``run_recorder``.

Put in front of a downstream service, it shows what the service received from the BFF
(``traceparent``, ``X-Request-Id``) while the service answers as usual: each request is forwarded with
its method, path, query string (repeated parameters kept, in order), body and headers (``Host`` aside),
and the answer comes back with its status, body and headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from aiohttp import web

__all__ = ["Recorder", "run_recorder"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


@dataclass
class Recorder:
    """A running proxy: its URL and the headers of each request it forwarded, lower-cased names."""

    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)

    def values(self, header: str) -> list[str]:
        """The value of ``header`` in each request that carried it, in order."""
        return [headers[header] for headers in self.received if header in headers]


@contextlib.asynccontextmanager
async def run_recorder(upstream: str) -> AsyncIterator[Recorder]:
    """Run the proxy to ``upstream`` on a free 127.0.0.1 port; stop it when the block exits."""
    recorder = Recorder()
    base = httpx.URL(upstream)
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:

        async def forward(request: web.BaseRequest) -> web.StreamResponse:
            headers = {name.lower(): value for name, value in request.headers.items()}
            recorder.received.append(headers)
            outgoing = httpx.Request(
                request.method,
                base.copy_with(raw_path=request.raw_path.encode()),
                headers={k: v for k, v in headers.items() if k not in _HOP_BY_HOP},
                content=await request.read(),
            )
            answer = await client.send(outgoing)
            kept = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
            kept = [(k, v) for k, v in kept if k.lower() != "content-encoding"]
            return web.Response(status=answer.status_code, body=answer.content, headers=kept)

        runner = web.ServerRunner(web.Server(forward, access_log=None))
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            yield recorder
        finally:
            await runner.cleanup()
