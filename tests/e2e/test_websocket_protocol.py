"""The WebSocket protocols against hostile clients, over real sockets: malformed frames, repeated
``connection_init``, tokens that expire while the connection is open, and documents that do not parse
(on Server-Sent Events too)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bff.events import EVENT_BUS
from bff_chinook.resolvers.topics import PLAYLIST_UPDATED
from tests.e2e.live import WAIT_S, wait_until
from tests.e2e.stack import Stack, run_bff
from tests.support.tokens import SECRET, customer, employee, token

TRANSPORT_WS, LEGACY_WS = "graphql-transport-ws", "graphql-ws"
PROTOCOLS = [TRANSPORT_WS, LEGACY_WS]


@pytest.fixture(scope="module")
async def stack(demo_services: dict[str, str]) -> AsyncIterator[Stack]:
    """A BFF of these tests alone, taking HS256 tokens with no clock-skew leeway."""
    async with run_bff(
        "websockets", demo_services, BFF_JWT_HS256_SECRET=SECRET, BFF_JWT_LEEWAY_MS="0"
    ) as bff:
        yield bff


def ws_url(stack: Stack) -> str:
    """The BFF's GraphQL endpoint as a ``ws://`` URL."""
    return stack.graphql_url.replace("http://", "ws://", 1)


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next message that is not a legacy keep-alive (``ka``)."""
    while True:
        message = await ws.receive(timeout=WAIT_S)
        if message.type is not aiohttp.WSMsgType.TEXT or json.loads(message.data).get("type") != "ka":
            return message


async def connect(
    session: aiohttp.ClientSession,
    stack: Stack,
    protocol: str,
    payload: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientWebSocketResponse:
    """A raw WebSocket (upgraded with ``headers``) that has sent ``connection_init`` with ``payload``
    and got its ack."""
    ws = await session.ws_connect(ws_url(stack), protocols=[protocol], headers=headers)
    await ws.send_json({"type": "connection_init", "payload": payload or {}})
    ack = await next_message(ws)
    assert json.loads(ack.data)["type"] == "connection_ack", ack
    return ws


def server_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records at ERROR or above, and any record carrying a traceback, as formatted."""
    formatter = logging.Formatter()
    return [
        formatter.format(record)
        for record in caplog.records
        if record.levelno >= logging.ERROR or record.exc_info or "Traceback" in record.getMessage()
    ]


SUBSCRIBE = {"query": 'subscription { playlistUpdated(playlistId: "1") { change } }'}
MALFORMED_FRAMES: list[tuple[str, str | bytes]] = [
    ("list", "[1,2]"),
    ("string", '"hello"'),
    ("null", "null"),
    ("number", "42"),
    ("not-json", "{not json"),
    ("deeply-nested", "[" * 90_000),
    ("binary", b"\x00\x01"),
    ("no-type", json.dumps({"id": "1"})),
    ("type-not-a-string", json.dumps({"type": 5})),
    ("type-too-long", json.dumps({"type": "x" * 500})),  # a close reason has at most 123 bytes
    ("type-emoji", json.dumps({"type": "\U0001f600" * 50})),
    ("subscribe-payload-null", json.dumps({"type": "subscribe", "id": "1", "payload": None})),
    ("subscribe-id-int", json.dumps({"type": "subscribe", "id": 1, "payload": SUBSCRIBE})),
    ("subscribe-no-id", json.dumps({"type": "subscribe", "payload": SUBSCRIBE})),
    ("subscribe-query-int", json.dumps({"type": "subscribe", "id": "1", "payload": {"query": 5}})),
    ("subscribe-query-empty", json.dumps({"type": "subscribe", "id": "1", "payload": {"query": ""}})),
    (
        "subscribe-variables-list",
        json.dumps({"type": "subscribe", "id": "1", "payload": {**SUBSCRIBE, "variables": [1]}}),
    ),
    (
        "subscribe-operation-name-int",
        json.dumps({"type": "subscribe", "id": "1", "payload": {**SUBSCRIBE, "operationName": 3}}),
    ),
    ("complete-no-id", json.dumps({"type": "complete"})),
    ("start-payload-null", json.dumps({"type": "start", "id": "1", "payload": None})),
    ("start-no-id", json.dumps({"type": "start", "payload": SUBSCRIBE})),
    ("start-query-int", json.dumps({"type": "start", "id": "1", "payload": {"query": 5}})),
    ("start-query-empty", json.dumps({"type": "start", "id": "1", "payload": {"query": ""}})),
    ("stop-no-id", json.dumps({"type": "stop"})),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("name", "frame"), MALFORMED_FRAMES, ids=[name for name, _ in MALFORMED_FRAMES])
