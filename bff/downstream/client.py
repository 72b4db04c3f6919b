"""``ServiceClient``: one pooled ``httpx.AsyncClient`` per downstream REST service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from bff import json_codec
from bff.cache import EntityCache
from bff.contract import contract_violations_counter
from bff.downstream.breaker import CircuitBreaker
from bff.downstream.bulkhead import Bulkhead
from bff.downstream.caching import CacheStage
from bff.downstream.call import Call
from bff.downstream.errors import map_status, map_transport_error
from bff.downstream.freshness import UNCACHED_READ
from bff.downstream.inflight import InFlight
from bff.downstream.response import JSONResponse, Params
from bff.downstream.retry import with_retries
from bff.downstream.transport import AiohttpTransport, BodyTooLarge, read_bounded
from bff.downstream.urls import absolute_url, query_string
from bff.errors import BadUserInput, DownstreamError, DownstreamTimeout
from bff.settings import ServiceSettings
from bff.telemetry.downstream import ServiceTelemetry

REQUEST_ID_HEADER = "X-Request-Id"
"""Header that carries the BFF's request id to every downstream call, for log correlation."""

WAITER_GRACE_S = 0.05
"""How much later than a request's deadline the callers sharing it stop waiting (seconds)."""


class ServiceClient:
    """Calls one downstream service; JSON in and out, errors mapped to :mod:`bff.errors`.

    Owns the service's connection pool, circuit breaker, bulkhead and in-flight table, all shared
    by every operation of the app; ``cache`` is the app's entity cache (``None``: GETs are never
    cached). Requests go through aiohttp's pool (:class:`~bff.downstream.transport.AiohttpTransport`);
    ``transport`` replaces the network (``httpx.MockTransport`` in unit tests). ``telemetry``
    records each stage (:mod:`bff.telemetry.downstream`; ``None``: nothing is recorded). Call
    :meth:`aclose` once (the app's cleanup context does).
    """

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        cache: EntityCache | None = None,
        telemetry: ServiceTelemetry | None = None,
    ) -> None:
        self.name = name
        self._telemetry = telemetry
        self.settings = settings
        self.base_url = settings.base_url
        read_s = settings.read_timeout_ms / 1000
        limits = httpx.Limits(
            max_connections=settings.pool_size, max_keepalive_connections=settings.pool_size
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_s, connect=settings.connect_timeout_ms / 1000),
            limits=limits,
            headers={"Accept": "application/json"},
            # One client serves every user: a cookie one user's call got must not ride on another's.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            transport=transport
            if transport is not None
            else AiohttpTransport(limits=limits, max_body_bytes=settings.max_response_bytes),
        )
        self._inflight: InFlight[JSONResponse] = InFlight(on_shared=telemetry.shared if telemetry else None)
        self._bulkhead = Bulkhead(
            name, max_concurrency=settings.max_concurrency, max_queue=settings.max_queue, observer=telemetry
        )
        self._breaker = CircuitBreaker(
            name,
            threshold=settings.breaker_threshold,
            recovery_s=settings.breaker_recovery_ms / 1000,
            on_change=telemetry.breaker_changed if telemetry else None,
        )
        self._cache = CacheStage(name, settings, cache, telemetry=telemetry) if cache is not None else None
        self.contract_violations = contract_violations_counter()
        """Records of this service that broke their resource's declaration (:mod:`bff.contract`)."""

    def url_length(self, path: str, params: Params) -> int:
        """Length in bytes of the full URL a GET of ``path`` with ``params`` would use."""
        query = query_string(params)
        return len(self.base_url.encode()) + len(path.encode()) + (1 + len(query) if query else 0)

    async def request(
        self,
        method: str,
        path: str,
        *,
        call: Call,
        params: Params | None = None,
        json_body: Any = None,
        retry: bool = True,
    ) -> JSONResponse:
        """Send one request through the resilience pipeline and return the parsed JSON answer.

        ``path`` is relative to the service URL (``/tracks``); ``call`` says which operation the
        request is made for (request id, forwarded headers, deadline); ``retry=False`` makes one
        attempt even for an idempotent method (the caller has a fallback). The pipeline, outermost
        first: in-flight de-duplication (GET only) -> bulkhead -> circuit breaker -> retries
        (idempotent methods only) -> deadline -> httpx. Raises a
        :class:`~bff.errors.DownstreamError` subclass: ``NOT_FOUND`` (404), ``RATE_LIMITED`` (429),
        ``DOWNSTREAM_UNAVAILABLE`` (502/503/504, refused, reset, bulkhead full),
        ``DOWNSTREAM_TIMEOUT`` (timeouts and the operation deadline), ``CIRCUIT_OPEN``,
        ``DOWNSTREAM_ERROR`` (any other error status or a body that is not JSON).

        The answer goes around the entity cache, so the operation's result may not be cached whole
        (:mod:`bff.downstream.freshness`).
        """
        call.freshness.spoil(UNCACHED_READ)
        return await self._request(method, path, call, params, json_body, retry)

    async def _request(
        self, method: str, path: str, call: Call, params: Params | None, json_body: Any, retry: bool
    ) -> JSONResponse:
        """:meth:`request`, for the cache stage too (which notes the freshness itself)."""
        pairs = tuple(params) if params else ()

        def attempt() -> Awaitable[JSONResponse]:
            return self._send(method, path, call, pairs, json_body)

        telemetry = self._telemetry
        on_retry = (lambda: telemetry.retried(method)) if telemetry is not None else None

        def guarded() -> Awaitable[JSONResponse]:
            return self._bulkhead.call(
                lambda: self._breaker.call(
                    lambda: with_retries(
                        method, self.settings, call.deadline, attempt, enabled=retry, on_retry=on_retry
                    )
                )
            )

        # The waiters' bound is a little later than the request's own: the request then ends by its
        # deadline and closes its connection, instead of being cancelled twice mid-cleanup, which
        # leaves httpcore's connection open and marked active.
        async with self._deadline(call, grace_s=WAITER_GRACE_S):
            if method == "GET":
                return await self._inflight.run((path, pairs, call.headers, retry), guarded)
            return await guarded()

    @asynccontextmanager
    async def _deadline(self, call: Call, *, grace_s: float = 0.0) -> AsyncIterator[None]:
        """Bound the block by the operation deadline (plus ``grace_s``); past it, ``DOWNSTREAM_TIMEOUT``."""
        if call.deadline is None:
            yield
            return
        if call.deadline <= asyncio.get_running_loop().time():
            raise DownstreamTimeout(
                f"{self.name} service not called: the operation deadline has passed", service=self.name
            )
        try:
            async with asyncio.timeout_at(call.deadline + grace_s):
                yield
        except TimeoutError:
            raise DownstreamTimeout(
                f"{self.name} service did not answer before the operation deadline", service=self.name
            ) from None

    async def _send(self, method: str, path: str, call: Call, params: Params, json_body: Any) -> JSONResponse:
        """One HTTP exchange under the deadline, with failures mapped to the error tree (and recorded,
        with a ``traceparent`` sent when tracing is on)."""
        headers = [*call.headers, (REQUEST_ID_HEADER, call.request_id)]
        async with self._deadline(call):
            exchange = self._telemetry.exchange(method, path) if self._telemetry is not None else None
            if exchange is not None and exchange.traceparent is not None:
                headers.append(("traceparent", exchange.traceparent))
            try:
                request = self._http.build_request(
                    method, absolute_url(self.base_url, path, params), json=json_body, headers=headers
                )
                response = await self._http.send(request, stream=True)
                try:
                    content = await self._read(response)
                finally:
                    await response.aclose()
            except BaseException as exc:
                if exchange is not None:
                    exchange.failed(exc)
                if isinstance(exc, BodyTooLarge):
                    raise DownstreamError(
                        f"{self.name} service answered {method} {path} with a body over "
                        f"{exc.max_bytes} bytes",
                        service=self.name,
                    ) from None
                if isinstance(exc, httpx.TransportError):
                    raise map_transport_error(self.name, exc) from exc
                if isinstance(exc, httpx.DecodingError):
                    raise DownstreamError(
                        f"{self.name} service answered {method} {path} with a body its "
                        "Content-Encoding does not decode",
                        service=self.name,
                    ) from exc
                if isinstance(exc, httpx.InvalidURL):
                    # The client's input made a request that cannot be sent (a URL too long for httpx):
                    # the client's error, and nothing the service did, so the breaker does not count it.
                    raise BadUserInput(
                        f"The request to the {self.name} service cannot be built from this input; "
                        "shorten the arguments."
                    ) from None
                raise
        if exchange is not None:
            exchange.answered(response.status_code)
        error = map_status(self.name, response)
        if error is not None:
            raise error
        try:
            body = json_codec.loads(content) if content else None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise DownstreamError(
                f"{self.name} service answered {method} {path} with a body that is not JSON",
                service=self.name,
                status=response.status_code,
            ) from exc
        return JSONResponse(response.status_code, response.headers, body)

    async def _read(self, response: httpx.Response) -> bytes:
        """The answer's body, decoded (``Content-Encoding``), or :class:`BodyTooLarge` past the
        service's ``max_response_bytes``: a small gzip body may inflate to gigabytes."""
        return await read_bounded(response.aiter_bytes(), self.settings.max_response_bytes, response.request)

    async def breaker_state(self) -> str:
        """The circuit breaker's state: ``closed``, ``open`` or ``half-open``."""
        return await self._breaker.state()

    async def get(
        self,
        path: str,
        *,
        call: Call,
        params: Params | None = None,
        retry: bool = True,
        cache: bool = True,
    ) -> JSONResponse:
        """``GET path`` through the cache stage (:mod:`bff.downstream.caching`), then :meth:`request`.

        ``cache=False`` reads fresh, past the cache (what a write is about to rely on). Raises as
        :meth:`request` does, unless stale cache entries stand in for a failed answer.
        """
        pairs = tuple(params) if params else ()
        if self._cache is None or not cache:
            return await self.request("GET", path, call=call, params=pairs, retry=retry)

        def fetch(wanted: Params, may_retry: bool) -> Awaitable[JSONResponse]:
            return self._request("GET", path, call, wanted, None, retry and may_retry)

        return await self._cache.get(path, pairs, call, fetch)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
