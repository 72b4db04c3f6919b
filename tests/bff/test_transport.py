"""AiohttpTransport: httpx requests sent through aiohttp, answered and failing as httpcore's would."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bff.downstream.transport import AiohttpTransport

LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "query": list(request.query.items()),
            "header": request.headers.get("X-Request-Id"),
            "cookie": request.headers.get("Cookie"),
            "body": body.decode(),
            "port": request.transport.get_extra_info("peername")[1] if request.transport else None,
        },
        headers={"Set-Cookie": "session=secret", "X-Answer": "yes"},
    )


async def _gzipped(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b'{"zipped": true}'),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="late")


async def _hang_up(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()
    await asyncio.sleep(1)
    return web.Response(text="never sent")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A real aiohttp server on a free port of 127.0.0.1."""
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/gzipped", _gzipped)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/hang-up", _hang_up)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


def _client(base: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=timeout, transport=AiohttpTransport(limits=LIMITS))


async def test_requests_and_answers_go_through_unchanged(server: str) -> None:
    """Method, query, headers and JSON body reach the server; status, headers and body come back;
    cookies are the httpx client's business alone (aiohttp adds no jar of its own: a plain client
    keeps them, bff's ServiceClient refuses them, tests/bff/test_client.py)."""
    async with _client(server) as client:
        first = await client.post("/echo?id=1&id=2", json={"a": "é"}, headers={"X-Request-Id": "r-1"})
        second = await client.get("/echo")
    assert first.status_code == 200
    assert first.headers["X-Answer"] == "yes"
    answer = first.json()
    assert answer["method"] == "POST"
    assert answer["query"] == [["id", "1"], ["id", "2"]]
    assert answer["header"] == "r-1"
    assert answer["body"] == '{"a":"é"}'
    assert first.http_version == "HTTP/1.1"
    assert second.json()["cookie"] == "session=secret"


async def test_encoded_bodies_are_decoded_by_httpx(server: str) -> None:
    """A gzip answer is decoded once, by httpx, as with its own transport."""
    async with _client(server) as client:
        response = await client.get("/gzipped")
    assert response.json() == {"zipped": True}


async def test_connections_are_reused(server: str) -> None:
    """Sequential requests share one keep-alive connection: the server sees one client port."""
    async with _client(server) as client:
        ports = {(await client.get("/echo")).json()["port"] for _ in range(3)}
    assert len(ports) == 1


async def test_a_refused_connection_is_a_connect_error() -> None:
    """Nothing listening: httpx.ConnectError, which the pipeline maps to DOWNSTREAM_UNAVAILABLE."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/echo")


async def test_a_slow_answer_is_a_read_timeout(server: str) -> None:
    """No answer within the read timeout: httpx.ReadTimeout (DOWNSTREAM_TIMEOUT)."""
    async with _client(server, timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")


async def test_a_server_hanging_up_is_a_protocol_error(server: str) -> None:
    """The server closing the connection without an answer: httpx.RemoteProtocolError."""
    async with _client(server) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/hang-up")
