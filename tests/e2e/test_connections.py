"""What one client may hold: slow-header connections are closed, and requests in progress are capped.

A hostile client held 200 slowloris connections for 55 s and had no cap on open connections.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from tests.e2e.stack import run_bff


async def test_a_connection_that_never_finishes_its_headers_is_closed(demo_services: dict[str, str]) -> None:
    """Headers sent a byte at a time never complete a request: BFF_IDLE_TIMEOUT_MS closes the socket."""
    async with run_bff("slowloris", demo_services, BFF_IDLE_TIMEOUT_MS="1000") as stack:
        url = urlsplit(stack.graphql_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(40):  # 4 s of a header line every 100 ms, never the blank line that ends them
            await asyncio.sleep(0.1)
            try:
                writer.write(b"X-Slow: a\r\n")
                await writer.drain()
            except ConnectionError:
                closed = True
            if closed or reader.at_eof():
                closed = True
                break
        writer.close()
    assert closed, "the slow connection was still open after 4 s"


async def test_requests_in_progress_per_client_are_capped(demo_services: dict[str, str]) -> None:
    """With BFF_MAX_REQUESTS_PER_CLIENT=3, a fourth WebSocket from the same address gets 429
    TOO_MANY_CONNECTIONS; once one closes, a new one is accepted."""
    async with run_bff("cap", demo_services, BFF_MAX_REQUESTS_PER_CLIENT="3") as stack:
        ws_url = stack.graphql_url.replace("http://", "ws://", 1)
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(ws_url, protocols=["graphql-transport-ws"]) for _ in range(3)]
            async with session.get(stack.graphql_url.replace("/graphql", "/healthz")) as refused:
                assert refused.status == 429
                body = await refused.json()
                assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
                assert refused.headers["Retry-After"] == "1"
            await sockets.pop().close()
            for _ in range(50):
                async with session.get(stack.graphql_url.replace("/graphql", "/healthz")) as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.05)
            assert response.status == 200
            for ws in sockets:
                await ws.close()
