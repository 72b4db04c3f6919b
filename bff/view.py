"""The GraphQL view: Strawberry's aiohttp view with our typed context and our GraphiQL page.

WebSocket connections may authenticate in ``connection_init`` (:meth:`GraphQLView.on_ws_connect`):
the payload's ``Authorization`` or ``X-Api-Key`` (see :func:`bff.auth.connection_init_credentials`)
replaces the HTTP upgrade's principal for every operation of the connection; bad credentials close
a graphql-transport-ws connection with 4403 and answer ``connection_error`` on legacy graphql-ws.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import timedelta
from typing import Any

from aiohttp import WSCloseCode, web
from strawberry.aiohttp.views import GraphQLView as StrawberryView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws import types as transport_ws
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws import types as legacy_ws
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UnsetType

from bff.auth import (
    UNAUTHENTICATED,
    AuthenticationFailed,
    Authenticator,
    connection_init_credentials,
    principal_of,
)
from bff.compat import is_stream_request
from bff.context import CACHE, SERVICES, Context, WebSocketConnection
from bff.downstream import Call
from bff.endpoint import HTTPEndpoint
from bff.events import EVENT_BUS
from bff.http_protocol import (
    REQUEST_TOO_LARGE,
    RequestRefused,
    check_content_type,
    check_query_string,
    params_from_body,
    params_from_query_string,
    refused_response,
)
from bff.idempotency import IDEMPOTENCY
from bff.loaders import Loaders
from bff.operation.budget import Budget
from bff.operation.schema import OPERATION_EXTENSIONS
from bff.request_id import request_id_of
from bff.settings import Settings
from bff.stale import StaleLog

logger = logging.getLogger("bff.view")


def _keep_connection_params(context: Context, payload: object) -> None:
    # Strawberry hands the payload over as ``context.connection_params``, which a frozen context
    # cannot take; the connection's mutable state can.
    if context.connection is not None and isinstance(payload, dict):
        context.connection.params = payload


def _extensions_of(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message's ``extensions``; a persisted query sent by hash alone gets an empty ``query``,
    which the operation pipeline resolves from the hash (Strawberry requires the key)."""
    payload = message.get("payload")
    extensions = payload.get("extensions") if isinstance(payload, dict) else None
    if not isinstance(extensions, dict):
        return None
    if isinstance(payload, dict) and "query" not in payload and "persistedQuery" in extensions:
        payload["query"] = ""
    return extensions


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, keeping the ``connection_init`` payload for :meth:`GraphQLView.on_ws_connect`
    and each ``subscribe`` message's ``extensions`` for the operation pipeline."""

    async def handle_connection_init(self, message: transport_ws.ConnectionInitMessage) -> None:
        """Keep the payload, then let Strawberry run the handshake."""
        _keep_connection_params(self.context, message.get("payload"))
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: transport_ws.SubscribeMessage) -> None:
        """Start the operation's task with the message's ``extensions`` in its context."""
        token = OPERATION_EXTENSIONS.set(_extensions_of(message))
        try:
            await super().handle_subscribe(message)
        finally:
            OPERATION_EXTENSIONS.reset(token)


class _LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Legacy graphql-ws, keeping the ``connection_init`` payload for :meth:`GraphQLView.on_ws_connect`
    and each ``start`` message's ``extensions`` for the operation pipeline."""

    async def handle_connection_init(self, message: legacy_ws.ConnectionInitMessage) -> None:
        """Keep the payload, then let Strawberry run the handshake."""
        _keep_connection_params(self.context, message.get("payload"))
        await super().handle_connection_init(message)

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        """Run the operation; a client gone meanwhile ends it quietly (Strawberry's ``complete`` to a
        closed socket would raise from a task nobody awaits)."""
        with contextlib.suppress(WebSocketDisconnected):
            await super().handle_async_results(operation_id, query, operation_name, variables)

    async def handle_start(self, message: legacy_ws.StartMessage) -> None:
        """Start the operation's task with the message's ``extensions`` in its context."""
        token = OPERATION_EXTENSIONS.set(_extensions_of(message))
        try:
            await super().handle_start(message)
        finally:
            OPERATION_EXTENSIONS.reset(token)


