"""The ``bff`` command as a user runs it: a real process, real signals, real sockets."""

from __future__ import annotations

import asyncio
import re
import subprocess
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bff import cli
from bff.settings import load_settings
from bff_chinook.demo.server import start_services
from tests.support.processes import BFF, clean_env, post, start, start_lines, stop

ARTIST_QUERY = {"query": '{ artist(id: "1") { name } }'}
DEMO_SERVICES = ("CUSTOMERS", "CATALOG", "SALES", "PLAYLISTS", "PAYMENTS")
SERVICE_LINE = re.compile(r"BFF_SERVICE_(?P<name>[A-Z]+)_URL=(?P<url>http://127\.0\.0\.1:(?P<port>\d+))")
HELLO_APP = textwrap.dedent(
    """
    import strawberry

    import bff


    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self) -> str:
            return "world"


    app = bff.App(name="hello", query=Query, services={})
    """
)


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


async def test_two_demos_run_side_by_side() -> None:
    """Two `bff demo --port 0` put their services and BFFs on free ports, so both run and answer at once."""
    (first, first_url), (second, second_url) = await asyncio.gather(
        start(["demo", "--port", "0"], clean_env()), start(["demo", "--port", "0"], clean_env())
    )
    try:
        assert first_url != second_url
        answers = await asyncio.gather(post(first_url, ARTIST_QUERY), post(second_url, ARTIST_QUERY))
        assert answers == [{"data": {"artist": {"name": "AC/DC"}}}] * 2
    finally:
        codes = await asyncio.gather(stop(first), stop(second))
    assert codes == [0, 0]


async def test_demo_services_lines_are_the_environment_of_serve() -> None:
    """`bff demo-services --free-ports` prints one BFF_SERVICE_<NAME>_URL line per service; a `bff serve`
    given exactly those lines as its environment answers from those services."""
    services, lines = await start_lines(
        [*BFF, "demo-services", "--free-ports"],
        clean_env(),
        ready=lambda lines: len(lines) == len(DEMO_SERVICES),
    )
    try:
        matches = [SERVICE_LINE.fullmatch(line) for line in lines]
        assert all(matches), lines
        found = {m["name"]: m for m in matches if m}
        assert sorted(found) == sorted(DEMO_SERVICES)
        assert len({m["port"] for m in found.values()}) == len(DEMO_SERVICES)
        env = clean_env(**dict(line.split("=", 1) for line in lines))
        process, url = await start(["serve", "--port", "0"], env)
        try:
            assert await post(url, ARTIST_QUERY) == {"data": {"artist": {"name": "AC/DC"}}}
        finally:
            assert await stop(process) == 0
    finally:
        code = await stop(services)
    assert code == 0


@pytest.mark.parametrize("command", ["serve", "demo", "demo-services", "schema"])
def test_unknown_app_exits_2_with_one_line(command: str) -> None:
    """Every command given `--app nope:app` exits 2 with one stderr line naming the option and module."""
    result = subprocess.run(
        [*BFF, command, "--app", "nope:app"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--app" in lines[0]
    assert "'nope'" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("raise RuntimeError('no database')", "RuntimeError: no database"),
        ("app = 42", "is not a bff.App (got int)"),
        ("", "has no attribute 'app'"),
    ],
)
def test_broken_app_exits_2_with_one_line(tmp_path: Path, source: str, reason: str) -> None:
    """An app module that fails on import, or lacks a bff.App, gives one line naming BFF_APP and why."""
    (tmp_path / "broken_app.py").write_text(source + "\n")
    result = subprocess.run(
        [*BFF, "schema"],
        env=clean_env(BFF_APP="broken_app:app"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BFF_APP" in lines[0]
    assert reason in lines[0]


def test_bff_app_names_the_app_and_the_option_wins(tmp_path: Path) -> None:
    """BFF_APP selects the app (found in the working directory); `--app` wins over it."""
    (tmp_path / "hello_app.py").write_text(HELLO_APP)
    by_env = subprocess.run(
        [*BFF, "schema"],
        env=clean_env(BFF_APP="hello_app:app"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    by_option = subprocess.run(
        [*BFF, "schema", "--app", "hello_app:app"],
        env=clean_env(BFF_APP="nope:app"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for result in (by_env, by_option):
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "type Query {\n  hello: String!\n}"


async def test_serve_runs_the_app_bff_app_names(tmp_path: Path) -> None:
    """`bff serve` with BFF_APP serves that app: its own fields answer, with no Chinook service."""
    (tmp_path / "hello_app.py").write_text(HELLO_APP)
    process, url = await start(["serve", "--port", "0"], clean_env(BFF_APP="hello_app:app"), cwd=tmp_path)
    try:
        assert await post(url, {"query": "{ hello }"}) == {"data": {"hello": "world"}}
    finally:
        code = await stop(process)
    assert code == 0


@pytest.mark.parametrize(
    ("host", "printed", "webhooks_to"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://0.0.0.0:8000", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000", "http://[::1]:8000"),
        ("::", "http://[::]:8000", "http://[::1]:8000"),
    ],
)
def test_urls_of_a_bound_host(host: str, printed: str, webhooks_to: str) -> None:
    """The printed URL brackets an IPv6 host, and demo webhooks go to a loopback address that reaches it."""
    assert cli._base_url(host, 8000) == printed
    assert cli._base_url(cli._reachable(host), 8000) == webhooks_to


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


def test_production_profile_without_authentication_exits_2() -> None:
    """`BFF_PROFILE=production bff serve` without credentials configured exits 2 with one line."""
    result = subprocess.run(
        [*BFF, "serve"], env=clean_env(BFF_PROFILE="production"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "BFF_PROFILE" in line


@pytest.mark.parametrize(
    ("environ", "warned"),
    [
        ({"BFF_HOST": "0.0.0.0"}, True),
        ({"BFF_HOST": "bff.internal"}, True),
        ({"BFF_HOST": "127.0.0.2"}, False),
        ({"BFF_HOST": "::1"}, False),
        ({"BFF_HOST": "localhost"}, False),
        (
            {
                "BFF_HOST": "0.0.0.0",
                "BFF_PROFILE": "production",
                "BFF_API_KEYS": "{}",
                "BFF_JWT_HS256_SECRET": "k" * 32,
            },
            False,
        ),
    ],
)
def test_a_public_address_without_the_production_profile_is_warned_about(
    environ: dict[str, str], warned: bool
) -> None:
    """`bff serve` warns when it would listen beyond loopback with the development profile."""
    settings = load_settings(environ, services={})
    assert cli.exposed_in_development(settings) is warned
