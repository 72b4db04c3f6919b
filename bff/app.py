"""``create_app``: the aiohttp application serving an app's graph.

Resources (one ``ServiceClient`` per service the app declares) are opened and closed in
``cleanup_ctx`` and kept under typed ``web.AppKey``s. ``transport`` is the test seam: it replaces
the network for every service client (``httpx.MockTransport`` in unit tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from bff import graphiql
from bff.application import App
from bff.auth import Authenticator, auth_middleware
from bff.cache import EntityCache
from bff.connections import client_cap_middleware
from bff.context import CACHE, SERVICES, Services
from bff.cors import cors_middleware
from bff.downstream import ServiceClient
from bff.events import EVENT_BUS
from bff.graph.schema import build_schema
from bff.idempotency import IDEMPOTENCY
from bff.operation.response_cache import send_headers
from bff.request_id import request_id_middleware
from bff.settings import Settings, SettingsError, service_variable
from bff.shared import REDIS, shared_state
from bff.telemetry import TELEMETRY, Telemetry
from bff.telemetry.http import METRICS_PATH, metrics_port_ctx, telemetry_middleware
from bff.view import GraphQLView
from bff.webhooks import WEBHOOK_RESULTS, setup_webhooks

SETTINGS = web.AppKey("bff.settings", Settings)
APP = web.AppKey("bff.app", App)
"""The :class:`~bff.application.App` being served."""
VIEW = web.AppKey("bff.view", GraphQLView)
"""The GraphQL view (its ``schema`` carries the operation pipeline and the validation cache)."""

GRAPHIQL_ASSETS_PREFIX = "/graphiql/assets"


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers 200 as long as the event loop runs; checks no dependency."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: each service's circuit breaker state, and Redis when ``BFF_REDIS_URL`` is set.

    ``status`` is ``ready`` (all closed, Redis up), ``degraded`` (some breaker open or half-open, or
    Redis down: the BFF still answers, with partial data or without shared state) or ``unavailable``
    (every breaker open: HTTP 503, take this instance out). ``redis`` is ``{"status": "up",
    "latencyMs": ...}`` or ``{"status": "down"}``; a Redis outage does not make the instance
    unavailable, since every instance shares it.
    """
    clients = request.app[SERVICES].values()
    states = {client.name: await client.breaker_state() for client in clients}
    link = request.app.get(REDIS)
    latency = await link.ping() if link is not None else None
    redis_down = link is not None and latency is None
    if all(state == "open" for state in states.values()):
        status = "unavailable"
    elif redis_down or any(state != "closed" for state in states.values()):
        status = "degraded"
    else:
        status = "ready"
    body: dict[str, object] = {
        "status": status,
        "services": {name: {"breaker": state} for name, state in states.items()},
    }
    if link is not None:
        body["redis"] = (
            {"status": "down"} if latency is None else {"status": "up", "latencyMs": round(latency, 2)}
        )
    return web.json_response(body, status=503 if status == "unavailable" else 200)