async def test_malformed_frames_close_the_connection_without_a_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture, protocol: str, name: str, frame: str | bytes
) -> None:
    """A frame that is not a well-formed message of the protocol closes graphql-transport-ws with 4400,
    and gets an ``error`` then a 4400 close on graphql-ws; the server logs no error and no traceback."""
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, stack, protocol)
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        message = await next_message(ws)
        if protocol == LEGACY_WS:
            assert message.type is aiohttp.WSMsgType.TEXT, message
            error = json.loads(message.data)
            assert error["type"] == "error"
            assert error["payload"]["message"]
            assert error["payload"]["extensions"] == {"code": "BAD_REQUEST"}
            message = await next_message(ws)
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        assert message.data == 4400
        assert message.extra
        await ws.close()
        good = await connect(session, stack, protocol)  # the server keeps accepting connections
        await good.close()
    assert server_problems(caplog) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_unknown_operation_name_is_the_clients_error(
    stack: Stack, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """An operationName the document does not define closes graphql-transport-ws with 4400 naming it,
    and is a BAD_REQUEST error on graphql-ws; it is logged at INFO without the name, never as a bug."""
    caplog.set_level(logging.INFO)
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    payload = {**SUBSCRIBE, "operationName": "NoSuchOperation"}
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, stack, protocol)
        await ws.send_json({"type": kind, "id": "1", "payload": payload})
        message = await next_message(ws)
        if protocol == TRANSPORT_WS:
            assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 4400)
            assert message.extra == 'Unknown operation named "NoSuchOperation".'
        else:
            error = json.loads(message.data)
            assert (error["type"], error["id"]) == ("error", "1")
            assert error["payload"]["extensions"] == {"code": "BAD_REQUEST"}
            assert "NoSuchOperation" in error["payload"]["message"]
        await ws.close()
    assert server_problems(caplog) == []
    assert not [record for record in caplog.records if "NoSuchOperation" in record.getMessage()]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_second_connection_init_is_refused(stack: Stack, protocol: str) -> None:
    """A second connection_init (here, to swap a customer for an employee) closes the connection with
    4429 before its payload is looked at; graphql-ws gets a connection_error first."""
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, stack, protocol, {"Authorization": customer("21")})
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": employee()}})
        message = await next_message(ws)
        if protocol == LEGACY_WS:
            refusal = json.loads(message.data)
            assert refusal["type"] == "connection_error"
            assert refusal["payload"]["extensions"] == {"code": "BAD_REQUEST"}
            message = await next_message(ws)
        assert (message.type, message.data, message.extra) == (
            aiohttp.WSMsgType.CLOSE,
            4429,
            "Too many initialisation requests",
        )
        await ws.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sent_in", ["connection_init", "upgrade"])
async def test_connection_closes_when_its_token_expires(
    stack: Stack, caplog: pytest.LogCaptureFixture, protocol: str, sent_in: str
) -> None:
    """A connection whose token expires 2 s after issue runs its subscription until then and is closed
    when it expires: 4403 on graphql-transport-ws, connection_error (UNAUTHENTICATED) first on graphql-ws."""
    caplog.set_level(logging.INFO)
    expires = int(time.time()) + 2
    authorization = f"Bearer {token(sub='customer-21', customer_id='21', exp=expires)}"
    payload = {"Authorization": authorization} if sent_in == "connection_init" else None
    headers = {"Authorization": authorization} if sent_in == "upgrade" else None
    assert stack.app is not None
    bus = stack.app[EVENT_BUS]
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, stack, protocol, payload, headers)
        await ws.send_json({"type": kind, "id": "1", "payload": SUBSCRIBE})
        await wait_until(lambda: bus.subscriber_count(PLAYLIST_UPDATED) == 1)
        message = await next_message(ws)
        closed_at = time.time()
        if protocol == LEGACY_WS:
            refusal = json.loads(message.data)
            assert refusal["type"] == "connection_error"
            assert refusal["payload"]["extensions"] == {"code": "UNAUTHENTICATED"}
            message = await next_message(ws)
        assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, 4403, "Token expired")
        await ws.close()
    assert expires - 0.1 <= closed_at <= expires + 2
    await wait_until(lambda: bus.subscriber_count(PLAYLIST_UPDATED) == 0)
    assert server_problems(caplog) == []


