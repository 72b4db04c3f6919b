"""The typed per-operation context every resolver receives as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bff.downstream import Call, ServiceClient
from bff.loaders import Loaders
from bff.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    """The downstream service clients, one per service, shared by all operations of the app."""

    customers: ServiceClient
    catalog: ServiceClient
    sales: ServiceClient
    playlists: ServiceClient

    def all(self) -> tuple[ServiceClient, ...]:
        """Every client, in a fixed order."""
        return (self.customers, self.catalog, self.sales, self.playlists)


SERVICES = web.AppKey("bff.services", Services)
"""Where the app keeps its :class:`Services` while it runs (opened and closed by ``create_app``)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What one GraphQL operation runs with.

    ``call`` identifies the operation to downstream services (request id, forwarded headers,
    deadline); ``loaders`` are this operation's DataLoaders and die with it.
    """

    request: web.Request
    call: Call
    settings: Settings
    services: Services
    loaders: Loaders

    @property
    def request_id(self) -> str:
        """The id of the HTTP request, as logged and sent downstream in ``X-Request-Id``."""
        return self.call.request_id
