"""The BFF as an Apollo Federation 2 subgraph (``BFF_FEDERATION=true``).

The gateway tests compose the BFF with a second subgraph written here, a reviews service whose
``Track`` entity adds ``reviews``, using ``@apollo/composition``, serve the supergraph with
``@apollo/gateway`` (Node, ``tests/federation/gateway.cjs``) and query fields of both through it,
counting the requests the demo services get: the BFF's entity fetches are batched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView

from bff.graph.schema import build_schema
from bff_chinook.demo.server import start_services
from tests.e2e.stack import Stack, run_bff
from tests.support.chinook import chinook_app, chinook_settings
from tests.support.tools import missing

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".ci" / "node_modules"
GATEWAY = Path(__file__).with_name("gateway.cjs")
ENTITIES = ("Album", "Artist", "Customer", "Invoice", "Playlist", "Track")
SERVICES = ("customers", "catalog", "sales", "playlists")


@pytest.fixture
async def subgraph() -> AsyncIterator[Stack]:
    """The BFF in federation mode over demo services of its own (so counts are this test's)."""
    services = await start_services(ports=dict.fromkeys(SERVICES, 0))
    async with services, run_bff("federation", services.urls, BFF_FEDERATION="true") as stack:
        yield stack


async def test_service_sdl_links_federation_2_and_keys_the_entities(subgraph: Stack) -> None:
    """``_service { sdl }`` links the Federation 2 spec and puts ``@key(fields: "id")`` on the entities."""
    body = await subgraph.post("{ _service { sdl } }")
    sdl = body["data"]["_service"]["sdl"]
    assert '@link(url: "https://specs.apollo.dev/federation/v2.' in sdl
    for name in ENTITIES:
        assert f'type {name} @key(fields: "id") {{' in sdl


async def test_entities_load_through_the_batched_loaders(subgraph: Stack) -> None:
    """Twelve track and four album representations: one GET per resource (the tracks' albums, 1 to 3,
    are those already asked for), results in order, an unknown id null."""
    representations = [{"__typename": "Track", "id": str(i)} for i in range(1, 13)]
    representations += [{"__typename": "Album", "id": str(i)} for i in (1, 2, 3, 99_999)]
    query = """query ($r: [_Any!]!) { _entities(representations: $r) {
        ... on Track { id name album { title } }
        ... on Album { id title }
    } }"""
    await subgraph.reset_counts()
    body = await subgraph.post(query, {"r": representations})
    assert "errors" not in body, body
    entities = body["data"]["_entities"]
    assert [entity and entity["id"] for entity in entities] == [*map(str, range(1, 13)), "1", "2", "3", None]
    assert entities[0]["name"] == "For Those About To Rock (We Salute You)"
    assert entities[0]["album"]["title"] == "For Those About To Rock We Salute You"
    assert (await subgraph.counts())["catalog"] == {"GET /tracks": 1, "GET /albums": 1}


def test_the_plain_schema_never_sees_the_keys() -> None:
    """Building the federated schema first leaves the plain schema's SDL without @key or _entities."""
    federated = build_schema(chinook_app, chinook_settings(federation=True)).as_str()
    plain = build_schema(chinook_app, chinook_settings()).as_str()
    assert "@key" in federated
    assert "@key" not in plain
    assert "_entities" not in plain
    assert plain + "\n" == (ROOT / "schema" / "schema.graphql").read_text(encoding="utf-8")


# A second subgraph, composed with the BFF through Apollo's own tools --------------------------

REVIEWS = [(str(track_id), f"review of track {track_id}", 1 + track_id % 5) for track_id in range(1, 13)]


@strawberry.type
class Review:
    body: str
    stars: int
    track_id: strawberry.Private[str]

    @strawberry.field
    def track(self) -> ReviewedTrack:
        return ReviewedTrack(id=strawberry.ID(self.track_id))


@strawberry.federation.type(name="Track", keys=["id"])
class ReviewedTrack:
    id: strawberry.ID

    @strawberry.field
    def reviews(self) -> list[Review]:
        return [Review(body=b, stars=s, track_id=t) for t, b, s in REVIEWS if t == self.id]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> ReviewedTrack:
        return cls(id=id)


@strawberry.type
class ReviewsQuery:
    @strawberry.field
    def top_reviews(self) -> list[Review]:
        return [Review(body=b, stars=s, track_id=t) for t, b, s in REVIEWS]


@contextlib.asynccontextmanager
async def reviews_subgraph() -> AsyncIterator[str]:
    """The reviews subgraph on a free 127.0.0.1 port; yields its GraphQL URL."""
    schema = strawberry.federation.Schema(query=ReviewsQuery, types=[ReviewedTrack])
    app = web.Application()
    app.router.add_route("*", "/graphql", GraphQLView(schema=schema))
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(address[1] for address in runner.addresses if isinstance(address, tuple))
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        await runner.cleanup()


def require_gateway_tools() -> str:
    """``node``, with @apollo/composition, @apollo/gateway and @apollo/server from ``.ci``."""
    node = shutil.which("node")
    packages = ("@apollo/composition", "@apollo/gateway", "@apollo/server")
    if node is None or not all((NODE_MODULES / name / "package.json").is_file() for name in packages):
        missing("node with @apollo/composition, @apollo/gateway and @apollo/server (`npm ci --prefix .ci`)")
    return node


@contextlib.asynccontextmanager
async def gateway(subgraphs: dict[str, str]) -> AsyncIterator[str]:
    """Apollo Gateway over the composed ``subgraphs`` (name -> URL); yields its URL."""
    node = require_gateway_tools()
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    process = await asyncio.create_subprocess_exec(
        node,
        str(GATEWAY),
        *(f"{name}={url}" for name, url in subgraphs.items()),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(60):
            line = (await process.stdout.readline()).decode()
        if not line.startswith("GATEWAY "):
            error = (await process.stderr.read()).decode()
            pytest.fail(f"the gateway did not start: {line}{error[-3000:]}")
        yield line.removeprefix("GATEWAY ").strip()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def through(url: str, query: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(url, json={"query": query})
    body: dict[str, Any] = response.json()
    return body


async def test_the_gateway_answers_fields_of_both_subgraphs_with_batched_entity_fetches(
    subgraph: Stack,
) -> None:
    """Reviews (their subgraph) with their tracks' names, albums and artists (the BFF): composed by
    @apollo/composition, served by @apollo/gateway; the BFF loads 12 tracks in one GET, then their
    albums and artists in one GET each."""
    async with (
        reviews_subgraph() as reviews_url,
        gateway({"bff": subgraph.graphql_url, "reviews": reviews_url}) as url,
    ):
        await subgraph.reset_counts()
        body = await through(
            url, "{ topReviews { stars track { id name album { title artist { name } } } } }"
        )
        assert "errors" not in body, body
        reviews = body["data"]["topReviews"]
        assert len(reviews) == 12
        assert reviews[0]["track"]["name"] == "For Those About To Rock (We Salute You)"
        assert reviews[0]["track"]["album"]["artist"]["name"] == "AC/DC"
        assert (await subgraph.counts())["catalog"] == {"GET /tracks": 1, "GET /albums": 1, "GET /artists": 1}

        body = await through(url, '{ track(id: "3") { name reviews { body stars } } }')
        assert "errors" not in body, body
        assert body["data"]["track"] == {
            "name": "Fast As a Shark",
            "reviews": [{"body": "review of track 3", "stars": 4}],
        }
