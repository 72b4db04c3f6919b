"""End-to-end fixtures: the BFF over our demo services and over real json-server instances."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bff_chinook.demo.server import start_services
from tests.e2e.chinook_index import Chinook
from tests.e2e.stack import Stack, run_bff


@pytest.fixture(scope="session")
def chinook() -> Chinook:
    """The shipped data set, indexed."""
    return Chinook()


@pytest.fixture(scope="session")
async def demo_services() -> AsyncIterator[dict[str, str]]:
    """Our four demo REST services on free 127.0.0.1 ports: service -> base URL."""
    services = await start_services(ports=dict.fromkeys(("customers", "catalog", "sales", "playlists"), 0))
    async with services:
        yield services.urls


@pytest.fixture(scope="session")
async def demo_stack(demo_services: dict[str, str]) -> AsyncIterator[Stack]:
    """The BFF over the demo services."""
    async with run_bff("demo", demo_services) as stack:
        yield stack


@pytest.fixture(scope="session")
async def json_stack(json_servers: dict[str, str]) -> AsyncIterator[Stack]:
    """The BFF over json-server 0.17.4, one process per service, serving the same data."""
    async with run_bff("json-server", json_servers) as stack:
        yield stack


@pytest.fixture(params=["demo", "json-server"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """The BFF over each kind of downstream server (sync: async fixtures cannot look others up)."""
    chosen: Stack = request.getfixturevalue("demo_stack" if request.param == "demo" else "json_stack")
    return chosen


@pytest.fixture
async def stack(any_stack: Stack) -> Stack:
    """The BFF over each kind of downstream server, with request counters reset."""
    await any_stack.reset_counts()
    return any_stack
