"""The GraphiQL playground in a real browser: offline, queries, and subscriptions over WebSockets."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bff_chinook.demo.server import ALL_PORTS, start_services
from tests.e2e.stack import run_bff
from tests.support.tools import missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("playground.mjs")
PUPPETEER = ROOT / ".ci" / "node_modules" / "puppeteer-core" / "package.json"


@pytest.fixture
async def services() -> AsyncIterator[dict[str, str]]:
    """Demo services of this test alone (it adds tracks to a playlist)."""
    running = await start_services(ports=dict.fromkeys(ALL_PORTS, 0))
    async with running:
        yield running.urls


async def test_playground_runs_queries_and_subscriptions_offline(services: dict[str, str]) -> None:
    """Chromium, reaching only 127.0.0.1, loads GraphiQL, runs a query and gets a subscription event."""
    node = shutil.which("node")
    # BFFTEST_, not BFF_: the BFF refuses unknown BFF_* variables, and it inherits this environment.
    chromium = os.environ.get("BFFTEST_CHROMIUM") or shutil.which("chromium")
    if node is None or chromium is None or not PUPPETEER.is_file():
        missing("node, Chromium and puppeteer-core (`apt-get install chromium`, `npm ci --prefix .ci`)")
    assert node is not None
    assert chromium is not None
    async with run_bff("playground", services) as stack:
        process = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            stack.graphql_url,
            chromium,
            str(ROOT / ".ci" / "package.json"),
            stdout=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(90):
            stdout, _ = await process.communicate()
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    assert report["errors"] == []
    origin = stack.graphql_url.removesuffix("/graphql")
    assert all(url.startswith(origin) for url in report["requests"]), report["requests"]
    assert any("/graphiql/assets/graphiql@" in url for url in report["requests"])
    assert report["query"] == {"data": {"customer": {"firstName": "Luís"}}}
    assert "graphql-transport-ws" in report["wsProtocols"]
    event = report["subscription"]["data"]["playlistUpdated"]
    assert event["change"] == "TRACK_ADDED"
    assert event["playlist"] == {"name": "Movies"}
