"""The typed per-operation context every resolver receives as ``info.context``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from aiohttp import web

from bff.auth import Principal
from bff.cache import EntityCache
from bff.downstream import Call, ServiceClient
from bff.downstream.freshness import Freshness
from bff.events import EventBus
from bff.idempotency import IdempotencyStore
from bff.loaders import Loaders
from bff.operation.budget import Budget
from bff.settings import Settings
from bff.stale import StaleLog


class Services(Mapping[str, ServiceClient]):
    """The downstream service clients by the names the app declares, shared by all its operations.

    ``services["catalog"]`` raises ``KeyError`` naming the declared services for any other name.
    """

    __slots__ = ("_clients",)

    def __init__(self, clients: Mapping[str, ServiceClient]) -> None:
        self._clients = dict(clients)

    def __getitem__(self, name: str) -> ServiceClient:
        try:
            return self._clients[name]
        except KeyError:
            known = ", ".join(self._clients) or "none"
            raise KeyError(f"no service {name!r}; the app declares: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)


SERVICES = web.AppKey("bff.services", Services)
"""Where the app keeps its :class:`Services` while it runs (opened and closed by ``create_app``)."""

CACHE = web.AppKey("bff.cache", EntityCache)
"""The app's entity cache, shared by all operations."""


@dataclass(slots=True)
class WebSocketConnection:
    """What ``connection_init`` sets on one WebSocket connection: the one mutable part of a context.

    Strawberry builds a connection's :class:`Context` at the HTTP upgrade, before ``connection_init``
    arrives. ``principal`` starts as the upgrade's; when the ``connection_init`` payload (``params``)
    carries credentials, the principal they prove replaces it (:meth:`bff.view.GraphQLView.on_ws_connect`).
    :meth:`Context.for_event` gives every operation of the connection this principal.
    """

    principal: Principal | None = None
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Context:
    """What one GraphQL operation runs with.

    ``call`` identifies the operation to downstream services (request id, forwarded headers,
    deadline); ``services`` are the app's service clients by name; ``loaders`` are this operation's
    DataLoaders and die with it; ``cache`` is the app's entity cache (mutations invalidate what they
    change); ``stale`` collects the paths served from stale cache entries.
    """

    request: web.Request
    call: Call
    settings: Settings
    services: Services
    loaders: Loaders
    cache: EntityCache
    stale: StaleLog
    budget: Budget
    """What the operation may still resolve and how long it may run (:mod:`bff.operation.budget`)."""
    events: EventBus | None = None
    """The app's event bus (mutations publish, subscriptions listen); ``None`` outside an app."""
    idempotency: IdempotencyStore | None = None
    """The app's idempotency store (mutation keys); ``None`` outside an app."""
    websocket: web.WebSocketResponse | None = None
    """The WebSocket the operation runs on, or ``None`` over HTTP (and SSE)."""
    principal: Principal | None = None
    """Who is calling (:mod:`bff.auth`); ``None`` when anonymous."""
    connection: WebSocketConnection | None = None
    """The WebSocket connection's state (its principal after ``connection_init``); ``None`` over HTTP."""

    def for_event(self) -> Context:
        """A copy for one subscription event, or one operation of a long-lived WebSocket connection.

        Strawberry builds the context once per WebSocket connection; this gives each event its own
        request id (``<connection id>.<n>``), deadline, DataLoaders and stale log, so no data is
        cached across events and no loader grows for the life of the connection. On a WebSocket the
        copy runs as the connection's current principal (set by ``connection_init``), whose
        ``Authorization`` is the one forwarded downstream.
        """
        timeout_s = self.settings.operation_timeout_ms / 1000
        deadline = asyncio.get_running_loop().time() + timeout_s
        principal = self.principal if self.connection is None else self.connection.principal
        headers = self.call.headers
        if principal is not self.principal:
            forwarded = principal.authorization if principal is not None else None
            headers = tuple((name, value) for name, value in headers if name.lower() != "authorization")
            headers += (("Authorization", forwarded),) if forwarded else ()
        call = replace(
            self.call,
            request_id=f"{self.call.request_id}.{uuid.uuid4().hex[:8]}",
            headers=headers,
            deadline=deadline,
            freshness=Freshness(),
        )
        stale = StaleLog()
        budget = Budget(self.settings.max_items, deadline)
        return replace(
            self, call=call, loaders=Loaders(call, stale), stale=stale, budget=budget, principal=principal
        )

    @property
    def current_principal(self) -> Principal | None:
        """Who runs the operation now: over a WebSocket, the connection's principal (which
        ``connection_init`` may have set), else the request's."""
        return self.principal if self.connection is None else self.connection.principal

    @property
    def request_id(self) -> str:
        """The id of the HTTP request, as logged and sent downstream in ``X-Request-Id``."""
        return self.call.request_id
