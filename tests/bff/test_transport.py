"""AiohttpTransport: httpx requests sent through aiohttp, answered and failing as httpcore's would."""

from __future__ import annotations

import asyncio
import gzip
import socket
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from bff.downstream import Call, ServiceClient
from bff.downstream.transport import AiohttpTransport, BodyTooLarge
from bff.errors import DownstreamError
from bff.settings import ServiceSettings

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


BOMB: bytes = gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9)
"""About 50 KB that inflate to 50 MB of valid JSON."""


async def _bomb(request: web.Request) -> web.Response:
    return web.Response(body=BOMB, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"[" + b"1," * 1_000_000 + b"1]", content_type="application/json")


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
    app.router.add_get("/bomb", _bomb)
    app.router.add_get("/big", _big)
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


@pytest.fixture
async def raw_server() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """A server on 127.0.0.1 writing, for every request, the bytes its ``answers`` map holds for
    the path (without the leading ``/``); the test fills the map."""
    answers: dict[str, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        while await reader.readline() not in (b"\r\n", b""):
            pass
        writer.write(answers[request_line.split()[1].decode().lstrip("/")])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", answers


def _answer(head: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\n{}"


async def test_long_and_many_headers_are_read_as_httpcore_read_them(
    raw_server: tuple[str, dict[str, bytes]],
) -> None:
    """A 20 KB header, a 20 KB reason phrase or 200 headers (all within httpcore's 100 KiB head) are
    an answer, not a protocol error (aiohttp's defaults stop at 8,190 bytes a line, 128 headers)."""
    base, answers = raw_server
    answers["long"] = _answer(b"Set-Cookie: " + b"a" * 20_000 + b"\r\n")
    answers["many"] = _answer(b"".join(b"X-H%d: v\r\n" % i for i in range(200)))
    answers["reason"] = b"HTTP/1.1 200 " + b"O" * 20_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    for path in answers:
        for transport in (httpx.AsyncHTTPTransport(), AiohttpTransport(limits=LIMITS)):
            async with httpx.AsyncClient(base_url=base, transport=transport) as client:
                response = await client.get(f"/{path}")
            assert (response.status_code, response.content) == (200, b"{}"), (path, transport)


async def test_a_head_that_is_not_http_is_a_protocol_error(raw_server: tuple[str, dict[str, bytes]]) -> None:
    """Garbage for a status line: httpx.RemoteProtocolError (DOWNSTREAM_UNAVAILABLE), as httpcore's."""
    base, answers = raw_server
    answers["garbage"] = b"NOT HTTP AT ALL\r\n\r\n"
    async with _client(base) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/garbage")


async def test_an_answer_over_the_bound_is_not_read_to_its_end(server: str) -> None:
    """The transport stops reading a body longer than ``max_body_bytes``, declared or not."""
    transport = AiohttpTransport(limits=LIMITS, max_body_bytes=100_000)
    async with httpx.AsyncClient(base_url=server, transport=transport) as client:
        with pytest.raises(BodyTooLarge):
            await client.get("/big")
        assert (await client.get("/echo")).status_code == 200


@pytest.mark.parametrize("path", ["/bomb", "/big"])
async def test_a_service_answer_over_max_response_bytes_is_a_downstream_error(server: str, path: str) -> None:
    """A gzip bomb (50 KB inflating to 50 MB) or a plain 2 MB body, against a 1 MB bound: one
    DOWNSTREAM_ERROR, not retried, and the bomb is never inflated whole."""
    settings = ServiceSettings.model_validate({"url": server, "max_response_bytes": 1_000_000})
    client = ServiceClient("catalog", settings)
    tracemalloc.start()
    try:
        with pytest.raises(DownstreamError) as caught:
            await client.get(path, call=Call("r"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.aclose()
    assert type(caught.value) is DownstreamError
    assert caught.value.extensions["code"] == "DOWNSTREAM_ERROR"
    assert "over 1000000 bytes" in caught.value.message
    assert peak < 20_000_000, peak
