"""Start the demo services on TCP ports: one aiohttp server per Chinook service, stopped together.

``bff demo`` serves them on ``ALL_PORTS`` (or all on free ports, :func:`chinook_demo`); tests pass
port 0 for ephemeral ports and read the bound URLs back::

    async with await start_services(ports={"catalog": 0}) as services:
        httpx.get(services.urls["catalog"] + "/tracks/1")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Final

from aiohttp import web

from bff_chinook.demo.chinook import DEMO_PORTS, Record, load_chinook, service_data
from bff_chinook.demo.faults import FaultConfig
from bff_chinook.demo.payments import (
    PAYMENTS,
    PAYMENTS_PORT,
    PAYMENTS_SERVICE,
    PaymentsConfig,
    create_payments_app,
)
from bff_chinook.demo.rest import create_service_app

__all__ = ["ALL_PORTS", "SHUTDOWN_TIMEOUT_S", "DemoServices", "chinook_demo", "start_services"]

PAYMENTS_WEBHOOK_PATH: Final = "/webhooks/payments"
"""Where the BFF takes the payments service's webhooks (the Chinook app's ``PAYMENTS_WEBHOOK``)."""

ALL_PORTS: Final = {**DEMO_PORTS, PAYMENTS_SERVICE: PAYMENTS_PORT}
"""Every demo service and its ``bff demo`` port: the Chinook services and the payments service."""

SHUTDOWN_TIMEOUT_S: Final = 0.5
"""How long ``close()`` waits for requests in flight before cancelling them, in seconds."""


class DemoServices:
    """Running demo services: ``urls`` and ``apps`` by service name; ``close()`` or ``async with`` stops them.

    Attributes:
        urls: service name -> base URL without a trailing slash, e.g. ``"http://127.0.0.1:8002"``.
        apps: service name -> its aiohttp application (for ``STORE``, ``STATS``, ``FAULTS``).
    """

    def __init__(self, urls: dict[str, str], apps: dict[str, web.Application], runners: list[web.AppRunner]):
        self.urls = urls
        self.apps = apps
        self._runners = runners

    def point_webhooks(self, bff_base_url: str, secret: str) -> None:
        """Send the payments service's webhooks to the BFF at ``bff_base_url``, signed with ``secret``."""
        app = self.apps.get(PAYMENTS_SERVICE)
        if app is not None:
            url = f"{bff_base_url}{PAYMENTS_WEBHOOK_PATH}"
            app[PAYMENTS].configure(webhook_url=url, webhook_secret=secret)

    async def close(self) -> None:
        """Stop every service; hanging requests are dropped, so this takes about a second at most."""
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def __aenter__(self) -> DemoServices:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_services(
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    *,
    faults: Mapping[str, FaultConfig] | None = None,
    data: dict[str, list[Record]] | None = None,
    payments: PaymentsConfig | None = None,
) -> DemoServices:
    """Start the services named in ``ports`` (service -> TCP port, 0 for any free one) on ``host``.

    ``ports`` defaults to ``ALL_PORTS`` (every service). ``faults`` gives services an initial fault
    config; ``data`` is the Chinook data (resource -> records) to serve instead of a fresh load. Each
    service copies its own resources, so services never share state with each other or with ``data``.
    ``payments`` configures the payments service (see :mod:`demo.payments`; its app's ``PAYMENTS``
    can change it later, e.g. to point its webhooks at a BFF started afterwards).

    Raises:
        ValueError: ``ports`` or ``faults`` names an unknown service, or ``faults`` one not started.
        OSError: a port cannot be bound; the services started so far are stopped first.
    """
    ports = ALL_PORTS if ports is None else ports
    faults = faults or {}
    unknown = sorted(set(ports) - set(ALL_PORTS))
    if unknown:
        raise ValueError(f"unknown services: {', '.join(unknown)} (known: {', '.join(ALL_PORTS)})")
    not_started = sorted(set(faults) - set(ports))
    if not_started:
        raise ValueError(f"faults given for services not started: {', '.join(not_started)}")
    source = load_chinook() if data is None else data
    runners: list[web.AppRunner] = []
    services = DemoServices({}, {}, runners)
    try:
        for service, port in ports.items():
            if service == PAYMENTS_SERVICE:
                app = create_payments_app(config=payments, faults=faults.get(service))
            else:
                app = create_service_app(service, service_data(service, source), faults=faults.get(service))
            runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_port = runner.addresses[0][1]
            services.urls[service] = f"http://{_url_host(host)}:{bound_port}"
            services.apps[service] = app
    except BaseException:
        await services.close()
        raise
    return services


@asynccontextmanager
async def chinook_demo(host: str, free_ports: bool) -> AsyncIterator[DemoServices]:
    """Every demo service on ``host``: on ``ALL_PORTS``, or on free ports (``free_ports``), so two
    demos run side by side. The ``demo`` of the Chinook app (``bff demo``, ``bff demo-services``)."""
    ports = dict.fromkeys(ALL_PORTS, 0) if free_ports else ALL_PORTS
    async with await start_services(host, ports) as services:
        yield services


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
