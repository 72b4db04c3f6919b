"""``create_app``: the aiohttp application serving the graph.

Resources (one ``ServiceClient`` per downstream service) are opened and closed in ``cleanup_ctx``
and kept under typed ``web.AppKey``s. ``transport`` is the test seam: it replaces the network for
every service client (``httpx.MockTransport`` in unit tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bff import graphiql
from bff.context import SERVICES, Services
from bff.downstream import ServiceClient
from bff.request_id import request_id_middleware
from bff.settings import Settings, SettingsError
from bff.view import GraphQLView
from schema import build_schema

SETTINGS = web.AppKey("bff.settings", Settings)

GRAPHIQL_ASSETS_PREFIX = "/graphiql/assets"


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers 200 as long as the event loop runs; checks no dependency."""
    return web.json_response({"status": "ok"})


def create_app(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> web.Application:
    """Build the app: ``/graphql`` (POST, GET, WebSocket, GraphiQL), ``/healthz`` and GraphiQL assets.

    Raises :class:`~bff.settings.SettingsError` when ``BFF_GRAPHIQL_ASSETS_DIR`` names a directory
    that does not hold the pinned GraphiQL files.
    """
    app = web.Application(middlewares=[request_id_middleware])
    app[SETTINGS] = settings

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        clients = {
            name: ServiceClient(name, settings.service(name), transport=transport)
            for name in ("customers", "catalog", "sales", "playlists")
        }
        app[SERVICES] = Services(**clients)
        try:
            yield
        finally:
            await asyncio.gather(*(client.aclose() for client in clients.values()))

    app.cleanup_ctx.append(services_ctx)

    graphiql_html: str | None = None
    if settings.graphiql:
        try:
            assets_dir = graphiql.find_assets_dir(settings.graphiql_assets_dir)
        except ValueError as exc:
            raise SettingsError(f"BFF_GRAPHIQL_ASSETS_DIR: {exc}") from None
        if assets_dir is not None:
            app.router.add_routes(graphiql.assets_routes(assets_dir, GRAPHIQL_ASSETS_PREFIX))
        graphiql_html = graphiql.render_page(
            assets_base=GRAPHIQL_ASSETS_PREFIX if assets_dir is not None else None,
            graphql_path=settings.graphql_path,
        )
    view = GraphQLView(schema=build_schema(), settings=settings, graphiql_html=graphiql_html)
    app.router.add_route("*", settings.graphql_path, view)
    app.router.add_get("/healthz", healthz)
    return app
