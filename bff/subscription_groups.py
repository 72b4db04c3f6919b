"""Shared subscription work: subscribers of the same subscription share one execution per event.

Without sharing, every subscriber runs the subscription's resolver, its own bus subscription and one
GraphQL execution per event, so a thousand subscribers of one document cost a thousand executions
per event. :class:`SubscriptionGroups` puts subscribers whose results cannot differ in one group
(:func:`group_key`: the same document, operation name, variables and extensions, and the same
principal) and runs the subscription once for the group: one resolver, one bus subscription, one
execution per event (with its own context, :class:`bff.subscriptions.PerEventExecutor`), whose
result, already shaped and masked, goes to every member.

Each member keeps what was each subscriber's own:

- a bounded queue (``BFF_SUBSCRIPTION_QUEUE_SIZE``): a member that falls behind is dropped alone, its
  WebSocket closed with :data:`bff.subscriptions.SLOW_SUBSCRIBER_CLOSE_CODE` (over SSE its stream ends
  with a ``SUBSCRIBER_TOO_SLOW`` error), and the others go on;
- its admission (the operation pipeline), telemetry record and trace id, and its transport;
- leaving: a member that completes, disconnects or whose token expires leaves its group; the last
  one to leave ends the group's run (and so its bus subscription).

The group's run has a context of its own: the first member's, as the connection's current principal
(:meth:`bff.context.Context.for_event`), without the member's WebSocket, and outside any member's
telemetry record, so it outlives that member. ``executions`` and ``deliveries`` count results run
and handed to members (``bff_subscription_executions_total``, ``bff_subscription_deliveries_total``);
their ratio is the sharing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from graphql import GraphQLError
from strawberry.types import ExecutionResult

from bff.context import Context
from bff.counters import Counter
from bff.events import Event, EventBus, OverflowCallback, SubscriberOverflow, SubscriberQueue
from bff.subscriptions import SubscriberTooSlow, close_slow
from bff.telemetry.live import MeteredEventBus

__all__ = ["EncodedData", "GroupKey", "Start", "SubscriptionGroups", "group_key", "sharing_counters"]

logger = logging.getLogger("bff.subscriptions")

GroupKey = tuple[Hashable, ...]
"""What subscribers of one group have in common (:func:`group_key`)."""

Start = Callable[[Context], Awaitable[AsyncGenerator[Any, None]]]
"""Starts the subscription with a context, giving its stream of results (Strawberry's ``stream``)."""


def sharing_counters() -> tuple[Counter, Counter]:
    """Fresh ``(executions, deliveries)`` counters, as :class:`SubscriptionGroups` keeps them."""
    return (
        Counter(
            "bff_subscription_executions_total",
            "Subscription results executed: one per event and subscription group, shared by its members.",
        ),
        Counter(
            "bff_subscription_deliveries_total",
            "Subscription results handed to subscribers: one per event and member of a subscription group.",
        ),
    )


def group_key(
    query: str,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    extensions: Mapping[str, Any] | None,
    context: Context,
) -> GroupKey:
    """What must be equal for two subscribers to share results.

    The document, operation name, variables and extensions as sent (filters by argument are
    variables, so they hold), and the principal, conservatively by its whole identity: how it was
    proved (``via``), its subject, its claims and the ``Authorization`` forwarded downstream. Any
    difference in what a resolver or a downstream service could see gives another group, so a
    principal never receives a result run for another. Anonymous subscribers share one scope. The
    group runs with the first member's HTTP request: a subscription resolver learns who asks from
    the principal, never from request headers.
    """
    principal = context.current_principal
    scope: Hashable = None
    if principal is not None:
        claims = json.dumps(principal.claims, sort_keys=True, default=str)
        scope = (principal.via, principal.subject, principal.authorization, claims)
    return (query, operation_name, _canonical(variables), _canonical(extensions), scope)


def _canonical(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


class SubscriptionGroups:
    """The subscription groups of one schema; ``queue_size`` bounds each member's queue."""

    def __init__(self, *, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size
        self.executions, self.deliveries = sharing_counters()
        """Results the groups ran (one per event and group), and handed to members (one per event
        and member)."""
        self._groups: dict[GroupKey, _Group] = {}
        self._running: set[asyncio.Task[None]] = set()

    def group_count(self) -> int:
        """How many groups run now."""
        return len(self._groups)

    def member_count(self) -> int:
        """How many subscribers the groups serve now."""
        return sum(len(group.members) for group in self._groups.values())

    async def stream(self, key: GroupKey, context: Context, start: Start) -> AsyncGenerator[Any, None]:
        """The results of the group ``key`` for one subscriber, from when it starts iterating.

        The subscriber joins the group on its first ``__anext__`` (starting the group with
        ``start`` and ``context`` when there is none) and leaves it when the iteration ends. Each
        result is a shallow copy, so what one member's transport adds (its trace id) stays its own.
        Ends with one ``SUBSCRIBER_TOO_SLOW`` error when the subscriber overflowed its queue; raises
        what the group's stream raised.
        """
        member = _Member(self.queue_size, context)
        group = self._join(key, context, start, member)
        try:
            async for result in member.queue.events():
                yield _own_copy(result)
            if group.error is not None:
                raise group.error
        except SubscriberOverflow as exc:
            yield _too_slow(exc)
        finally:
            group.leave(member)
            await member.closed()

    def _join(self, key: GroupKey, context: Context, start: Start, member: _Member) -> _Group:
        group = self._groups.get(key)
        if group is None:
            group = _Group(self, key)
            self._groups[key] = group
            run = group.run(start, context)
            # Outside the member's contextvars: its telemetry record and span are not the group's.
            task = asyncio.get_running_loop().create_task(run, context=contextvars.Context())
            group.task = task
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        group.members[member] = None
        return group

    def _forget(self, group: _Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]

    async def aclose(self) -> None:
        """Stop every group's run (their members' streams end)."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Member:
    """One subscriber of a group: its queue, and closing its WebSocket when it overflows."""

    __slots__ = ("_closing", "context", "queue")

    def __init__(self, queue_size: int, context: Context) -> None:
        self.context = context
        self.queue = SubscriberQueue[Any](queue_size, self._overflowed)
        self._closing: list[asyncio.Task[None]] = []

    def _overflowed(self) -> None:
        bus = self.context.events
        if isinstance(bus, MeteredEventBus):
            bus.subscriber_dropped()
        websocket = self.context.websocket
        if websocket is None:
            return
        logger.warning(
            "subscriber too slow; closing its WebSocket", extra={"request_id": self.context.request_id}
        )
        # Called from the group's run: the member may be stuck in a send, so close from a task of its own.
        task = asyncio.get_running_loop().create_task(close_slow(websocket, self.queue.limit))
        self._closing.append(task)

    async def closed(self) -> None:
        """Wait for the WebSocket close an overflow started, if any."""
        for task in self._closing:
            with contextlib.suppress(Exception):
                await task


class _Group:
    """The members of one key and the one run of the subscription that serves them."""

    def __init__(self, groups: SubscriptionGroups, key: GroupKey) -> None:
        self.groups = groups
        self.key = key
        self.members: dict[_Member, None] = {}
        """Ordered, so results reach members in the order they joined."""
        self.task: asyncio.Task[None] | None = None
        self.error: Exception | None = None

    async def run(self, start: Start, first: Context) -> None:
        """Run the subscription once, handing each result to every member, until it ends or the
        last member leaves (the task is cancelled)."""
        results: AsyncGenerator[Any, None] | None = None
        try:
            results = await start(self._context(first))
            async for result in results:
                self._deliver(result)
        except Exception as exc:  # the members' transports report it, as they did their own
            self.error = exc
        finally:
            # Forgotten before closing the stream (which may wait): who subscribes now starts anew.
            self.groups._forget(self)
            for member in self.members:
                member.queue.close()
            if results is not None:
                await results.aclose()

    def _context(self, first: Context) -> Context:
        context = first.for_event()
        bus = context.events
        if isinstance(bus, MeteredEventBus):
            bus = bus.shared(lambda: len(self.members))
        if bus is not None:
            bus = _GroupBus(bus, self._overflowed)
        return replace(context, websocket=None, connection=None, events=bus)

    def _overflowed(self) -> None:
        # The run itself fell behind the bus: every member is as late as it is.
        for member in list(self.members):
            member.queue.drop()
        self.members.clear()

    def _deliver(self, result: Any) -> None:
        groups = self.groups
        groups.executions.inc()
        delivered = 0
        for member in list(self.members):
            if member.queue.offer(result):
                delivered += 1
            else:
                del self.members[member]
        groups.deliveries.inc(amount=delivered)

    def leave(self, member: _Member) -> None:
        """``member`` is gone; without members the group stops."""
        self.members.pop(member, None)
        if not self.members and self.task is not None and not self.task.done():
            self.groups._forget(self)
            self.task.cancel()


class _GroupBus:
    """A group's view of the event bus: its subscription overflowing drops every member."""

    def __init__(self, bus: EventBus, overflowed: OverflowCallback) -> None:
        self._bus = bus
        self._overflowed = overflowed

    async def publish(self, event: Event) -> None:
        await self._bus.publish(event)

    def subscribe(
        self, *topics: str, on_overflow: OverflowCallback | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        def overflowed() -> None:
            if on_overflow is not None:
                on_overflow()
            self._overflowed()

        return self._bus.subscribe(*topics, on_overflow=overflowed)

    def subscriber_count(self, topic: str | None = None) -> int:
        return self._bus.subscriber_count(topic)

    async def aclose(self) -> None:
        await self._bus.aclose()


def _own_copy(result: Any) -> Any:
    """A shallow copy of a result (``copy.copy`` goes through ``__reduce_ex__``: several times slower)."""
    if not hasattr(result, "__dict__"):
        return copy.copy(result)
    clone = object.__new__(type(result))
    clone.__dict__.update(result.__dict__)
    return clone


def _too_slow(exc: SubscriberOverflow) -> ExecutionResult:
    error = SubscriberTooSlow(str(exc), queueSize=exc.queue_size)
    return ExecutionResult(
        data=None, errors=[GraphQLError(error.message, original_error=error, extensions=error.extensions)]
    )


_RESULT_FRAMES: Final = frozenset({"next", "data"})
"""Message types that carry a result: graphql-transport-ws ``next``, legacy graphql-ws ``data``."""


class EncodedData:
    """The JSON of the last result data a transport encoded, so the result a group hands to all its
    members is encoded once rather than once per member (the one WebSocket adapter of a view keeps
    one: members receive a result one after another)."""

    __slots__ = ("_data", "_text")

    def __init__(self) -> None:
        self._data: object = None
        self._text = ""

    def frame(self, message: Mapping[str, object], encode: Callable[[object], str | bytes]) -> str | None:
        """``message`` as JSON text when it is a result frame whose payload is only ``data`` (no
        errors, no extensions such as a trace id), with ``data`` encoded by ``encode`` unless it is
        the very object encoded last; ``None`` for any other message."""
        kind, ident, payload = message.get("type"), message.get("id"), message.get("payload")
        if kind not in _RESULT_FRAMES or not isinstance(ident, str) or len(message) != 3:
            return None
        if not isinstance(payload, dict) or len(payload) != 1:
            return None
        data = payload.get("data")
        if data is None:
            return None
        if data is not self._data:
            encoded = encode(data)
            self._text = encoded.decode() if isinstance(encoded, bytes) else encoded
            self._data = data
        return f'{{"id":{encode_basestring_ascii(ident)},"type":"{kind}","payload":{{"data":{self._text}}}}}'
