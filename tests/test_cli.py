"""The ``bff`` command as a user runs it: a real process, real signals, real sockets."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest

from bff_chinook.demo.server import start_services
from tests.support.cli import BFF, clean_env, start, stop


@pytest.fixture
async def services() -> AsyncIterator[dict[str, str]]:
    """Demo services on free ports for the BFF process to call."""
    running = await start_services(ports=dict.fromkeys(("customers", "catalog", "sales", "playlists"), 0))
    async with running:
        yield running.urls


async def test_serve_answers_and_stops_cleanly_on_sigterm(services: dict[str, str]) -> None:
    """`bff serve --port 0` prints its GraphiQL URL, answers queries, and exits 0 on SIGTERM."""
    env = clean_env(**{f"BFF_SERVICE_{name.upper()}_URL": url for name, url in services.items()})
    process, url = await start(["serve", "--port", "0"], env)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(url, json={"query": '{ artist(id: "1") { name } }'})
        assert response.json() == {"data": {"artist": {"name": "AC/DC"}}}
    finally:
        code = await stop(process)
    assert code == 0


async def test_demo_runs_services_and_bff() -> None:
    """`bff demo` starts the four demo services and the BFF over them, all in one command."""
    process, url = await start(["demo", "--port", "0"], clean_env())
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                url,
                json={
                    "query": '{ customer(id: "1") { firstName invoices { id } } playlist(id: "1") { name } }'
                },
            )
        data = response.json()["data"]
        assert data["customer"]["firstName"] == "Luís"
        assert len(data["customer"]["invoices"]) == 7
        assert data["playlist"] == {"name": "Music"}
    finally:
        code = await stop(process)
    assert code == 0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"BFF_SERVICE_CATALOG_URL": "catalog:8080"}, "BFF_SERVICE_CATALOG_URL"),
        ({"BFF_PORT": "not-a-port"}, "BFF_PORT"),
        ({"BFF_GRAPHIQL_ASSETS_DIR": "/nonexistent"}, "BFF_GRAPHIQL_ASSETS_DIR"),
    ],
)
def test_bad_settings_exit_2_with_one_line(env: dict[str, str], variable: str) -> None:
    """A bad setting stops start-up with exit code 2 and one stderr line naming the variable."""
    result = subprocess.run([*BFF, "serve"], env=clean_env(**env), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert result.stdout == ""


def test_schema_prints_sdl() -> None:
    """`bff schema` prints the schema with the contract's root fields."""
    result = subprocess.run([*BFF, "schema"], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for field in (
        "customer(id: ID!): Customer",
        "tracks(first: Int",
        "genres: [Genre!]!",
        "totalCount: Int!",
    ):
        assert field in result.stdout


def test_short_hs256_secret_exits_2_without_showing_it() -> None:
    """An HS256 secret under 32 bytes (RFC 7518 §3.2) stops `bff serve` with exit 2, naming the
    variable but not the secret."""
    secret = "s" * 31
    result = subprocess.run(
        [*BFF, "serve"],
        env=clean_env(BFF_JWT_HS256_SECRET=secret),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "BFF_JWT_HS256_SECRET" in line
    assert "32 bytes" in line
    assert secret not in result.stderr
