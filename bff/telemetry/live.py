"""What the live parts record: WebSocket connections, the event bus, webhook deliveries.

- :class:`MeteredEventBus` wraps whichever :class:`~bff.events.EventBus` the app runs (in memory or
  shared) and counts what passes through the protocol: events published and handed to each
  subscription, by topic, and subscribers dropped for being slow. Nothing of an implementation is
  needed, so every implementation is measured alike. A subscription group
  (:mod:`bff.subscription_groups`) listens through :meth:`MeteredEventBus.shared`, so its one bus
  subscription counts each event once per member, as the members' own subscriptions would.
- :class:`LiveTelemetry` counts open WebSockets (:class:`bff.view.GraphQLView`) and webhook
  deliveries by outcome and refusal code (:class:`bff.webhooks.WebhookIngress`).

Active subscriptions are counted by the operation that runs them (:mod:`bff.telemetry.operations`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from bff.events import Event, EventBus, OverflowCallback
from bff.telemetry.metrics import Metrics

__all__ = ["LiveTelemetry", "MeteredEventBus"]


class MeteredEventBus:
    """An :class:`~bff.events.EventBus` that counts for ``metrics`` and otherwise is ``inner``."""

    def __init__(self, inner: EventBus, metrics: Metrics) -> None:
        self.inner = inner
        """The bus that does the work."""
        self._metrics = metrics

    async def publish(self, event: Event) -> None:
        """Count the event by topic, then publish it on the inner bus."""
        metrics = self._metrics
        metrics.events_published.labels(metrics.topic(event.topic)).inc()
        await self.inner.publish(event)

    def subscribe(
        self, *topics: str, on_overflow: OverflowCallback | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """The inner bus's subscription, counting each event it yields and a drop for being slow."""
        return self._subscription(topics, on_overflow, _single)

    def shared(self, members: Callable[[], int]) -> EventBus:
        """This bus for a subscription shared by ``members()`` subscribers (a subscription group):
        each event it yields counts as delivered to every member, as their own subscriptions would;
        when it overflows, the members count their own drops (:meth:`subscriber_dropped`)."""
        return _SharedView(self, members)

    def subscriber_dropped(self) -> None:
        """Count a subscriber dropped for being slow by a queue of its own, off the bus (a
        subscription group's member)."""
        self._metrics.slow_subscribers_dropped.inc()

    @asynccontextmanager
    async def _subscription(
        self,
        topics: tuple[str, ...],
        on_overflow: OverflowCallback | None,
        weight: Callable[[], int],
        *,
        count_drop: bool = True,
    ) -> AsyncIterator[AsyncIterator[Event]]:
        metrics = self._metrics

        def overflowed() -> None:
            if count_drop:
                metrics.slow_subscribers_dropped.inc()
            if on_overflow is not None:
                on_overflow()

        async with self.inner.subscribe(*topics, on_overflow=overflowed) as events:
            counted = self._counted(events, weight)
            try:
                yield counted
            finally:
                if not getattr(counted, "ag_running", False):  # else a task is in it; the inner bus ends it
                    await counted.aclose()

    async def _counted(
        self, events: AsyncIterator[Event], weight: Callable[[], int]
    ) -> AsyncGenerator[Event, None]:
        metrics = self._metrics
        async for event in events:
            metrics.events_delivered.labels(metrics.topic(event.topic)).inc(weight())
            yield event

    def subscriber_count(self, topic: str | None = None) -> int:
        """The inner bus's count."""
        return self.inner.subscriber_count(topic)

    async def aclose(self) -> None:
        """Close the inner bus."""
        await self.inner.aclose()


def _single() -> int:
    return 1


class _SharedView:
    """A :class:`MeteredEventBus` whose subscriptions count each event ``members()`` times."""

    def __init__(self, bus: MeteredEventBus, members: Callable[[], int]) -> None:
        self._bus = bus
        self._members = members

    async def publish(self, event: Event) -> None:
        await self._bus.publish(event)

    def subscribe(
        self, *topics: str, on_overflow: OverflowCallback | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        return self._bus._subscription(topics, on_overflow, self._members, count_drop=False)

    def subscriber_count(self, topic: str | None = None) -> int:
        return self._bus.subscriber_count(topic)

    async def aclose(self) -> None:
        await self._bus.aclose()


class LiveTelemetry:
    """WebSocket connections and webhook deliveries, for ``metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._connections = metrics.websocket_connections
        self._connections.set(0)

    def websocket_opened(self) -> None:
        """A WebSocket connection was accepted."""
        self._connections.inc()

    def websocket_closed(self) -> None:
        """An accepted WebSocket connection ended."""
        self._connections.dec()

    def refused(self, code: str) -> None:
        """A WebSocket ``connection_init`` was refused with ``code`` (``UNAUTHENTICATED``, or
        ``RATE_LIMITED`` by the auth failure throttle)."""
        metrics = self._metrics
        metrics.refusals.labels(metrics.error_code(code)).inc()
        if code == "RATE_LIMITED":
            metrics.rate_limited.labels("auth_failures").inc()

    def webhook(self, endpoint: str, outcome: str, code: str | None) -> None:
        """A delivery to ``endpoint`` was ``accepted``, a ``duplicate``, or ``refused`` with ``code``."""
        metrics = self._metrics
        name = metrics.endpoint(endpoint)
        metrics.webhooks_received.labels(name, outcome).inc()
        if code is not None:
            metrics.webhooks_refused.labels(name, metrics.error_code(code)).inc()
