"""The GraphQL view: Strawberry's aiohttp view with our typed context and our GraphiQL page.

WebSocket connections may authenticate in ``connection_init`` (:meth:`GraphQLView.on_ws_connect`):
the payload's ``Authorization`` or ``X-Api-Key`` (see :func:`bff.auth.connection_init_credentials`)
replaces the HTTP upgrade's principal for every operation of the connection; bad credentials close
a graphql-transport-ws connection with 4403 and answer ``connection_error`` on legacy graphql-ws.
A second ``connection_init`` closes the connection with 4429 on both protocols (after a
``connection_error`` on graphql-ws): the principal is set once per connection. A connection whose
principal came from a token is closed when the token expires (its ``exp`` plus ``BFF_JWT_LEEWAY_MS``,
when HTTP requests with it start failing): 4403 "Token expired", after a ``connection_error``
(``UNAUTHENTICATED``) on graphql-ws. A Server-Sent Events stream whose request carried a token ends
at the same moment with a ``next`` event holding one ``UNAUTHENTICATED`` error, then ``complete``.
Clients reconnect with a fresh token.

Frames that are not well-formed messages of the protocol (not JSON text, not an object with a string
``type``, an operation without a string ``id`` or without a ``payload`` whose ``query`` is a non-empty
string, ``variables`` or ``extensions`` not objects) close graphql-transport-ws with 4400 and the
reason; on legacy graphql-ws, which has no such code, they get ``{"type": "error", "payload":
{"message": ..., "extensions": {"code": "BAD_REQUEST"}}}`` and then the same 4400 close. Strawberry
would otherwise fail on them with a traceback, or ignore them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Final, TypeGuard

from aiohttp import ClientConnectionResetError, WSCloseCode, WSMsgType, hdrs, web
from strawberry.aiohttp.views import AiohttpWebSocketAdapter
from strawberry.aiohttp.views import GraphQLView as StrawberryView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.streaming import SSETransport
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws import types as transport_ws
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws import types as legacy_ws
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UnsetType

from bff import json_codec
from bff.auth import (
    UNAUTHENTICATED,
    AuthenticationFailed,
    Authenticator,
    TooManyAuthFailures,
    connection_init_credentials,
    principal_of,
)
from bff.compat import is_stream_request
from bff.context import CACHE, SERVICES, Context, WebSocketConnection
from bff.downstream import Call
from bff.endpoint import HTTPEndpoint
from bff.events import EVENT_BUS
from bff.http_protocol import (
    BAD_REQUEST,
    RequestRefused,
    check_content_type,
    check_query_string,
    params_from_body,
    params_from_query_string,
    read_body,
    refused_response,
)
from bff.idempotency import IDEMPOTENCY
from bff.loaders import Loaders
from bff.operation.budget import Budget
from bff.operation.schema import OPERATION_EXTENSIONS
from bff.rate_limit import RATE_LIMITED
from bff.request_id import request_id_of
from bff.settings import Settings
from bff.stale import StaleLog
from bff.subscription_groups import EncodedData
from bff.telemetry.live import LiveTelemetry

logger = logging.getLogger("bff.view")

MALFORMED_MESSAGE_CLOSE_CODE = 4400
"""Close code of a connection that sent a malformed message (graphql-transport-ws's, on both protocols)."""
TOKEN_EXPIRED_CLOSE_CODE = 4403
"""Close code of a connection whose token expired (graphql-transport-ws's "Forbidden")."""
TOKEN_EXPIRED_REASON = "Token expired"
TOO_MANY_INITIALISATIONS_CLOSE_CODE = 4429
"""Close code of a second ``connection_init`` (graphql-transport-ws's, on both protocols)."""
MAX_CLOSE_REASON_BYTES = 123
_LEGACY_CLIENT_TYPES = frozenset({"connection_init", "connection_terminate", "start", "stop"})
_WEBSOCKET_OPEN = web.RequestKey("bff.websocket_open", bool)
"""Set on a request whose WebSocket was accepted (and counted open)."""


class _Malformed:
    """A frame that is not JSON text, passed to the protocol handler to refuse like other bad messages."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _WebSocketAdapter(AiohttpWebSocketAdapter):
    """Strawberry's aiohttp adapter, yielding :class:`_Malformed` for frames it cannot decode.

    Strawberry's raises for binary frames and skips non-JSON text on legacy graphql-ws, and lets
    ``RecursionError`` (deeply nested JSON) escape with a traceback.
    """

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        """Decoded text frames, and a :class:`_Malformed` for each frame that is not JSON text."""
        async for ws_message in self.ws:
            if ws_message.type == WSMsgType.TEXT:
                try:
                    decoded = self.view.decode_json(ws_message.data)
                except (ValueError, RecursionError):
                    decoded = _Malformed("WebSocket message must be valid JSON")
                yield decoded
            elif ws_message.type == WSMsgType.BINARY:
                yield _Malformed("WebSocket message type must be text")

    async def send_json(self, message: Mapping[str, object]) -> None:
        """Send ``message``; a result's data shared by a subscription group is encoded once for all
        its members (:class:`bff.subscription_groups.EncodedData`)."""
        view = self.view
        text = view.encoded.frame(message, view.encode_json) if isinstance(view, GraphQLView) else None
        if text is None:
            await super().send_json(message)
            return
        try:
            await self.ws.send_str(text)
        except (RuntimeError, ClientConnectionResetError) as exc:
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        """Close with ``reason`` cut to the 123 bytes a close frame allows (RFC 6455 section 5.5).

        Reasons may quote the client (an unknown message type, an operation name); a longer one
        made aiohttp send an oversized control frame, which clients see as a protocol error (1002).
        """
        encoded = reason.encode()[:MAX_CLOSE_REASON_BYTES]
        await self.ws.close(code=code, message=encoded.decode(errors="ignore").encode())


def _operation_problem(message: Mapping[str, object]) -> str | None:
    """What is wrong with an operation message (``subscribe`` or ``start``), or ``None``."""
    if not isinstance(message.get("id"), str) or not message["id"]:
        return f"A {message['type']} message needs a non-empty string id"
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return f"A {message['type']} message needs a payload object"
    extensions = payload.get("extensions")
    by_hash = (
        isinstance(extensions, dict) and "persistedQuery" in extensions and payload.get("query") in (None, "")
    )
    if not by_hash and (not isinstance(payload.get("query"), str) or not payload["query"]):
        return f"A {message['type']} message needs a payload with a non-empty string query"
    for name in ("variables", "extensions"):
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            return f"payload.{name} must be an object or null"
    if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
        return "payload.operationName must be a string or null"
    return None


def _message_problem(message: object, *, legacy: bool) -> str | None:
    """Why ``message`` is not a well-formed client message of the protocol, or ``None``.

    Unknown types are left to Strawberry on graphql-transport-ws (it closes with 4400); legacy
    graphql-ws would ignore them, so they are refused here.
    """
    if isinstance(message, _Malformed):
        return message.reason
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "A message must be a JSON object with a string type"
    kind = message["type"]
    if legacy and kind not in _LEGACY_CLIENT_TYPES:
        return f"Unknown message type: {kind[:50]}"
    if kind in ("subscribe", "start"):
        return _operation_problem(message)
    if kind in ("complete", "stop") and (not isinstance(message.get("id"), str) or not message["id"]):
        return f"A {kind} message needs a non-empty string id"
    return None


TOKEN_EXPIRED_MESSAGE: Final = "The token has expired; sign in again."
_SSE_TOKEN_EXPIRED: Final = (
    SSETransport().encode_next(
        {
            "errors": [
                {"message": "The token has expired; sign in again.", "extensions": {"code": UNAUTHENTICATED}}
            ]
        },
        json_codec.dumps_text,
    )
    + SSETransport().encode_complete()
)
"""The last events of a Server-Sent Events stream whose token expired: an error, then ``complete``."""


class _StreamExpiry:
    """Cancels the task streaming an answer at ``deadline`` (unix time, s), so the stream can end
    with :data:`_SSE_TOKEN_EXPIRED`; :attr:`fired` tells that cancellation from any other."""

    def __init__(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "streams run in a task"
        self._task = task
        self.fired = False
        self._timer = loop.call_at(loop.time() + max(0.0, deadline - time.time()), self._fire)

    def _fire(self) -> None:
        self.fired = True
        self._task.cancel()

    def uncancel(self) -> None:
        """Take back the cancellation this timer asked for, so the stream can still be ended."""
        self._task.uncancel()

    def stop(self) -> None:
        self._timer.cancel()


def _watch_expiry(context: Context, expire: Callable[[], Awaitable[None]]) -> asyncio.Task[None] | None:
    """A task that runs ``expire`` once the connection's principal expires; ``None`` if it never does.

    The deadline is the token's ``exp`` plus ``BFF_JWT_LEEWAY_MS``: the moment HTTP requests with the
    same token start failing, so a reconnect with it would fail too.
    """
    principal = context.connection.principal if context.connection is not None else None
    if principal is None or principal.expires_at is None:
        return None
    deadline = principal.expires_at + context.settings.jwt_leeway_ms / 1000

    async def close_at_deadline() -> None:
        await asyncio.sleep(max(0.0, deadline - time.time()))
        logger.info("token expired; closing the WebSocket")
        with contextlib.suppress(WebSocketDisconnected):  # the client left first
            await expire()

    return asyncio.create_task(close_at_deadline(), name=f"bff-ws-expiry-{context.request_id}")


async def _stop_watching(task: asyncio.Task[None] | None) -> None:
    # As Strawberry does with its connection_init timeout task: cancel, then let it finish.
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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

    async def handle_task_exception(self, error: Exception) -> None:
        """A client gone while its operation was answering is not an error of ours: logged quietly;
        anything else as Strawberry logs it (with the traceback)."""
        if isinstance(error, ConnectionResetError | WebSocketDisconnected):
            logger.debug("[request %s] WebSocket client went away mid-operation", self.context.request_id)
            return
        await super().handle_task_exception(error)

    async def handle_message(self, message: transport_ws.Message) -> None:
        """Close with 4400 on a malformed message; pass the others to Strawberry."""
        problem = _message_problem(message, legacy=False)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    _expiry: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: transport_ws.ConnectionInitMessage) -> None:
        """Keep the payload, let Strawberry run the handshake, then watch the token's expiry."""
        _keep_connection_params(self.context, message.get("payload"))
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._expiry is None:
            self._expiry = _watch_expiry(self.context, self._expire)

    async def _expire(self) -> None:
        await self.websocket.close(code=TOKEN_EXPIRED_CLOSE_CODE, reason=TOKEN_EXPIRED_REASON)

    async def shutdown(self) -> None:
        """Stop watching the token's expiry, then let Strawberry end the operations."""
        await _stop_watching(self._expiry)
        await super().shutdown()

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

    _initialised = False
    _expiry: asyncio.Task[None] | None = None

    async def handle_message(self, message: legacy_ws.OperationMessage) -> None:
        """Answer a malformed message with ``error`` and close with 4400; pass the others to Strawberry."""
        problem = _message_problem(message, legacy=True)
        if problem is None:
            await super().handle_message(message)
            return
        error: dict[str, object] = {
            "type": "error",
            "payload": {"message": problem, "extensions": {"code": BAD_REQUEST}},
        }
        raw: object = message  # typed as a protocol message; in fact whatever JSON the client sent
        operation_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(operation_id, str):
            error["id"] = operation_id
        await self.websocket.send_json(error)
        await self.websocket.close(code=MALFORMED_MESSAGE_CLOSE_CODE, reason=problem)

    async def handle_connection_init(self, message: legacy_ws.ConnectionInitMessage) -> None:
        """Keep the payload, then let Strawberry run the handshake; refuse a second one.

        Strawberry would authenticate every ``connection_init`` and swap the connection's principal;
        like graphql-transport-ws, a second one gets a 4429 close (after a ``connection_error``).
        """
        if self._initialised:
            reason = "Too many initialisation requests"
            error = {"message": reason, "extensions": {"code": BAD_REQUEST}}
            await self.websocket.send_json({"type": "connection_error", "payload": error})
            await self.websocket.close(code=TOO_MANY_INITIALISATIONS_CLOSE_CODE, reason=reason)
            return
        self._initialised = True
        _keep_connection_params(self.context, message.get("payload"))
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self._expiry = _watch_expiry(self.context, self._expire)

    async def _expire(self) -> None:
        error = {"message": "The token has expired.", "extensions": {"code": UNAUTHENTICATED}}
        await self.websocket.send_json({"type": "connection_error", "payload": error})
        await self.websocket.close(code=TOKEN_EXPIRED_CLOSE_CODE, reason=TOKEN_EXPIRED_REASON)

    async def cleanup(self) -> None:
        """Stop watching the token's expiry, then let Strawberry end the operations."""
        await _stop_watching(self._expiry)
        await super().cleanup()

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
    credentials WebSocket clients send in ``connection_init``; ``live`` counts open WebSockets and
    refused ``connection_init`` messages (``None``: metrics off).
    """

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyWSHandler
    websocket_adapter_class = _WebSocketAdapter

    def __init__(
        self,
        *,
        schema: BaseSchema,
        settings: Settings,
        authenticator: Authenticator,
        graphiql_html: str | None,
        live: LiveTelemetry | None = None,
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
        self._live = live
        self.encoded = EncodedData()
        """The last subscription result data sent, as JSON (for the members of a group)."""

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """WebSockets and streamed operations (SSE) go to Strawberry; plain HTTP to :class:`HTTPEndpoint`.

        An SSE request passes the same transport checks as plain HTTP first (CSRF prevention, the body
        limit, a JSON body), answered as JSON errors; its operation then runs the operation pipeline
        like every other transport's.
        """
        if self.is_websocket_request(request):
            try:
                return await super().__call__(request)
            finally:
                if self._live is not None and request.get(_WEBSOCKET_OPEN):
                    self._live.websocket_closed()
        if is_stream_request(self, request.headers):
            try:
                await self._check_stream_request(request)
            except RequestRefused as refused:
                return refused_response(refused)
            return await super().__call__(request)
        return await self.endpoint.handle(request)

    def is_websocket_request(self, request: web.Request) -> TypeGuard[web.Request]:
        """Whether ``request`` asks for a WebSocket; one without ``Upgrade: websocket`` is answered
        here, since aiohttp's check builds a response and raises an exception to say no."""
        if request.headers.get(hdrs.UPGRADE, "").lower().strip() != "websocket":
            return False
        return super().is_websocket_request(request)

    async def _check_stream_request(self, request: web.Request) -> None:
        """The HTTP transport's checks for an SSE request; raises :class:`RequestRefused`."""
        self.endpoint.check_csrf(request)
        if request.method == "POST":
            check_content_type(request)
            params_from_body(await read_body(request, self.settings.max_body_bytes))
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
        expiry = self._stream_expiry(request, headers)
        try:
            async with contextlib.aclosing(stream()) as chunks:
                async for chunk in chunks:
                    await response.write(chunk.encode())
            if expiry is not None:
                expiry.stop()
            await response.write_eof()
        except asyncio.CancelledError:
            if expiry is None or not expiry.fired:
                raise
            expiry.uncancel()
            logger.info("token expired; ending the event stream")
            with contextlib.suppress(ConnectionResetError):
                await response.write(_SSE_TOKEN_EXPIRED.encode())
                await response.write_eof()
        except ConnectionResetError:
            logger.debug("stream client went away")
        finally:
            if expiry is not None:
                expiry.stop()
        return response

    def _stream_expiry(self, request: web.Request, headers: Mapping[str, str]) -> _StreamExpiry | None:
        """A timer ending this Server-Sent Events stream when its token expires (``exp`` plus
        ``BFF_JWT_LEEWAY_MS``, as for a WebSocket); ``None`` for another stream or a principal that
        never expires."""
        principal = principal_of(request)
        if principal is None or principal.expires_at is None:
            return None
        if not headers.get("Content-Type", "").startswith("text/event-stream"):
            return None
        return _StreamExpiry(principal.expires_at + self.settings.jwt_leeway_ms / 1000)

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
        if self._live is not None:
            request[_WEBSOCKET_OPEN] = True
            self._live.websocket_opened()
        return ws

    async def close_websockets(self, app: web.Application) -> None:
        """Close every open WebSocket with 1001 (going away); an ``on_shutdown`` hook."""
        going_away = WSCloseCode.GOING_AWAY
        closing = [ws.close(code=going_away, message=b"Server shutdown") for ws in self._websockets]
        await asyncio.gather(*closing, return_exceptions=True)

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket or SSE message's JSON (:func:`bff.json_codec.loads`)."""
        return json_codec.loads(data)

    def encode_json(self, data: object) -> str:
        """A WebSocket or SSE message as JSON text (:func:`bff.json_codec.dumps_text`)."""
        return json_codec.dumps_text(data)

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
        ``connection_error`` on legacy graphql-ws. So do credentials from an IP past
        ``BFF_AUTH_FAILURE_LIMIT``, unchecked, with ``RATE_LIMITED`` and ``retryAfter`` (seconds).
        """
        connection = context.connection
        if connection is None:
            return UnsetType()
        client = context.request.remote
        try:
            credentials = connection_init_credentials(connection.params)
            principal = (
                await self._authenticator.authenticate_client(credentials, client) if credentials else None
            )
        except TooManyAuthFailures as exc:
            logger.info("connection_init refused: %s", exc)
            if self._live is not None:
                self._live.refused(RATE_LIMITED)
            raise ConnectionRejectionError(
                {"message": str(exc), "extensions": {"code": RATE_LIMITED, "retryAfter": exc.retry_after}}
            ) from None
        except AuthenticationFailed as exc:
            logger.info("connection_init refused: %s", exc)
            if self._live is not None:
                self._live.refused(UNAUTHENTICATED)
            raise ConnectionRejectionError(
                {"message": str(exc), "extensions": {"code": UNAUTHENTICATED}}
            ) from None
        if principal is not None:
            connection.principal = principal
        return UnsetType()  # a plain connection_ack

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """The GraphiQL page, with assets served by the BFF itself when installed."""
        return web.Response(text=self._graphiql_html, content_type="text/html")