def create_app(
    settings: Settings, app_spec: App, *, transport: httpx.AsyncBaseTransport | None = None
) -> web.Application:
    """Serve ``app_spec``: ``/graphql`` (POST, GET, SSE, WebSocket, GraphiQL), its webhook endpoints,
    ``/healthz``, ``/readyz``, ``/metrics`` and GraphiQL's assets.

    ``settings`` must come from :func:`~bff.settings.load_settings` with the app's services. Raises
    :class:`~bff.settings.SettingsError` when a service the app declares has no settings,
    ``BFF_GRAPHIQL_ASSETS_DIR`` names a directory that does not hold the pinned GraphiQL files, or an
    ``OTEL_*`` variable is malformed.
    """
    missing = [name for name in app_spec.services if name not in settings.services]
    if missing:
        raise SettingsError(f"BFF_SERVICE_{service_variable(missing[0])}_URL: no settings for {missing[0]!r}")
    authenticator = Authenticator.from_settings(settings, transport=transport)
    telemetry = Telemetry(settings)
    app = web.Application(
        # request.read() refuses bodies past the largest any route accepts (each checks its own).
        client_max_size=max(settings.max_body_bytes, settings.webhook_max_body_bytes),
        middlewares=[
            client_cap_middleware(settings.max_requests_per_client),
            request_id_middleware,
            telemetry_middleware(telemetry.metrics, settings.graphql_path),
            cors_middleware(settings.cors_allowed_origins, settings.graphql_path),
            auth_middleware(authenticator, settings.graphql_path),
        ],
    )
    app[SETTINGS] = settings
    app[APP] = app_spec
    app[TELEMETRY] = telemetry
    # Cache, bus, idempotency, webhook queue, APQ and rate limits: in the process, or in Redis.
    shared = shared_state(settings, cache_observer=telemetry.cache(app_spec.services))
    if shared.link is not None:
        app[REDIS] = shared.link
    app.cleanup_ctx.append(shared.lifespan)
    cache = EntityCache(shared.cache_storage)
    app[CACHE] = cache

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        clients = {
            name: ServiceClient(
                name,
                settings.service(name),
                transport=transport,
                cache=cache,
                telemetry=telemetry.service(name, settings.service(name).base_url),
            )
            for name in app_spec.services
        }
        for client in clients.values():
            telemetry.follow(client.contract_violations)
        app[SERVICES] = Services(clients)
        try:
            yield
        finally:
            await asyncio.gather(*(client.aclose() for client in clients.values()))

    app.cleanup_ctx.append(services_ctx)

    bus = telemetry.event_bus(shared.bus)
    app[EVENT_BUS] = bus
    app[IDEMPOTENCY] = shared.idempotency
    if telemetry.live is not None:
        app[WEBHOOK_RESULTS] = telemetry.live.webhook
    setup_webhooks(app, settings, app_spec.webhooks, queue=shared.webhook_queue)

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
    schema = build_schema(app_spec, settings, shared=shared)
    schema.telemetry = telemetry.operations if telemetry.on else None
    if schema.pipeline is not None:
        telemetry.follow(schema.pipeline.deprecations.uses)
    if schema.responses is not None:
        telemetry.follow(schema.responses.lookups)
        telemetry.follow(schema.responses.bypassed)
        schema.responses.observer = telemetry.response_cache_size()
        app.on_response_prepare.append(send_headers)
    groups = schema.groups
    if groups is not None:
        telemetry.follow(groups.executions)
        telemetry.follow(groups.deliveries)
        app.on_shutdown.append(lambda _app: groups.aclose())
    if schema.plans is not None:
        telemetry.follow(schema.plans.runs)
        telemetry.follow(schema.plans.fallbacks)
    view = GraphQLView(
        schema=schema,
        settings=settings,
        authenticator=authenticator,
        graphiql_html=graphiql_html,
        live=telemetry.live,
    )
    app[VIEW] = view
    app.router.add_route("*", settings.graphql_path, view)
    pipeline = schema.pipeline
    if pipeline is not None:
        app.on_cleanup.append(lambda _app: pipeline.aclose())
    app.on_cleanup.append(authenticator.aclose)
    app.on_shutdown.append(lambda _app: bus.aclose())
    app.on_shutdown.append(view.close_websockets)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    metrics = telemetry.metrics
    if metrics is not None and settings.metrics_port is None:
        app.router.add_get(METRICS_PATH, metrics.handler())
    elif metrics is not None and settings.metrics_port is not None:

        def bound(host: str, port: int) -> None:
            telemetry.metrics_address = (host, port)

        app.cleanup_ctx.append(metrics_port_ctx(metrics, settings.host, settings.metrics_port, bound))
    app.on_cleanup.append(lambda _app: telemetry.aclose())
    return app
