"""The ``bff`` command as a user runs it: a real process, real signals, real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest

from demo.server import start_services

BFF = [sys.executable, "-m", "bff.cli"]
START_TIMEOUT_S = 30.0


@pytest.fixture
async def services() -> AsyncIterator[dict[str, str]]:
    """Demo services on free ports for the BFF process to call."""
    running = await start_services(ports=dict.fromkeys(("customers", "catalog", "sales", "playlists"), 0))
    async with running:
        yield running.urls


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any BFF_ variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BFF_")}
    env.update(extra)
    return env


async def start(args: list[str], env: Mapping[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``bff ARGS`` and return the process and the GraphiQL URL it prints when ready."""
    process = await asyncio.create_subprocess_exec(
        *BFF, *args, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    stderr = await process.stderr.read() if process.stderr else b""
                    pytest.fail(f"bff exited before it was ready: {stderr.decode()[-2000:]}")
                if line.startswith("GraphiQL: "):
                    return process, line.removeprefix("GraphiQL: ").strip()
    except BaseException:
        process.kill()
        await process.wait()
        raise


async def stop(process: asyncio.subprocess.Process) -> int:
    """Send SIGTERM and return the exit code (killing the process if it does not stop in 10 s)."""
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("bff did not stop within 10 s of SIGTERM")
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode is not None
    return process.returncode


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