async def test_event_stream_ends_when_its_token_expires(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A Server-Sent Events subscription whose token expires 2 s after issue streams until then, then
    ends with one UNAUTHENTICATED error and ``complete``; its bus subscription ends with it."""
    caplog.set_level(logging.INFO)
    expires = int(time.time()) + 2
    headers = {
        "Accept": "text/event-stream",
        "Authorization": f"Bearer {token(sub='customer-21', customer_id='21', exp=expires)}",
    }
    assert stack.app is not None
    bus = stack.app[EVENT_BUS]
    events: list[tuple[str, str]] = []
    async with (
        asyncio.timeout(WAIT_S + 2),
        stack.http.stream("POST", stack.graphql_url, json=SUBSCRIBE, headers=headers) as response,
    ):
        assert response.status_code == 200
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data:"):
                events.append((event, line.removeprefix("data:").strip()))
    ended_at = time.time()
    assert [name for name, _ in events] == ["next", "complete"]
    assert json.loads(events[0][1]) == {
        "errors": [
            {"message": "The token has expired; sign in again.", "extensions": {"code": "UNAUTHENTICATED"}}
        ]
    }
    assert expires - 0.1 <= ended_at <= expires + 2
    await wait_until(lambda: bus.subscriber_count(PLAYLIST_UPDATED) == 0)
    assert server_problems(caplog) == []


PARSE_FAILURES = [
    ("subscription {", None),
    ("subscription { " + "a " * 6_000 + "}", "TOO_MANY_TOKENS"),
    ("subscription " + "{ a " * 1_500 + "}" * 1_500, None),  # graphql-core: "nested too deeply"
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("query", "code"), PARSE_FAILURES, ids=["syntax", "tokens", "nesting"])
async def test_documents_that_do_not_parse_are_errors_not_tracebacks(
    stack: Stack, caplog: pytest.LogCaptureFixture, protocol: str, query: str, code: str | None
) -> None:
    """A document that does not parse, or is over the token or nesting limit, gets its error (a 4400
    close for a syntax error on graphql-transport-ws, as Strawberry does) and logs no traceback."""
    caplog.set_level(logging.INFO)
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, stack, protocol)
        await ws.send_json({"type": kind, "id": "1", "payload": {"query": query}})
        message = await next_message(ws)
        if protocol == TRANSPORT_WS and code is None:
            assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 4400)
            assert message.extra.startswith("Syntax Error")
        else:
            answer = json.loads(message.data)
            assert (answer["type"], answer["id"]) == ("error", "1")
            [error] = answer["payload"] if protocol == TRANSPORT_WS else [answer["payload"]]
            assert error["message"]
            assert code is None or error["extensions"]["code"] == code
        await ws.close()
    assert server_problems(caplog) == []


@pytest.mark.parametrize(("query", "code"), PARSE_FAILURES, ids=["syntax", "tokens", "nesting"])
async def test_documents_that_do_not_parse_are_errors_over_sse(
    stack: Stack, caplog: pytest.LogCaptureFixture, query: str, code: str | None
) -> None:
    """Over Server-Sent Events the same documents get one ``next`` event with the error, then
    ``complete``, and no traceback is logged."""
    caplog.set_level(logging.INFO)
    headers = {"Accept": "text/event-stream"}
    async with stack.http.stream("POST", stack.graphql_url, json={"query": query}, headers=headers) as sse:
        assert sse.status_code == 200
        lines = [line async for line in sse.aiter_lines() if line]
    assert lines[0] == "event: next"
    [error] = json.loads(lines[1].removeprefix("data: "))["errors"]
    assert code is None or error["extensions"]["code"] == code
    assert lines[2] == "event: complete"
    assert server_problems(caplog) == []
