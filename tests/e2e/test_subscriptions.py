"""Subscriptions over real sockets: the gql client on both WebSocket protocols, SSE, and the limits."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from bff.events import Event
from bff.subscriptions import SLOW_SUBSCRIBER_CLOSE_CODE
from bff_chinook.resolvers.topics import CHARGE_SUCCEEDED, INVOICE_CREATED, PLAYLIST_UPDATED
from tests.e2e.live import WAIT_S, Live, run_live, take
from tests.support.tools import missing

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]
"""graphql-transport-ws (the current protocol) and graphql-ws (the legacy one, Apollo's)."""

PURCHASE = """
mutation ($customerId: ID!, $trackIds: [ID!]!, $key: String!) {
  purchaseTracks(input: {customerId: $customerId, trackIds: $trackIds, idempotencyKey: $key}) {
    invoice { id total }
    userErrors { code }
  }
}
"""


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    """A BFF with its own demo services (the tests here write playlists and invoices)."""
    async with run_live("subscriptions", BFF_MAX_SUBSCRIPTIONS_PER_CONNECTION="3") as running:
        yield running


def gql_client(live: Live, protocol: str) -> Client:
    """The gql client over its websockets transport, speaking ``protocol``."""
    transport = WebsocketsTransport(url=live.ws_url, subprotocols=[protocol], close_timeout=2)
    return Client(transport=transport, fetch_schema_from_transport=False)


async def purchase(live: Live, customer_id: str, track_id: str) -> str:
    """Buy one track for a customer through the BFF; returns the invoice id."""
    data = await live.mutate(
        PURCHASE, {"customerId": customer_id, "trackIds": [track_id], "key": uuid.uuid4().hex}
    )
    invoice_id: str = data["purchaseTracks"]["invoice"]["id"]
    return invoice_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_gql_client_receives_only_its_customers_invoices(live: Live, protocol: str) -> None:
    """The gql client subscribed to invoiceCreated(customerId) gets that customer's purchases only."""
    request = GraphQLRequest(
        "subscription ($id: ID) { invoiceCreated(customerId: $id) { id total customer { id firstName } } }",
        variable_values={"id": "5"},
    )
    async with gql_client(live, protocol) as session:
        before = live.bus.subscriber_count(INVOICE_CREATED)
        stream = session.subscribe(request)
        first = asyncio.ensure_future(take(stream, 1))
        await live.wait_for_subscribers(INVOICE_CREATED, before + 1)
        await purchase(live, "6", "1")
        invoice_id = await purchase(live, "5", "2")
        [result] = await first
    assert result["invoiceCreated"]["id"] == invoice_id
    assert result["invoiceCreated"]["total"] == "0.99"
    assert result["invoiceCreated"]["customer"] == {"id": "5", "firstName": "František"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_each_event_reads_fresh_data(live: Live, protocol: str) -> None:
    """Every playlistUpdated event resolves its playlist's tracks anew: the second shows both tracks."""
    created = await live.mutate('mutation { createPlaylist(input: {name: "Live"}) { playlist { id } } }')
    playlist_id = created["createPlaylist"]["playlist"]["id"]
    request = GraphQLRequest(
        "subscription ($id: ID!) { playlistUpdated(playlistId: $id) "
        "{ change trackId playlist { name tracks { id } } } }",
        variable_values={"id": playlist_id},
    )
    add = """mutation ($p: ID!, $t: ID!) {
      addTrackToPlaylist(input: {playlistId: $p, trackId: $t}) { userErrors { code } }
    }"""
    async with gql_client(live, protocol) as session:
        before = live.bus.subscriber_count(PLAYLIST_UPDATED)
        events = asyncio.ensure_future(take(session.subscribe(request), 3))
        await live.wait_for_subscribers(PLAYLIST_UPDATED, before + 1)
        for track_id in ("3", "4"):
            assert (await live.mutate(add, {"p": playlist_id, "t": track_id}))["addTrackToPlaylist"][
                "userErrors"
            ] == []
        remove = add.replace("addTrackToPlaylist", "removeTrackFromPlaylist")
        assert (await live.mutate(remove, {"p": playlist_id, "t": "3"}))["removeTrackFromPlaylist"][
            "userErrors"
        ] == []
        first, second, third = [result["playlistUpdated"] for result in await events]
    assert first == {
        "change": "TRACK_ADDED",
        "trackId": "3",
        "playlist": {"name": "Live", "tracks": [{"id": "3"}]},
    }
    assert second["playlist"]["tracks"] == [{"id": "3"}, {"id": "4"}]
    assert third == {
        "change": "TRACK_REMOVED",
        "trackId": "3",
        "playlist": {"name": "Live", "tracks": [{"id": "4"}]},
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_subscription_limit_per_connection(live: Live, protocol: str) -> None:
    """A connection may run BFF_MAX_SUBSCRIPTIONS_PER_CONNECTION (3) subscriptions; the 4th is refused."""
    request = GraphQLRequest("subscription { paymentUpdated { id } }")
    async with gql_client(live, protocol) as session:
        before = live.bus.subscriber_count(CHARGE_SUCCEEDED)
        running = [asyncio.ensure_future(take(session.subscribe(request), 1)) for _ in range(3)]
        await live.wait_for_subscribers(CHARGE_SUCCEEDED, before + 3)
        with pytest.raises(TransportQueryError, match="Subscription limit reached"):
            await take(session.subscribe(request), 1)
        charge = {"id": 99, "invoiceId": 1, "amount": 1.98, "currency": "USD", "status": "SUCCEEDED"}
        await live.bus.publish(Event(CHARGE_SUCCEEDED, {"charge": charge}))
        results = await asyncio.gather(*running)
    assert results == [[{"paymentUpdated": {"id": "99"}}]] * 3


async def test_bad_argument_is_a_coded_error(live: Live) -> None:
    """playlistUpdated with an id that cannot exist fails with BAD_USER_INPUT, not a crash."""
    request = GraphQLRequest('subscription { playlistUpdated(playlistId: "../1") { change } }')
    async with gql_client(live, PROTOCOLS[0]) as session:
        with pytest.raises(TransportQueryError) as caught:
            await take(session.subscribe(request), 1)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_queries_over_websockets(live: Live, protocol: str) -> None:
    """A query runs over graphql-transport-ws; legacy graphql-ws refuses it with OPERATION_NOT_SUPPORTED."""
    request = GraphQLRequest('{ genre: track(id: "1") { genre { name } } }')
    async with gql_client(live, protocol) as session:
        if protocol == WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL:
            assert await session.execute(request) == {"genre": {"genre": {"name": "Rock"}}}
            return
        with pytest.raises(TransportQueryError) as caught:
            await session.execute(request)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["extensions"] == {"code": "OPERATION_NOT_SUPPORTED"}


async def raw_ws(live: Live, protocol: str, **headers: str) -> aiohttp.ClientWebSocketResponse:
    """A raw WebSocket to the BFF (to test what no well-behaved client does)."""
    session = aiohttp.ClientSession()
    try:
        return await session.ws_connect(live.ws_url, protocols=[protocol], headers=headers)
    except BaseException:
        await session.close()
        raise


async def close_raw(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close a raw WebSocket and its session."""
    await ws.close()
    await ws._session.close()  # type: ignore[attr-defined]


async def test_connection_init_timeout() -> None:
    """A client that never sends connection_init is closed with 4408 after the configured timeout."""
    async with run_live("init-timeout", BFF_WS_CONNECTION_INIT_TIMEOUT_MS="200") as live:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(live.ws_url, protocols=["graphql-transport-ws"]) as ws,
        ):
            message = await ws.receive(timeout=WAIT_S)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 4408


async def test_legacy_protocol_keep_alive() -> None:
    """The legacy graphql-ws protocol sends keep-alive (ka) messages at the configured interval."""
    async with (
        run_live("keep-alive", BFF_WS_KEEP_ALIVE_INTERVAL_MS="100") as live,
        aiohttp.ClientSession() as session,
        session.ws_connect(live.ws_url, protocols=["graphql-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {}})
        kinds = [json.loads((await ws.receive(timeout=WAIT_S)).data)["type"] for _ in range(3)]
    assert kinds == ["connection_ack", "ka", "ka"]


async def test_origins_outside_the_allowed_list_are_refused() -> None:
    """A browser page from another origin gets 403 unless BFF_CORS_ALLOWED_ORIGINS lists it."""
    async with (
        run_live("origins", BFF_CORS_ALLOWED_ORIGINS="https://app.example") as live,
        aiohttp.ClientSession() as session,
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                live.ws_url,
                protocols=["graphql-transport-ws"],
                headers={"Origin": "https://evil.example"},
            )
        assert refused.value.status == 403
        async with session.ws_connect(
            live.ws_url, protocols=["graphql-transport-ws"], headers={"Origin": "https://app.example"}
        ) as ws:
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json(timeout=WAIT_S))["type"] == "connection_ack"


async def test_slow_subscriber_is_disconnected_with_a_clear_code() -> None:
    """A subscriber more than BFF_SUBSCRIPTION_QUEUE_SIZE events behind is closed with 4413."""
    async with run_live("slow", BFF_SUBSCRIPTION_QUEUE_SIZE="4") as live:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(live.ws_url, protocols=["graphql-transport-ws"]) as ws,
        ):
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json(timeout=WAIT_S))["type"] == "connection_ack"
            subscribe = {"query": "subscription { paymentUpdated { id } }"}
            await ws.send_json({"id": "1", "type": "subscribe", "payload": subscribe})
            await live.wait_for_subscribers(CHARGE_SUCCEEDED, 1)
            charge = {"id": 1, "invoiceId": 1, "amount": 1.0, "currency": "USD", "status": "SUCCEEDED"}
            for _ in range(10):  # a burst: the subscriber cannot drain its queue in between
                await live.bus.publish(Event(CHARGE_SUCCEEDED, {"charge": charge}))
            async with asyncio.timeout(WAIT_S):
                while (message := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == SLOW_SUBSCRIBER_CLOSE_CODE
        assert "too slow" in message.extra
        assert live.bus.dropped_subscribers == 1
        assert live.bus.subscriber_count() == 0


async def test_sse_subscription(live: Live) -> None:
    """Server-Sent Events: POST with Accept text/event-stream streams `next` events as they happen."""
    query = 'subscription { invoiceCreated(customerId: "7") { id customer { id } } }'
    headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
    events: list[dict[str, Any]] = []

    async def listen() -> None:
        async with live.stack.http.stream(
            "POST", live.stack.graphql_url, json={"query": query}, headers=headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "next":
                    events.append(json.loads(line.removeprefix("data: ")))
                    return

    before = live.bus.subscriber_count(INVOICE_CREATED)
    listening = asyncio.ensure_future(listen())
    await live.wait_for_subscribers(INVOICE_CREATED, before + 1)
    invoice_id = await purchase(live, "7", "5")
    async with asyncio.timeout(WAIT_S):
        await listening
    assert events == [{"data": {"invoiceCreated": {"id": invoice_id, "customer": {"id": "7"}}}}]


ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".ci" / "node_modules"
WS_CLIENT = Path(__file__).with_name("ws_client.mjs")


def require_node_client() -> str:
    """The ``node`` binary; skips without node or the graphql-ws npm client, fails when ``CI=true``."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "graphql-ws" / "package.json").is_file():
        missing("node and the graphql-ws npm client (`npm ci --prefix .ci`)")
    if not (NODE_MODULES / "ws").is_dir():
        missing("the ws npm package (`npm ci --prefix .ci`)")
    return node


@asynccontextmanager
async def node_subscription(
    live: Live, query: str, variables: dict[str, Any] | None = None, *, count: int = 1
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ws_client.mjs (the graphql-ws npm client) subscribed to ``query``; killed on the way out."""
    node = require_node_client()
    args = [str(WS_CLIENT), str(NODE_MODULES), live.ws_url, str(count), query]
    if variables is not None:
        args.append(json.dumps(variables))
    process = await asyncio.create_subprocess_exec(
        node, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def lines_of(process: asyncio.subprocess.Process, count: int) -> list[dict[str, Any]]:
    """The next ``count`` JSON lines the node client prints (bounded in time)."""
    assert process.stdout is not None
    lines: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_S):
        while len(lines) < count:
            line = await process.stdout.readline()
            if not line:
                stderr = await process.stderr.read() if process.stderr else b""
                pytest.fail(f"ws_client.mjs ended early: {stderr.decode()[-2000:]}")
            lines.append(json.loads(line))
    return lines


async def test_graphql_ws_npm_client_receives_filtered_events(live: Live) -> None:
    """The graphql-ws npm client gets its customer's invoice, nested fields resolved, and nothing else."""
    query = "subscription ($id: ID) { invoiceCreated(customerId: $id) { id total lines { track { name } } } }"
    async with node_subscription(live, query, {"id": "12"}) as process:
        assert await lines_of(process, 1) == [{"event": "connected"}]
        before = live.bus.subscriber_count(INVOICE_CREATED)
        await live.wait_for_subscribers(INVOICE_CREATED, before + 1)
        await purchase(live, "13", "1")
        invoice_id = await purchase(live, "12", "2")
        [line] = await lines_of(process, 1)
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
    assert line == {
        "event": "next",
        "value": {
            "data": {
                "invoiceCreated": {
                    "id": invoice_id,
                    "total": "0.99",
                    "lines": [{"track": {"name": "Balls to the Wall"}}],
                }
            }
        },
    }


async def test_graphql_ws_npm_client_sees_coded_errors(live: Live) -> None:
    """A bad subscription argument reaches the graphql-ws npm client as an error with BAD_USER_INPUT."""
    query = 'subscription { playlistUpdated(playlistId: "not an id") { change } }'
    async with node_subscription(live, query) as process:
        connected, failed = await lines_of(process, 2)
        assert await asyncio.wait_for(process.wait(), WAIT_S) == 0
    assert connected == {"event": "connected"}
    assert failed["event"] == "next"  # an execution error: a result with errors, then complete
    assert failed["value"]["data"] is None
    assert failed["value"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
