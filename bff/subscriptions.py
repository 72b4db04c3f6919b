"""Subscriptions at run time: fresh contexts per event and bus events for subscription resolvers.

Strawberry calls ``get_context`` once per WebSocket connection (and once per SSE request), so
without help every event of every subscription on a connection would share one set of DataLoaders:
stale data and caches that grow for as long as the connection lives. :class:`PerEventExecutor` is
the schema's graphql-core executor; it gives each subscription event, and each operation run over
a WebSocket, its own copy of the context (:meth:`bff.context.Context.for_event`).

:func:`bus_events` is what subscription resolvers iterate: the bus events of some topics, and when
the subscriber falls behind, the WebSocket is closed with :data:`SLOW_SUBSCRIBER_CLOSE_CODE` (over SSE
the stream ends with a ``SUBSCRIBER_TOO_SLOW`` error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from bff.context import Context
from bff.errors import BFFError
from bff.events import Event, SubscriberOverflow

__all__ = [
    "SLOW_SUBSCRIBER_CLOSE_CODE",
    "PerEventExecutor",
    "SubscriberTooSlow",
    "bus_events",
    "close_slow",
]

logger = logging.getLogger("bff.subscriptions")

SLOW_SUBSCRIBER_CLOSE_CODE: Final = 4413
"""WebSocket close code for a client that did not read its events fast enough (4000-4999 is for
applications; graphql-ws clients reconnect on it, as it is none of the protocol's fatal codes)."""

_CLOSE_TIMEOUT_S: Final = 1.0
"""How long closing a slow client's WebSocket may wait for its buffers to drain before aborting."""


class SubscriberTooSlow(BFFError):
    """The client did not read events fast enough and was disconnected."""

    code = "SUBSCRIBER_TOO_SLOW"


class PerEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with a fresh :class:`Context` per subscription event and WS operation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = self.context_value
        if isinstance(context, Context) and context.websocket is not None:
            self.context_value = context.for_event()

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        """The executor of one event: the payload as root value and a fresh context."""
        executor = super().build_per_event_executor(payload)
        context = executor.context_value
        if isinstance(context, Context):
            executor.context_value = context.for_event()
        return executor


async def close_slow(ws: web.WebSocketResponse, queue_size: int) -> None:
    """Close a slow subscriber's WebSocket with :data:`SLOW_SUBSCRIBER_CLOSE_CODE`, aborting it when
    the close frame cannot be sent within a second (``queue_size``: its queue's limit, for the reason)."""
    message = f"Subscriber too slow: more than {queue_size} events waiting".encode()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await ws.close(code=SLOW_SUBSCRIBER_CLOSE_CODE, message=message)
    except TimeoutError:
        # aiohttp has closed the transport already when the close frame could not be drained.
        logger.info("slow subscriber did not drain its socket; connection aborted")


async def bus_events(ctx: Context, *topics: str) -> AsyncIterator[Event]:
    """The events published to ``topics`` from now on, in order.

    Raises :class:`SubscriberTooSlow` after the subscriber overflowed its queue; over a WebSocket
    the connection is closed with :data:`SLOW_SUBSCRIBER_CLOSE_CODE` as soon as that happens, even if
    the connection is stuck sending. Raises ``RuntimeError`` when the context has no event bus.
    """
    bus = ctx.events
    if bus is None:
        raise RuntimeError("this context has no event bus")
    websocket = ctx.websocket
    queue_size = ctx.settings.subscription_queue_size

    closing: list[asyncio.Task[None]] = []

    def disconnect() -> None:
        # Called from publish(): the reader may be stuck in a send, so close from a task of its own.
        if websocket is None:
            return
        logger.warning("subscriber too slow; closing its WebSocket", extra={"request_id": ctx.request_id})
        closing.append(asyncio.get_running_loop().create_task(close_slow(websocket, queue_size)))

    try:
        async with bus.subscribe(*topics, on_overflow=disconnect) as events:
            try:
                async for event in events:
                    yield event
            except SubscriberOverflow as exc:
                raise SubscriberTooSlow(str(exc), queueSize=exc.queue_size) from None
    finally:
        for task in closing:
            with contextlib.suppress(Exception):
                await task
