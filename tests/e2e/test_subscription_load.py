"""Load: 1,000 WebSocket subscribers on one BFF process each receive every one of 100 events.

The BFF serves on a real socket of this process (``bench/subscriptions.py`` runs it as a process of
its own); the subscribers are real WebSocket clients. Events enter the way real ones do, as signed
payments webhooks, and reach every subscriber through the event bus and ``paymentUpdated`` over
graphql-transport-ws.

Before counting, "warm-up" events are published until every subscriber has received one: a
subscriber that has seen one is registered on the bus, so it must see every later event. Then 100
events are published and each subscriber must receive exactly those 100, none lost, none twice.
"""

from __future__ import annotations

import asyncio
import base64
import json
import resource
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from bff.events import EVENT_BUS
from bff_chinook.demo.payments import signed_headers
from tests.e2e.stack import run_bff

SUBSCRIBERS = 1_000
EVENTS = 100
TIME_LIMIT_S = 120.0
"""The whole test must finish within this (it takes about 25 s on 2 vCPUs here)."""
CONNECT_CONCURRENCY = 50
"""Connections opened at once (the server's listen backlog is 128)."""
WARM_UP_BASE = 1_000_000
"""Charge ids from here on are warm-up events, not counted."""
SECRET = "whsec_" + base64.b64encode(b"bff load test secret, 32 bytes!!").decode()
SUBSCRIPTION = {"query": "subscription { paymentUpdated { id status } }"}


def raise_file_limit(needed: int) -> None:
    """Raise this process's open-file limit to ``needed`` if the hard limit allows (the BFF inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        pytest.fail(f"the open-file limit is below {needed}; raise `ulimit -n`", pytrace=False)


class Subscriber:
    """One WebSocket client subscribed to paymentUpdated; counts the events it receives."""

    def __init__(self) -> None:
        self.warm = asyncio.Event()
        self.done = asyncio.Event()
        self.received: list[int] = []

    async def connect(self, session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
        """Open the socket, initialise the connection and subscribe."""
        ws = await session.ws_connect(url, protocols=["graphql-transport-ws"])
        await ws.send_json({"type": "connection_init"})
        ack = await ws.receive_json(timeout=30)
        assert ack["type"] == "connection_ack", ack
        await ws.send_json({"id": "1", "type": "subscribe", "payload": SUBSCRIPTION})
        return ws

    async def listen(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Record every event until all counted events are in, then close."""
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame["type"] != "next":
                continue
            charge_id = int(frame["payload"]["data"]["paymentUpdated"]["id"])
            if charge_id >= WARM_UP_BASE:
                self.warm.set()
                continue
            self.received.append(charge_id)
            if len(self.received) == EVENTS:
                self.done.set()
                break
        await ws.close()


class Publisher:
    """Sends signed charge.succeeded webhooks to the BFF."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
        self.signer = Webhook(SECRET)

    async def publish(self, charge_id: int) -> None:
        """One webhook for one charge; the BFF must accept it (202)."""
        charge = {"id": charge_id, "invoiceId": 1, "amount": 0.99, "currency": "USD", "status": "SUCCEEDED"}
        body = json.dumps({"type": "charge.succeeded", "data": charge})
        headers = signed_headers(self.signer, f"msg_load_{charge_id}", body, datetime.now(UTC))
        response = await self.http.post(self.url, content=body, headers=headers)
        assert response.status_code == 202, response.text


async def run_load(base_url: str) -> tuple[list[Subscriber], dict[str, float]]:
    """Connect the subscribers, warm up, publish the events; returns subscribers and phase timings (s)."""
    subscribers = [Subscriber() for _ in range(SUBSCRIBERS)]
    ws_url = base_url.replace("http://", "ws://") + "/graphql"
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    timings: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session, httpx.AsyncClient(timeout=30) as http:
        publisher = Publisher(http, base_url + "/webhooks/payments")

        async def connect(subscriber: Subscriber) -> aiohttp.ClientWebSocketResponse:
            async with gate:
                return await subscriber.connect(session, ws_url)

        started = time.monotonic()
        sockets = await asyncio.gather(*(connect(s) for s in subscribers))
        listeners = [asyncio.ensure_future(s.listen(ws)) for s, ws in zip(subscribers, sockets, strict=True)]
        try:
            timings["connect"] = time.monotonic() - started
            started = time.monotonic()
            warm_up = WARM_UP_BASE
            while not all(s.warm.is_set() for s in subscribers):
                await publisher.publish(warm_up)
                warm_up += 1
                await asyncio.sleep(0.2)
            timings["warm_up"] = time.monotonic() - started
            started = time.monotonic()
            for charge_id in range(1, EVENTS + 1):
                await publisher.publish(charge_id)
            await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in subscribers)), TIME_LIMIT_S / 2)
            timings["deliver"] = time.monotonic() - started
        finally:
            for listener in listeners:
                listener.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return subscribers, timings


async def test_thousand_subscribers_each_receive_every_event() -> None:
    """1,000 concurrent WebSocket subscribers on one BFF each receive all 100 events, in order, once."""
    raise_file_limit(SUBSCRIBERS * 2 + 500)  # both ends of every socket are in this process
    started = time.monotonic()
    async with (
        asyncio.timeout(TIME_LIMIT_S),
        run_bff("load", {}, BFF_WEBHOOK_SECRETS=SECRET, BFF_MAX_REQUESTS_PER_CLIENT="2000") as stack,
    ):
        subscribers, timings = await run_load(stack.graphql_url.removesuffix("/graphql"))
        assert stack.app is not None
        assert stack.app[EVENT_BUS].subscriber_count() == 0, "every subscription ended with its socket"
    elapsed = time.monotonic() - started
    expected = list(range(1, EVENTS + 1))
    incomplete = [s.received for s in subscribers if s.received != expected]
    assert incomplete == [], f"{len(incomplete)} subscribers missed or repeated events"
    summary: dict[str, Any] = {name: round(seconds, 2) for name, seconds in timings.items()}
    print(f"\n{SUBSCRIBERS} subscribers x {EVENTS} events in {elapsed:.1f} s: {summary}")