class GraphQLView(StrawberryView[Context, None]):
    """Serves ``/graphql``: POST and GET (queries only), WebSockets, and GraphiQL on ``text/html``.

    ``graphiql_html`` is the playground page (``None`` disables it); ``authenticator`` checks the
    credentials WebSocket clients send in ``connection_init``.
    """

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler

    def __init__(
        self,
        *,
        schema: BaseSchema,
        settings: Settings,
        authenticator: Authenticator,
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
        self._authenticator = authenticator
        self._graphiql_html = graphiql_html or ""
        self._websockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.endpoint = HTTPEndpoint(self, settings)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """WebSockets and streamed operations (SSE) go to Strawberry; plain HTTP to :class:`HTTPEndpoint`.

        An SSE request passes the same transport checks as plain HTTP first (CSRF prevention, the body
        limit, a JSON body), answered as JSON errors; its operation then runs the operation pipeline
        like every other transport's.
        """
        if self.is_websocket_request(request):
            return await super().__call__(request)
        if is_stream_request(self, request.headers):
            try:
                await self._check_stream_request(request)
            except RequestRefused as refused:
                return refused_response(refused)
            return await super().__call__(request)
        return await self.endpoint.handle(request)

    async def _check_stream_request(self, request: web.Request) -> None:
        """The HTTP transport's checks for an SSE request; raises :class:`RequestRefused`."""
        self.endpoint.check_csrf(request)
        if request.method == "POST":
            check_content_type(request)
            limit = self.settings.max_body_bytes
            too_large = RequestRefused(
                413,
                REQUEST_TOO_LARGE,
                f"The request body is larger than {limit} bytes, the limit.",
                limit=limit,
            )
            if request.content_length is not None and request.content_length > limit:
                raise too_large
            try:
                # request.read() keeps the body, so Strawberry reads these very bytes afterwards.
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise too_large from None
            if len(body) > limit:
                raise too_large
            params_from_body(body)
        elif request.method == "GET":
            check_query_string(request.query_string, self.settings.max_body_bytes)
            params_from_query_string(request.query, list(request.query.keys()))

    async def create_streaming_response(
        self,
        request: web.Request,
        stream: Callable[[], AsyncGenerator[str, None]],
        sub_response: web.Response,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        """Stream an SSE (or multipart) answer; a client that goes away ends it quietly, and the
        operation's generator is closed so its subscription stops."""
        response = web.StreamResponse(status=sub_response.status, headers={**sub_response.headers, **headers})
        await response.prepare(request)
        try:
            async with contextlib.aclosing(stream()) as chunks:
                async for chunk in chunks:
                    await response.write(chunk.encode())
            await response.write_eof()
        except ConnectionResetError:
            logger.debug("[request %s] stream client went away", request_id_of(request))
        return response

    async def create_websocket_response(
        self, request: web.Request, subprotocol: str | None
    ) -> web.WebSocketResponse:
        """Accept a WebSocket whose messages are bound by ``BFF_MAX_BODY_BYTES`` (a larger one closes
        the connection with 1009) and remember it, so shutdown can close it (:meth:`close_websockets`)."""
        ws = web.WebSocketResponse(
            protocols=[subprotocol] if subprotocol else [], max_msg_size=self.settings.max_body_bytes
        )
        await ws.prepare(request)
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
        websocket = response if isinstance(response, web.WebSocketResponse) else None
        stale = StaleLog()
        return Context(
            request=request,
            call=call,
            settings=self.settings,
            services=request.app[SERVICES],
            loaders=Loaders(call, stale),
            cache=request.app[CACHE],
            stale=stale,
            budget=Budget(self.settings.max_items, deadline),
            events=request.app[EVENT_BUS],
            idempotency=request.app[IDEMPOTENCY],
            websocket=websocket,
            principal=principal,
            connection=WebSocketConnection(principal=principal) if websocket is not None else None,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate the credentials of ``connection_init``, if it carries any.

        The principal they prove replaces the HTTP upgrade's for the connection's operations; without
        credentials the upgrade's stays. Bad credentials raise ``ConnectionRejectionError`` with an
        ``UNAUTHENTICATED`` payload: Strawberry closes graphql-transport-ws with 4403 and answers
        ``connection_error`` on legacy graphql-ws.
        """
        connection = context.connection
        if connection is None:
            return UnsetType()
        try:
            credentials = connection_init_credentials(connection.params)
            principal = await self._authenticator.authenticate(credentials) if credentials else None
        except AuthenticationFailed as exc:
            logger.info("[request %s] connection_init refused: %s", context.request_id, exc)
            raise ConnectionRejectionError(
                {"message": str(exc), "extensions": {"code": UNAUTHENTICATED}}
            ) from None
        if principal is not None:
            connection.principal = principal
        return UnsetType()  # a plain connection_ack

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """The GraphiQL page, with assets served by the BFF itself when installed."""
        return web.Response(text=self._graphiql_html, content_type="text/html")
