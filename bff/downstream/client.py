"""``ServiceClient``: one pooled ``httpx.AsyncClient`` per downstream REST service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bff.downstream.call import Call
from bff.downstream.errors import map_status, map_transport_error
from bff.errors import DownstreamError
from bff.settings import ServiceSettings

REQUEST_ID_HEADER = "X-Request-Id"
"""Header that carries the BFF's request id to every downstream call, for log correlation."""

Params = Sequence[tuple[str, str]]
"""Query parameters as ordered pairs; a key may repeat (``[("id", "1"), ("id", "2")]``)."""


@dataclass(frozen=True, slots=True)
class JSONResponse:
    """A successful downstream answer: HTTP status, headers and the parsed JSON body."""

    status: int
    headers: httpx.Headers
    body: Any


class ServiceClient:
    """Calls one downstream service; JSON in and out, errors mapped to :mod:`bff.errors`.

    ``transport`` replaces the network (``httpx.MockTransport`` in unit tests). The client owns
    its connection pool: call :meth:`aclose` once (the app's cleanup context does).
    """

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.base_url = settings.base_url
        read_s = settings.read_timeout_ms / 1000
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_s, connect=settings.connect_timeout_ms / 1000),
            limits=httpx.Limits(
                max_connections=settings.pool_size, max_keepalive_connections=settings.pool_size
            ),
            headers={"Accept": "application/json"},
            transport=transport,
        )

    def url_length(self, path: str, params: Params) -> int:
        """Length in bytes of the full URL a GET of ``path`` with ``params`` would use."""
        query = urlencode(list(params))
        return len(self.base_url.encode()) + len(path.encode()) + (1 + len(query) if query else 0)

    async def request(
        self,
        method: str,
        path: str,
        *,
        call: Call,
        params: Params | None = None,
        json_body: Any = None,
    ) -> JSONResponse:
        """Send one request and return the parsed JSON answer.

        ``path`` is relative to the service URL (``/tracks``); ``call`` says which operation the
        request is made for (request id and forwarded headers). Raises a
        :class:`~bff.errors.DownstreamError` subclass: ``NOT_FOUND`` (404), ``RATE_LIMITED`` (429),
        ``DOWNSTREAM_UNAVAILABLE`` (502/503/504, refused or reset), ``DOWNSTREAM_TIMEOUT``,
        ``DOWNSTREAM_ERROR`` (any other error status or a body that is not JSON).
        """
        try:
            response = await self._http.request(
                method,
                path,
                params=list(params) if params else None,
                json=json_body,
                headers=[*call.headers, (REQUEST_ID_HEADER, call.request_id)],
            )
        except httpx.TransportError as exc:
            raise map_transport_error(self.name, exc) from exc
        error = map_status(self.name, response)
        if error is not None:
            raise error
        try:
            body = response.json() if response.content else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DownstreamError(
                f"{self.name} service answered {method} {path} with a body that is not JSON",
                service=self.name,
                status=response.status_code,
            ) from exc
        return JSONResponse(response.status_code, response.headers, body)

    async def get(self, path: str, *, call: Call, params: Params | None = None) -> JSONResponse:
        """``GET path``; see :meth:`request`."""
        return await self.request("GET", path, call=call, params=params)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
