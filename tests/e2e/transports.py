"""One GraphQL operation over each of the five transports, spoken by hand on real sockets.

Each client sends one operation and returns its first result as ``{"data": ..., "errors": [...]}``
(what the transport carried, decoded), or, for a refusal before GraphQL runs, the HTTP status or the
WebSocket close code under ``"status"`` / ``"close"``. The protocols are written out here, not taken
from a client library, so the tests see exactly what a hostile client could send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

__all__ = ["TRANSPORTS", "Operation", "codes", "run"]

TIMEOUT_S = 10.0
"""How long a client waits for a result (seconds)."""


@dataclass(frozen=True)
class Operation:
    """What a client sends: the GraphQL request parameters and extra headers."""

    query: str | None
    variables: Mapping[str, Any] | None = None
    operation_name: str | None = None
    extensions: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None

    def payload(self) -> dict[str, Any]:
        """The request's JSON parameters (absent ones left out)."""
        out: dict[str, Any] = {}
        if self.query is not None:
            out["query"] = self.query
        if self.variables is not None:
            out["variables"] = dict(self.variables)
        if self.operation_name is not None:
            out["operationName"] = self.operation_name
        if self.extensions is not None:
            out["extensions"] = dict(self.extensions)
        return out


async def _post(http: httpx.AsyncClient, url: str, op: Operation) -> dict[str, Any]:
    response = await http.post(url, json=op.payload(), headers=dict(op.headers or {}))
    return {"status": response.status_code, **response.json()}


async def _get(http: httpx.AsyncClient, url: str, op: Operation) -> dict[str, Any]:
    params = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in op.payload().items()
    }
    response = await http.get(url, params=params, headers=dict(op.headers or {}))
    return {"status": response.status_code, **response.json()}


async def _sse(http: httpx.AsyncClient, url: str, op: Operation) -> dict[str, Any]:
    headers = {"Accept": "text/event-stream", **dict(op.headers or {})}
    async with http.stream("POST", url, json=op.payload(), headers=headers) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            body = await response.aread()
            return {"status": response.status_code, **json.loads(body)}
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "next":
                return {"status": response.status_code, **json.loads(line.removeprefix("data: "))}
            elif event == "complete":
                break
    return {"status": response.status_code}


async def _ws(url: str, op: Operation, protocol: str, timeout_s: float) -> dict[str, Any]:
    legacy = protocol == "graphql-ws"
    ws_url = url.replace("http://", "ws://", 1)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url, protocols=[protocol], headers=dict(op.headers or {})) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {}})
        ack = await ws.receive(timeout=TIMEOUT_S)
        if ack.type != aiohttp.WSMsgType.TEXT:
            return {"close": ws.close_code}
        start = "start" if legacy else "subscribe"
        await ws.send_json({"id": "1", "type": start, "payload": op.payload()})
        while True:
            try:
                message = await ws.receive(timeout=timeout_s)
            except TimeoutError:
                return {"waiting": True}
            if message.type != aiohttp.WSMsgType.TEXT:
                return {"close": ws.close_code}
            data = json.loads(message.data)
            if data.get("type") in ("ka", "ping", "pong"):
                continue
            if data.get("type") in ("next", "data"):
                return dict(data["payload"])
            if data.get("type") == "error":
                errors = data["payload"]
                return {"errors": errors if isinstance(errors, list) else [errors]}
            if data.get("type") == "complete":
                return {}


async def run(transport: str, url: str, op: Operation, *, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """Send ``op`` to the GraphQL endpoint at ``url`` over ``transport`` (one of :data:`TRANSPORTS`).

    Over a WebSocket, a subscription admitted but with no event within ``timeout_s`` seconds gives
    ``{"waiting": True}`` (and is closed).
    """
    if transport in ("graphql-transport-ws", "graphql-ws"):
        return await _ws(url, op, transport, timeout_s)
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
        if transport == "post":
            return await _post(http, url, op)
        if transport == "get":
            return await _get(http, url, op)
        return await _sse(http, url, op)


TRANSPORTS = ("post", "get", "sse", "graphql-transport-ws", "graphql-ws")
"""Every transport the endpoint speaks."""


def codes(result: Mapping[str, Any]) -> list[str]:
    """The ``extensions.code`` of each error of a result."""
    return [str((error.get("extensions") or {}).get("code")) for error in result.get("errors") or ()]
