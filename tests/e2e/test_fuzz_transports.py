"""Fuzzing SSE and both WebSocket protocols: hostile input never gets a 5xx, a 1011 or a traceback.

The HTTP fuzz (``test_fuzz.py``) covers POST and GET; the same generated documents, variables and
extensions go here over Server-Sent Events, graphql-transport-ws and legacy graphql-ws, mixed with
garbage frames. Every case ends with a probe operation, so the test knows the server is still
answering on that connection (or closed it with a protocol close code) without waiting on timeouts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.test_fuzz import BackgroundBFF, documents, extensions, json_values

EXAMPLES = 1_000
"""Cases per transport (the issue asks for at least 1,000)."""

ALLOWED_CLOSE_CODES = frozenset({1000, 1009, 4400, 4401, 4403, 4408, 4409, 4429})
"""Protocol close codes a hostile client may earn; 1011 (internal error) is not among them."""

PROBE = "{ probe: __typename }"


class ErrorRecords(logging.Handler):
    """Keeps every log record at ERROR or above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[BackgroundBFF, ErrorRecords]]:
    """A BFF with tight limits on its own loop, and the errors it logs meanwhile."""
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    try:
        with (
            BackgroundBFF(BFF_MAX_BODY_BYTES="20000", BFF_MAX_DEPTH="10", BFF_MAX_ALIASES="20") as bff,
            httpx.Client(timeout=10) as client,
        ):
            bff.client = client
            yield bff, handler
    finally:
        logging.getLogger().removeHandler(handler)


payloads = st.fixed_dictionaries(
    {},
    optional={
        "query": st.one_of(documents, json_values),
        "variables": st.one_of(json_values, st.dictionaries(st.sampled_from(["n", "id"]), json_values)),
        "operationName": st.one_of(st.just("Q"), json_values),
        "extensions": extensions,
    },
)

frames = st.one_of(
    st.builds(
        lambda p, i: json.dumps({"id": i, "type": "subscribe", "payload": p}), payloads, st.text(max_size=5)
    ),
    st.builds(
        lambda p, i: json.dumps({"id": i, "type": "start", "payload": p}), payloads, st.text(max_size=5)
    ),
    st.builds(json.dumps, json_values),
    st.text(max_size=200),
    st.binary(max_size=100),
    st.sampled_from(
        [
            '{"type": "connection_init"}',
            '{"type": "complete", "id": "1"}',
            '{"type": "stop", "id": "1"}',
            '{"type": "ping"}',
            '{"type": "connection_terminate"}',
            "[" * 5_000,
        ]
    ),
)

settings_ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _assert_no_internal_error(value: Any) -> None:
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(value), value


@settings_
@given(payload=payloads)
def test_sse_never_fails_inside(target: tuple[BackgroundBFF, ErrorRecords], payload: dict[str, Any]) -> None:
    """Generated SSE requests get a 4xx or a stream of GraphQL results, never a 5xx or a masked error."""
    bff, _ = target
    headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
    assert bff.client is not None
    response = bff.client.post(bff.url, content=json.dumps(payload).encode(), headers=headers)
    assert response.status_code < 500, response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line for line in response.text.splitlines() if line.startswith("data: ")]
        for event in events:
            _assert_no_internal_error(json.loads(event.removeprefix("data: ") or "null"))
    else:
        _assert_no_internal_error(response.json())


async def _ws_case(url: str, protocol: str, init: str | bytes, sent: list[str | bytes]) -> None:
    legacy = protocol == "graphql-ws"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url.replace("http://", "ws://", 1), protocols=[protocol]) as ws,
    ):
        for frame in [init, *sent]:
            if ws.closed:
                break
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        if not ws.closed:
            kind = "start" if legacy else "subscribe"
            await ws.send_str(json.dumps({"id": "probe-end", "type": kind, "payload": {"query": PROBE}}))
        while True:
            message = await ws.receive(timeout=10)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                assert ws.close_code in ALLOWED_CLOSE_CODES, ws.close_code
                return
            assert message.type == aiohttp.WSMsgType.TEXT, message
            data = json.loads(message.data)
            _assert_no_internal_error(data)
            if data.get("id") == "probe-end" and data.get("type") in ("next", "data", "error", "complete"):
                return


def _ws_fuzz(bff: BackgroundBFF, protocol: str, init: str | bytes, sent: list[str | bytes]) -> None:
    future = asyncio.run_coroutine_threadsafe(_ws_case(bff.url, protocol, init, sent), bff.loop)
    future.result(timeout=30)


inits = st.one_of(st.just('{"type": "connection_init", "payload": {}}'), frames)


@settings_
@given(init=inits, sent=st.lists(frames, max_size=3))
def test_graphql_transport_ws_never_fails_inside(
    target: tuple[BackgroundBFF, ErrorRecords], init: str | bytes, sent: list[str | bytes]
) -> None:
    """Generated graphql-transport-ws frames get results, errors or a protocol close, never a 1011."""
    _ws_fuzz(target[0], "graphql-transport-ws", init, sent)


@settings_
@given(init=inits, sent=st.lists(frames, max_size=3))
def test_graphql_ws_never_fails_inside(
    target: tuple[BackgroundBFF, ErrorRecords], init: str | bytes, sent: list[str | bytes]
) -> None:
    """Generated legacy graphql-ws frames get results, errors or a protocol close, never a 1011."""
    _ws_fuzz(target[0], "graphql-ws", init, sent)


def test_no_traceback_and_still_serving(target: tuple[BackgroundBFF, ErrorRecords]) -> None:
    """After the fuzzing no ERROR record or traceback was logged, and the server still answers."""
    bff, handler = target
    with httpx.Client(timeout=10) as client:
        assert client.get(bff.url.replace("/graphql", "/healthz")).json() == {"status": "ok"}
        assert client.post(bff.url, json={"query": PROBE}).json() == {"data": {"probe": "Query"}}
    assert [f"{r.name}: {r.getMessage()}" for r in handler.records] == []
