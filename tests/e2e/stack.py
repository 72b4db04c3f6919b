"""A running BFF on a real socket in front of real downstream services, for end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from bff.app import create_app
from bff.application import App
from bff.connections import runner_args
from bff.settings import load_settings, service_variable
from bff_chinook.schema import app as chinook_app


@dataclass
class Stack:
    """The BFF's GraphQL URL, its downstream services' URLs, and an HTTP client for both."""

    name: str
    graphql_url: str
    service_urls: dict[str, str]
    http: httpx.AsyncClient
    app: web.Application | None = None
    """The BFF's app, to look at its state (event bus, idempotency store) from a test."""

    async def post(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one operation as JSON (with extra ``headers``) and return the decoded response body."""
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = dict(variables)
        response = await self.http.post(self.graphql_url, json=payload, headers=headers)
        body: dict[str, Any] = response.json()
        return body

    async def reset_counts(self) -> None:
        """Zero every service's request counter."""
        for url in self.service_urls.values():
            (await self.http.delete(f"{url}/_stats")).raise_for_status()

    async def counts(self) -> dict[str, dict[str, int]]:
        """Requests each service served since the last reset: service -> {"GET /tracks": n}."""
        out: dict[str, dict[str, int]] = {}
        for name, url in self.service_urls.items():
            response = await self.http.get(f"{url}/_stats")
            response.raise_for_status()
            out[name] = dict(response.json()["requests"])
        return out

    async def total_requests(self) -> int:
        """All requests the services served since the last reset."""
        return sum(sum(per.values()) for per in (await self.counts()).values())


@asynccontextmanager
async def run_bff(
    name: str, service_urls: Mapping[str, str], *, app_spec: App = chinook_app, **environ: str
) -> AsyncIterator[Stack]:
    """Serve ``app_spec`` (default: Chinook) on 127.0.0.1 (free port) over ``service_urls``; extra
    ``BFF_*`` settings allowed."""
    env = {f"BFF_SERVICE_{service_variable(service)}_URL": url for service, url in service_urls.items()}
    env.update(environ)
    settings = load_settings(env, services=app_spec.service_defaults(), host="127.0.0.1", port=0)
    app = create_app(settings, app_spec)
    runner = web.AppRunner(app, shutdown_timeout=1.0, **runner_args(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(address[1] for address in runner.addresses if isinstance(address, tuple))
        async with httpx.AsyncClient(timeout=30.0) as http:
            graphql_url = f"http://127.0.0.1:{port}{settings.graphql_path}"
            yield Stack(name, graphql_url, dict(service_urls), http, app)
    finally:
        await runner.cleanup()
