"""The GraphQL view: Strawberry's aiohttp view with our typed context and our GraphiQL page."""

from __future__ import annotations

import asyncio
import weakref
from datetime import timedelta

from aiohttp import WSCloseCode, web
from strawberry.aiohttp.views import GraphQLView as StrawberryView
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from bff.auth import principal_of
from bff.context import CACHE, SERVICES, Context
from bff.downstream import Call
from bff.endpoint import HTTPEndpoint
from bff.events import EVENT_BUS
from bff.idempotency import IDEMPOTENCY
from bff.loaders import Loaders
from bff.request_id import request_id_of
from bff.settings import Settings
from bff.stale import StaleLog


class GraphQLView(StrawberryView[Context, None]):
    """Serves ``/graphql``: POST and GET (queries only), WebSockets, and GraphiQL on ``text/html``.

    ``graphiql_html`` is the playground page (``None`` disables it).
    """

    def __init__(
        self,
        *,
        schema: BaseSchema,
        settings: Settings,
        graphiql_html: str | None,
    ) -> None:
        protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL]
        if settings.sse_subscriptions:
            protocols.append(GRAPHQL_SSE_PROTOCOL)
        super().__init__(
            schema=schema,
            graphql_ide="graphiql" if graphiql_html else None,
            subscription_protocols=protocols,
            keep_alive=True,
            keep_alive_interval=settings.ws_keep_alive_interval_ms / 1000,
            connection_init_wait_timeout=timedelta(milliseconds=settings.ws_connection_init_timeout_ms),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            allowed_origins=settings.cors_allowed_origins,
        )
        self.settings = settings
        self._graphiql_html = graphiql_html or ""
        self._websockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.endpoint = HTTPEndpoint(self, settings)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """WebSockets and streamed subscriptions go to Strawberry; plain HTTP to :class:`HTTPEndpoint`."""
        if self.is_websocket_request(request) or self._get_stream_transport_from_headers(request.headers):
            return await super().__call__(request)
        return await self.endpoint.handle(request)

    async def create_websocket_response(
        self, request: web.Request, subprotocol: str | None
    ) -> web.WebSocketResponse:
        """Accept a WebSocket and remember it, so shutdown can close it (see :meth:`close_websockets`)."""
        ws = await super().create_websocket_response(request, subprotocol)
        self._websockets.add(ws)
        return ws

    async def close_websockets(self, app: web.Application) -> None:
        """Close every open WebSocket with 1001 (going away); an ``on_shutdown`` hook."""
        going_away = WSCloseCode.GOING_AWAY
        closing = [ws.close(code=going_away, message=b"Server shutdown") for ws in self._websockets]
        await asyncio.gather(*closing, return_exceptions=True)

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:
        """Build the context of one operation, with fresh DataLoaders."""
        deadline = asyncio.get_running_loop().time() + self.settings.operation_timeout_ms / 1000
        principal = principal_of(request)
        forwarded = principal.authorization if principal is not None else None
        call = Call(
            request_id=request_id_of(request),
            headers=(("Authorization", forwarded),) if forwarded else (),
            deadline=deadline,
        )
        cache = request.app[CACHE]
        return Context(
            request=request,
            call=call,
            settings=self.settings,
            services=request.app[SERVICES],
            loaders=Loaders(call, cache),
            cache=cache,
            stale=StaleLog(),
            events=request.app[EVENT_BUS],
            idempotency=request.app[IDEMPOTENCY],
            websocket=response if isinstance(response, web.WebSocketResponse) else None,
            principal=principal,
        )

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """The GraphiQL page, with assets served by the BFF itself when installed."""
        return web.Response(text=self._graphiql_html, content_type="text/html")
