"""Several ``bff serve`` processes over one Redis and the demo services, and clients to drive them.

:func:`serve` starts one real ``bff serve`` child process (``tests/support/processes.py``);
:class:`Subscriber` speaks graphql-transport-ws by hand over aiohttp and keeps every ``next`` payload,
so a test can count exactly what arrived. :func:`signed_webhook` posts a payments webhook as the
demo payments service signs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
from standardwebhooks.webhooks import Webhook

from bff.settings import service_variable
from bff_chinook.demo.payments import signed_headers
from tests.support.processes import clean_env, start, stop

SECRET = "whsec_" + base64.b64encode(b"bff tests: instances over redis!").decode()
"""The webhook secret the instances and the payments service share."""
WAIT_S = 15.0


def api_key(name: str) -> tuple[str, dict[str, str]]:
    """An API key for employee ``name``: the key, and its ``BFF_API_KEYS`` entry."""
    key = f"key-{name}-{uuid.uuid4().hex}"
    return key, {hashlib.sha256(key.encode()).hexdigest(): f"employee:{name}"}


def instance_env(service_urls: Mapping[str, str], **settings: str) -> dict[str, str]:
    """The environment of a ``bff serve`` over ``service_urls``, with ``BFF_*`` ``settings``."""
    env = {f"BFF_SERVICE_{service_variable(name)}_URL": url for name, url in service_urls.items()}
    env.update(BFF_WEBHOOK_SECRETS=SECRET, BFF_LOG_LEVEL="INFO", **settings)
    return clean_env(**env)


@dataclass
class Instance:
    """One running ``bff serve``: its process and base URL."""

    name: str
    process: asyncio.subprocess.Process
    base_url: str

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def ws_url(self) -> str:
        return self.graphql_url.replace("http://", "ws://", 1)

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/webhooks/payments"

    async def post(
        self,
        query: str | None,
        variables: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """POST one operation (as API ``key``'s principal, when given); the raw response."""
        body: dict[str, Any] = {}
        if query is not None:
            body["query"] = query
        if variables is not None:
            body["variables"] = dict(variables)
        if extensions is not None:
            body["extensions"] = dict(extensions)
        headers = {"X-Api-Key": key} if key else {}
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await http.post(self.graphql_url, json=body, headers=headers)

    async def data(
        self, query: str, variables: Mapping[str, Any] | None = None, *, key: str | None = None
    ) -> Any:
        """POST one operation and return its ``data``, failing on any error."""
        response = await self.post(query, variables, key=key)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body
        return body["data"]

    async def readyz(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10.0) as http:
            result: dict[str, Any] = (await http.get(f"{self.base_url}/readyz")).json()
            return result

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@asynccontextmanager
async def serve(name: str, env: Mapping[str, str]) -> AsyncIterator[Instance]:
    """``bff serve --port 0`` with ``env``; stopped (SIGTERM, no traceback allowed) unless killed."""
    process, graphiql = await start(["serve", "--port", "0"], env)
    instance = Instance(name, process, graphiql.removesuffix("/graphql"))
    try:
        yield instance
    finally:
        if process.returncode is None:
            await stop(process)


@dataclass
class Subscriber:
    """One graphql-transport-ws connection with one subscription; every ``next`` payload is kept."""

    ws: aiohttp.ClientWebSocketResponse
    results: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def listen(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame.get("type") == "next":
                self.results.append(frame["payload"])
                self.changed.set()

    async def wait_for(
        self, condition: Callable[[list[dict[str, Any]]], bool], timeout_s: float = WAIT_S
    ) -> None:
        """Wait until ``condition(results)`` holds."""
        async with asyncio.timeout(timeout_s):
            while not condition(self.results):
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def subscribe(instance: Instance, query: str, *, key: str | None = None) -> AsyncIterator[Subscriber]:
    """Subscribe to ``query`` on ``instance`` over graphql-transport-ws (as API ``key``'s principal)."""
    payload: dict[str, Any] = {"X-Api-Key": key} if key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(instance.ws_url, protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": payload})
        ack = await ws.receive_json(timeout=WAIT_S)
        assert ack["type"] == "connection_ack", ack
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        subscriber = Subscriber(ws)
        listening = asyncio.create_task(subscriber.listen())
        try:
            yield subscriber
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


async def signed_webhook(url: str, charge_id: int, *, invoice_id: int = 1) -> httpx.Response:
    """POST a ``charge.succeeded`` webhook for ``charge_id``, signed as the payments service signs."""
    charge = {
        "id": charge_id,
        "invoiceId": invoice_id,
        "amount": 0.99,
        "currency": "USD",
        "status": "SUCCEEDED",
    }
    body = json.dumps({"type": "charge.succeeded", "data": charge})
    headers = signed_headers(Webhook(SECRET), f"msg_test_{charge_id}", body, datetime.now(UTC))
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(url, content=body, headers=headers)
