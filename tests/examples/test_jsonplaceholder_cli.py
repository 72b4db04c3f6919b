"""The example app through the ``bff`` command, run from the repository root as README.md says."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from examples.jsonplaceholder.data import load_data
from tests.support.jsonserver import require_json_server
from tests.support.processes import BFF, clean_env, start, stop

REPO = Path(__file__).resolve().parents[2]
APP = "examples.jsonplaceholder:app"
SERVE = ["serve", "--app", APP]
"""``bff serve`` as README.md gives it (the test adds ``--port 0``)."""
SCHEMA = ["schema", "--app", APP]
DEMO = ["demo", "--app", APP]
"""``bff demo`` as README.md gives it (the test adds ``--port 0``)."""
QUERY = '{ greet post(id: "1") { title user { name } } }'

DATA = load_data()
ANSWER = {
    "data": {
        "greet": "Hello World!",
        "post": {"title": DATA["posts"][0]["title"], "user": {"name": DATA["users"][0]["name"]}},
    }
}


async def test_serve_runs_the_example_from_the_repository_root(jsonplaceholder_url: str) -> None:
    """``bff serve --app examples.jsonplaceholder:app`` in the repository root serves the example over the
    json-server ``BFF_SERVICE_JSONPLACEHOLDER_URL`` names, and exits 0 on SIGTERM."""
    env = clean_env(BFF_SERVICE_JSONPLACEHOLDER_URL=jsonplaceholder_url)
    process, url = await start([*SERVE, "--port", "0"], env, cwd=REPO)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(url, json={"query": QUERY})
        assert response.json() == ANSWER
    finally:
        code = await stop(process)
    assert code == 0


def test_schema_prints_the_example_sdl() -> None:
    """``bff schema --app examples.jsonplaceholder:app`` prints the example's types and root fields."""
    result = subprocess.run(
        [*BFF, *SCHEMA], env=clean_env(), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for sdl in ("type Post {", "type User {", "type Comment {", "posts: [Post!]!", "post(id: ID!): Post"):
        assert sdl in result.stdout


def test_the_app_is_found_only_from_the_repository_root(tmp_path: Path) -> None:
    """Outside the repository root the example is not importable: ``bff`` exits 2 with one line saying so."""
    result = subprocess.run(
        [*BFF, *SCHEMA], env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("bff: bad app (--app): cannot import 'examples.jsonplaceholder'")
    assert len(result.stderr.strip().splitlines()) == 1


async def test_demo_runs_json_server_and_the_bff_then_stops_both(tmp_path: Path) -> None:
    """``bff demo --app examples.jsonplaceholder:app`` starts json-server from ``PATH`` over the shipped data,
    serves the example over it, and on SIGTERM stops json-server too."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "json-server").symlink_to(require_json_server())  # found as `json-server` on PATH
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    printed: list[str] = []
    process, url = await start([*DEMO, "--port", "0"], env, cwd=REPO, printed=printed)
    try:
        [service_url] = [
            line.removeprefix("demo jsonplaceholder service: ")
            for line in printed
            if line.startswith("demo jsonplaceholder service: ")
        ]
        async with httpx.AsyncClient() as client:
            response = await client.post(url, json={"query": QUERY})
            assert response.json() == ANSWER
            write = await client.post(f"{service_url}/posts", json={"title": "not stored"})
            assert write.status_code == 403  # read-only: the shipped db.json never changes
    finally:
        code = await stop(process)
    assert code == 0
    host, port = httpx.URL(service_url).host, httpx.URL(service_url).port
    with pytest.raises(ConnectionRefusedError):  # json-server stopped with the BFF
        await asyncio.open_connection(host, port)
