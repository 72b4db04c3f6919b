"""Subscription groups over real sockets: subscribers of one subscription share one execution per event.

Raw clients on both WebSocket protocols and Server-Sent Events against a live BFF; executions and
deliveries are read from the BFF's counters (``bff_subscription_executions_total`` and
``bff_subscription_deliveries_total``), and events are published on its bus.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest

from bff.events import Event
from bff.subscriptions import SLOW_SUBSCRIBER_CLOSE_CODE
from bff_chinook.resolvers.topics import CHARGE_SUCCEEDED
from tests.e2e.live import WAIT_S, Live, run_live, wait_until
from tests.support.tokens import SECRET, customer

ALICE, BOB = "21", "22"
"""Two customers of the Chinook data set."""
ALICES, BOBS = "16", "91"
"""An invoice of each (of the data set: no payment of theirs is under way)."""
PAYMENTS = "subscription { paymentUpdated { id invoiceId status } }"
ONE_INVOICE = "subscription ($id: ID) { paymentUpdated(invoiceId: $id) { id invoiceId } }"
QUEUE_SIZE = 8


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    """A BFF with tokens (sign-in optional) and small subscriber queues."""
    async with run_live(
        "subscription-sharing", BFF_JWT_HS256_SECRET=SECRET, BFF_SUBSCRIPTION_QUEUE_SIZE=str(QUEUE_SIZE)
    ) as running:
        yield running


@pytest.fixture(autouse=True)
async def no_group_left(live: Live) -> AsyncIterator[None]:
    """After each test, every group it started has ended, with its bus subscription."""
    yield
    await wait_until(lambda: live.groups.group_count() == 0 and live.bus.subscriber_count() == 0)


class Subscriber:
    """One subscription on a raw WebSocket (either protocol) or SSE; ``received`` collects its data."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._protocol = ""

    def _got(self, data: dict[str, Any]) -> None:
        self.received.append(data)
        self.changed.set()

    async def websocket(
        self,
        session: aiohttp.ClientSession,
        live: Live,
        protocol: str,
        query: str,
        variables: dict[str, Any] | None = None,
        authorization: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Subscriber:
        """Connect with ``protocol`` (and ``headers`` on the upgrade request), send ``authorization``
        in ``connection_init``, subscribe."""
        ws = await session.ws_connect(live.ws_url, protocols=[protocol], headers=headers)
        self._ws, self._protocol = ws, protocol
        init = {"Authorization": authorization} if authorization else {}
        await ws.send_json({"type": "connection_init", "payload": init})
        assert (await ws.receive_json(timeout=WAIT_S))["type"] == "connection_ack"
        kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
        payload = {"query": query, "variables": variables}
        await ws.send_json({"id": "1", "type": kind, "payload": payload})
        self._tasks.append(asyncio.ensure_future(self._read_ws(ws)))
        return self

    async def _read_ws(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["type"] in ("next", "data"):
                assert "errors" not in frame["payload"], frame
                self._got(frame["payload"]["data"])
        self.close_code = ws.close_code
        self.changed.set()

    async def sse(self, http: httpx.AsyncClient, live: Live, query: str) -> Subscriber:
        """Subscribe over Server-Sent Events."""
        self._tasks.append(asyncio.ensure_future(self._read_sse(http, live, query)))
        return self

    async def _read_sse(self, http: httpx.AsyncClient, live: Live, query: str) -> None:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        async with http.stream(
            "POST", live.stack.graphql_url, json={"query": query}, headers=headers
        ) as answer:
            assert answer.status_code == 200
            event = None
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "next":
                    payload = json.loads(line.removeprefix("data: "))
                    assert "errors" not in payload, payload
                    self._got(payload["data"])

    async def complete(self) -> None:
        """Stop the subscription, keeping the connection open."""
        assert self._ws is not None
        kind = "complete" if self._protocol == "graphql-transport-ws" else "stop"
        await self._ws.send_json({"id": "1", "type": kind})

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until ``count`` results arrived; returns them all."""
        async with asyncio.timeout(WAIT_S):
            while len(self.received) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.received

    async def close(self) -> None:
        """Close the connection (or the SSE request) and stop reading."""
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def publish(live: Live, charge_id: int, invoice_id: str | int = 1) -> None:
    """Publish a charge.succeeded event on the BFF's bus."""
    charge = {"id": charge_id, "invoiceId": int(invoice_id), "amount": 0.99, "status": "SUCCEEDED"}
    await live.bus.publish(Event(CHARGE_SUCCEEDED, {"charge": charge}))


async def wait_for_members(live: Live, members: int, groups: int) -> None:
    """Wait until ``members`` subscribers are in ``groups`` groups, each listening on the bus."""
    await wait_until(
        lambda: (
            live.groups.member_count() == members
            and live.groups.group_count() == groups
            and live.bus.subscriber_count(CHARGE_SUCCEEDED) == groups
        )
    )


def ids(subscriber: Subscriber) -> list[str]:
    """The charge ids a subscriber received, in order."""
    return [data["paymentUpdated"]["id"] for data in subscriber.received]


async def test_one_execution_per_event_for_every_transport(live: Live) -> None:
    """Four graphql-transport-ws, one graphql-ws and one SSE subscriber of one document form one
    group: each event is executed once and delivered six times, in order, to each."""
    executions, deliveries = live.groups.executions.value(), live.groups.deliveries.value()
    async with aiohttp.ClientSession() as session, httpx.AsyncClient(timeout=WAIT_S) as http:
        subscribers = [
            *[
                await Subscriber().websocket(session, live, "graphql-transport-ws", PAYMENTS)
                for _ in range(4)
            ],
            await Subscriber().websocket(session, live, "graphql-ws", PAYMENTS),
            await Subscriber().sse(http, live, PAYMENTS),
        ]
        await wait_for_members(live, members=6, groups=1)
        for charge_id in (1, 2, 3):
            await publish(live, charge_id)
            for subscriber in subscribers:
                await subscriber.wait_for(charge_id)
        for subscriber in subscribers:
            await subscriber.close()
        executed, delivered = live.groups.executions.value(), live.groups.deliveries.value()
        # The server learns that an SSE client left when it writes to it: one more event.
        await publish(live, 4)
        await wait_until(lambda: live.groups.group_count() == 0)
    assert [ids(subscriber) for subscriber in subscribers] == [["1", "2", "3"]] * 6
    assert subscribers[0].received[0] == {
        "paymentUpdated": {"id": "1", "invoiceId": "1", "status": "SUCCEEDED"}
    }
    assert executed - executions == 3
    assert delivered - deliveries == 18


async def test_variables_and_principals_run_apart_and_never_leak(live: Live) -> None:
    """Different variables and different principals are different groups: each subscriber receives
    exactly what it would alone, a customer only their own invoices' payments."""
    alices, bobs = ALICES, BOBS
    alice, bob = customer(ALICE), customer(BOB)
    executions, deliveries = live.groups.executions.value(), live.groups.deliveries.value()
    transport = "graphql-transport-ws"
    async with aiohttp.ClientSession() as session:
        on_alices = [
            await Subscriber().websocket(session, live, transport, ONE_INVOICE, {"id": alices})
            for _ in range(2)
        ]
        on_bobs = await Subscriber().websocket(session, live, "graphql-ws", ONE_INVOICE, {"id": bobs})
        as_alice = [
            await Subscriber().websocket(session, live, transport, PAYMENTS, authorization=alice),
            await Subscriber().websocket(session, live, "graphql-ws", PAYMENTS, authorization=alice),
        ]
        as_bob = await Subscriber().websocket(session, live, transport, PAYMENTS, authorization=bob)
        await wait_for_members(live, members=6, groups=4)
        alice_side, bob_side = [*on_alices, *as_alice], [on_bobs, as_bob]
        # In turns, each side's next event published once the previous reached it: a subscriber that
        # has the later event has had its chance at the earlier one (a group runs events in order).
        for turn, (invoice, side) in enumerate([(alices, alice_side), (bobs, bob_side)] * 2):
            await publish(live, 100 + turn, invoice)
            for subscriber in side:
                await subscriber.wait_for(turn // 2 + 1)
        for subscriber in [*alice_side, *bob_side]:
            await subscriber.close()
    assert [ids(subscriber) for subscriber in alice_side] == [["100", "102"]] * 4
    assert [ids(subscriber) for subscriber in bob_side] == [["101", "103"]] * 2
    assert {data["paymentUpdated"]["invoiceId"] for s in alice_side for data in s.received} == {alices}
    assert {data["paymentUpdated"]["invoiceId"] for s in bob_side for data in s.received} == {bobs}
    assert live.groups.executions.value() - executions == 8  # 4 events, each for 2 of the 4 groups
    assert live.groups.deliveries.value() - deliveries == 12


async def test_connection_init_credentials_group_over_the_upgrade_header(live: Live) -> None:
    """A connection upgraded with Alice's token whose ``connection_init`` carries Bob's runs as Bob:
    it shares Bob's group, receives only Bob's invoices' payments (its group runs with its own HTTP
    request, Alice's header and all), and Alice, signed in by the header alone, only hers."""
    alice, bob = customer(ALICE), customer(BOB)
    transport = "graphql-transport-ws"
    async with aiohttp.ClientSession() as session:
        switched = await Subscriber().websocket(
            session, live, transport, PAYMENTS, authorization=bob, headers={"Authorization": alice}
        )
        as_bob = await Subscriber().websocket(session, live, transport, PAYMENTS, authorization=bob)
        as_alice = await Subscriber().websocket(
            session, live, transport, PAYMENTS, headers={"Authorization": alice}
        )
        await wait_for_members(live, members=3, groups=2)
        await publish(live, 200, ALICES)
        await as_alice.wait_for(1)
        await publish(live, 201, BOBS)
        for subscriber in (switched, as_bob, as_alice):
            if subscriber is not as_alice:
                await subscriber.wait_for(1)
        await publish(live, 202, ALICES)
        await as_alice.wait_for(2)
        for subscriber in (switched, as_bob, as_alice):
            await subscriber.close()
    assert ids(switched) == ids(as_bob) == ["201"]
    assert ids(as_alice) == ["200", "202"]


async def test_a_subscriber_leaving_mid_stream_leaves_the_others_running(live: Live) -> None:
    """One subscriber completes, another disconnects: the third still receives every event, and the
    group ends with its last member."""
    async with aiohttp.ClientSession() as session:
        first, second, third = [
            await Subscriber().websocket(session, live, "graphql-transport-ws", PAYMENTS) for _ in range(3)
        ]
        await wait_for_members(live, members=3, groups=1)
        await publish(live, 1)
        for subscriber in (first, second, third):
            await subscriber.wait_for(1)
        await first.complete()
        await second.close()
        await wait_until(lambda: live.groups.member_count() == 1)
        for charge_id in (2, 3):
            await publish(live, charge_id)
        await third.wait_for(3)
        assert live.groups.group_count() == 1
        await third.close()
        await first.close()
    assert ids(first) == ["1"]
    assert ids(second) == ["1"]
    assert ids(third) == ["1", "2", "3"]


async def test_a_slow_subscriber_is_dropped_alone(live: Live) -> None:
    """A subscriber that stops reading falls behind its queue and is closed with 4413; the other
    member of its group receives every event meanwhile."""

    def small_buffers(info: Any) -> socket.socket:
        made = socket.socket(info[0], info[1], info[2])
        made.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return made

    async with (
        aiohttp.ClientSession() as session,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=small_buffers)) as stalled,
    ):
        fast = await Subscriber().websocket(session, live, "graphql-transport-ws", PAYMENTS)
        slow = await Subscriber().websocket(stalled, live, "graphql-transport-ws", PAYMENTS)
        await wait_for_members(live, members=2, groups=1)
        assert slow._ws is not None
        connection = slow._ws._response.connection  # type: ignore[attr-defined]
        connection.transport.pause_reading()  # the slow client: it stops reading its socket

        published = 0
        # The slow socket takes some 25,000 small frames to fill its buffers (mostly the server's send
        # buffer): bursts of half a queue, each waited for by the fast member.
        async with asyncio.timeout(WAIT_S * 12):
            while live.groups.member_count() == 2:
                for _ in range(QUEUE_SIZE // 2):
                    published += 1
                    await publish(live, published)
                await fast.wait_for(published)
        # Reading again at once: the server gives a stuck socket a second to take the close frame.
        connection.transport.resume_reading()
        await fast.wait_for(published)
        await publish(live, published + 1)
        await fast.wait_for(published + 1)
        async with asyncio.timeout(WAIT_S):
            while slow.close_code is None:
                slow.changed.clear()
                await slow.changed.wait()
        await fast.close()
        await slow.close()
    assert slow.close_code == SLOW_SUBSCRIBER_CLOSE_CODE
    assert ids(fast) == [str(n) for n in range(1, published + 2)]
    assert len(slow.received) < published
