"""A BFF with its own demo services, the payments service's webhooks pointed at it, for live tests.

Tests that write data, inject faults or count webhooks start one of these so they disturb no other
test. The event bus and idempotency store are read straight from the BFF's app.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bff.app import VIEW
from bff.events import EVENT_BUS, InMemoryEventBus
from bff.subscription_groups import SubscriptionGroups
from bff.telemetry.live import MeteredEventBus
from bff_chinook.demo.payments import PAYMENTS, PaymentsService
from bff_chinook.demo.server import ALL_PORTS, DemoServices, start_services
from bff_chinook.resolvers.payments import PAYMENTS_WEBHOOK
from tests.e2e.stack import Stack, run_bff

SECRET = "whsec_" + base64.b64encode(b"bff tests: the current secret!!").decode()
"""The webhook secret the BFF and the payments service share in tests."""
OLD_SECRET = "whsec_" + base64.b64encode(b"bff tests: the previous secret!").decode()
"""A second secret the BFF still accepts (rotation)."""
WAIT_S = 10.0
"""Longest a test waits for something asynchronous to happen."""


async def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` every 10 ms until it holds; ``TimeoutError`` after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the state lives in another component; polling is the test
            await asyncio.sleep(0.01)


async def take(stream: AsyncGenerator[dict[str, Any], None], count: int) -> list[dict[str, Any]]:
    """The next ``count`` results of a subscription (bounded in time), then unsubscribe."""
    results: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(WAIT_S):
            async for result in stream:
                results.append(result)
                if len(results) == count:
                    break
    finally:
        await stream.aclose()
    return results


@dataclass
class Live:
    """The BFF (``stack``) and its demo services, the payments service among them."""

    stack: Stack
    services: DemoServices

    @property
    def payments(self) -> PaymentsService:
        """The payments service's live state (config, delivery log)."""
        return self.services.apps["payments"][PAYMENTS]

    @property
    def bus(self) -> InMemoryEventBus:
        """The BFF's event bus (the in-memory one, inside the metrics' wrapper when metrics are on)."""
        assert self.stack.app is not None
        bus = self.stack.app[EVENT_BUS]
        bus = bus.inner if isinstance(bus, MeteredEventBus) else bus
        assert isinstance(bus, InMemoryEventBus)
        return bus

    @property
    def base_url(self) -> str:
        """The BFF's ``http://127.0.0.1:PORT``."""
        return self.stack.graphql_url.rsplit("/", 1)[0]

    @property
    def ws_url(self) -> str:
        """The GraphQL endpoint as a ``ws://`` URL."""
        return self.stack.graphql_url.replace("http://", "ws://", 1)

    @property
    def webhook_url(self) -> str:
        """The BFF's payments webhook endpoint."""
        return self.base_url + PAYMENTS_WEBHOOK.path

    @property
    def groups(self) -> SubscriptionGroups:
        """The BFF's subscription groups (subscribers of one subscription share its bus subscription)."""
        assert self.stack.app is not None
        groups = self.stack.app[VIEW].schema.groups
        assert isinstance(groups, SubscriptionGroups)
        return groups

    def subscribers(self, topic: str) -> int:
        """Subscribers listening to ``topic``: its bus subscriptions, each of a subscription group,
        plus the further members of the groups (all of one topic in the tests that count them)."""
        groups = self.groups
        return self.bus.subscriber_count(topic) + groups.member_count() - groups.group_count()

    async def wait_for_subscribers(self, topic: str, count: int) -> None:
        """Wait until ``count`` subscribers listen to ``topic`` (subscriptions start asynchronously)."""
        await wait_until(lambda: self.subscribers(topic) >= count)

    async def mutate(
        self, query: str, variables: dict[str, Any] | None = None, *, authorization: str | None = None
    ) -> dict[str, Any]:
        """POST a mutation (as ``authorization``, if given) and return ``data``, failing on any error."""
        headers = None if authorization is None else {"Authorization": authorization}
        body = await self.stack.post(query, variables, headers=headers)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def records(self, service: str, path: str) -> Any:
        """GET a downstream resource directly (what the service really holds)."""
        response = await self.stack.http.get(self.stack.service_urls[service] + path)
        response.raise_for_status()
        return response.json()


@asynccontextmanager
async def run_live(name: str, **environ: str) -> AsyncIterator[Live]:
    """Start every demo service on free ports and a BFF over them that accepts :data:`SECRET`.

    The payments service settles after 50 ms and retries deliveries from 20 ms on. ``environ`` adds
    ``BFF_*`` settings.
    """
    services = await start_services(ports=dict.fromkeys(ALL_PORTS, 0))
    async with services:
        env = {"BFF_WEBHOOK_SECRETS": f"{SECRET},{OLD_SECRET}", **environ}
        async with run_bff(name, services.urls, **env) as stack:
            live = Live(stack, services)
            live.payments.configure(
                webhook_url=live.webhook_url,
                webhook_secret=SECRET,
                settle_delay_ms=50.0,
                retry_initial_ms=20.0,
            )
            yield live
