"""GraphiQL served offline: the page, the allow-listed asset routes and the CDN fallback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bff import graphiql
from bff.graphiql import ASSETS, CDN_PROBLEM, DEFAULT_ASSETS_PREFIX, SETUP_COMMAND
from tests.support.tools import missing

CONTENT_TYPES = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class AssetTags(HTMLParser):
    """Collects the attributes of every ``<script src>`` and ``<link rel="stylesheet">``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if (tag == "script" and attributes.get("src")) or (
            tag == "link" and attributes.get("rel") == "stylesheet"
        ):
            self.tags.append({"tag": tag, **attributes})


def asset_tags(page: str) -> list[dict[str, str | None]]:
    parser = AssetTags()
    parser.feed(page)
    return parser.tags


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@pytest.fixture
def assets_dir() -> Path:
    """The installed ``node_modules``; fails on CI and skips elsewhere when the setup step was not run."""
    found = graphiql.find_assets_dir(None)
    if found is None:
        missing(f"GraphiQL assets (`{SETUP_COMMAND}`)")
    return found


@pytest.fixture
async def client(assets_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for a tiny app on 127.0.0.1 serving the local page on /graphql and the assets."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=graphiql.render_page(assets_base=DEFAULT_ASSETS_PREFIX), content_type="text/html"
        )

    app = web.Application()
    app.router.add_routes(graphiql.assets_routes(assets_dir))
    app.router.add_get("/graphql", page)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(base_url=str(server.make_url(""))) as http:
            yield http
    finally:
        await server.close()


async def test_local_page_names_no_other_host(client: httpx.AsyncClient) -> None:
    """With the assets installed the page references no CDN and no absolute URL at all."""
    response = await client.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "unpkg" not in response.text
    assert "://" not in response.text
    assert len(asset_tags(response.text)) == len(ASSETS)


async def test_every_asset_of_the_page_is_served(client: httpx.AsyncClient) -> None:
    """Every script and stylesheet of the local page answers 200 with its type, cache policy and hash."""
    page = (await client.get("/graphql", headers={"Accept": "text/html"})).text

    for tag in asset_tags(page):
        url = tag["src"] if tag["tag"] == "script" else tag["href"]
        assert url is not None
        assert url.startswith(f"{DEFAULT_ASSETS_PREFIX}/")
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == CONTENT_TYPES[Path(url).suffix], url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(response.content) > 500, url
        assert sri(response.content) == tag["integrity"], url


async def test_versioned_urls(client: httpx.AsyncClient) -> None:
    """Asset URLs name the pinned package version, so a version bump busts browser caches."""
    response = await client.head(f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/graphiql.min.js")

    assert response.status_code == 200
    assert ASSETS["graphiql.min.js"].local_url("graphiql.min.js", DEFAULT_ASSETS_PREFIX) == (
        "/graphiql/assets/graphiql@3.8.3/graphiql.min.js"
    )


@pytest.mark.parametrize(
    "path",
    [
        f"{DEFAULT_ASSETS_PREFIX}",
        f"{DEFAULT_ASSETS_PREFIX}/",
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/graphiql.js",
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/package.json",
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.2/graphiql.min.js",
        f"{DEFAULT_ASSETS_PREFIX}/react@18.2.0/umd/react.development.js",
        f"{DEFAULT_ASSETS_PREFIX}/react@18.2.0/react.production.min.js.map",
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/..%2f..%2fpackage.json",
        f"{DEFAULT_ASSETS_PREFIX}/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/%2e%2e%2fgraphiql.js",
    ],
)
async def test_files_off_the_allow_list_are_404(client: httpx.AsyncClient, path: str) -> None:
    """Paths that are not exactly an allow-listed asset URL answer 404, encoded traversal included."""
    response = await client.get(path)

    assert response.status_code == 404


@pytest.mark.parametrize(
    "raw_path",
    [
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/../../../../pyproject.toml",
        f"{DEFAULT_ASSETS_PREFIX}/graphiql@3.8.3/../graphiql.js",
        f"{DEFAULT_ASSETS_PREFIX}/../../etc/passwd",
    ],
)
async def test_raw_dot_segments_are_404(client: httpx.AsyncClient, raw_path: str) -> None:
    """Unnormalised ``..`` segments sent on the wire (httpx would normalise them) answer 404."""
    url = client.base_url
    assert url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(f"GET {raw_path} HTTP/1.1\r\nHost: {url.host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()

    assert status_line.split()[1] == b"404"


def test_cdn_page_pins_every_file_with_integrity() -> None:
    """Without local assets every script and stylesheet comes from unpkg with an SRI hash and CORS."""
    page = graphiql.render_page(assets_base=None)
    tags = asset_tags(page)

    assert len(tags) == len(ASSETS)
    for tag in tags:
        url = tag["src"] if tag["tag"] == "script" else tag["href"]
        assert url is not None
        assert url.startswith("https://unpkg.com/")
        assert (tag["integrity"] or "").startswith("sha384-")
        assert tag["crossorigin"] == "anonymous"


def test_page_speaks_to_its_own_url_over_http_and_websockets() -> None:
    """The page builds its fetcher from its own URL, with a ws:/wss: subscription URL and the explorer."""
    page = graphiql.render_page(assets_base=DEFAULT_ASSETS_PREFIX)

    assert "GraphiQL.createFetcher({ url, subscriptionUrl })" in page
    assert 'url.replace(/^http/, "ws")' in page
    assert "GraphiQLPluginExplorer.explorerPlugin()" in page
    assert "isHeadersEditorEnabled: true" in page


def test_configured_dir_without_the_files_is_an_error(tmp_path: Path) -> None:
    """A configured assets directory that lacks the pinned files fails at start-up, naming the setup step."""
    with pytest.raises(ValueError, match="npm ci --prefix bff/graphiql"):
        graphiql.find_assets_dir(tmp_path)


def test_configured_dir_with_different_bytes_is_an_error(tmp_path: Path) -> None:
    """A configured assets directory whose files differ from the pinned versions is rejected."""
    for asset in ASSETS.values():
        file = tmp_path / asset.package / asset.path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("/* not the pinned file */")

    with pytest.raises(ValueError, match="is not the one of"):
        graphiql.find_assets_dir(tmp_path)


def test_configured_dir_with_the_files_is_used(assets_dir: Path) -> None:
    """A configured assets directory holding the pinned files is served as is."""
    assert graphiql.find_assets_dir(assets_dir) == assets_dir


def problem_box(page: str) -> str:
    """The hidden explanation the page shows when GraphiQL's scripts do not load."""
    found = re.search(r'<div id="graphiql-problem" hidden>(.*?)</div>', page, re.DOTALL)
    assert found is not None
    return found.group(1)


def test_cdn_page_says_why_when_unpkg_is_out_of_reach() -> None:
    """The CDN page carries a plain explanation (unpkg.com, the setup step, BFF_GRAPHIQL_ASSETS_DIR)
    and shows it when a script failed or is still missing after a few seconds."""
    page = graphiql.render_page(assets_base=None)
    problem = problem_box(page)

    assert CDN_PROBLEM in problem
    assert "https://unpkg.com" in problem
    assert f"<code>{SETUP_COMMAND}</code>" in problem
    assert "BFF_GRAPHIQL_ASSETS_DIR" in problem
    assert "POST <code>/graphql</code>" in problem
    # Shown at once when a global is missing after the scripts, or after STALL_MS while one hangs.
    assert '["React", "ReactDOM", "GraphiQL", "GraphiQLPluginExplorer"].filter' in page
    assert "setTimeout(() => showProblem(" in page
    assert page.index("const STALL_MS") < page.index("<script src=") < page.index("clearTimeout(stalled)")


def test_local_page_says_to_check_the_bff_when_its_files_do_not_load() -> None:
    """With local assets the explanation names the assets path and BFF_GRAPHIQL_ASSETS_DIR, not unpkg."""
    problem = problem_box(graphiql.render_page(assets_base=DEFAULT_ASSETS_PREFIX))

    assert f"<code>{DEFAULT_ASSETS_PREFIX}</code>" in problem
    assert "BFF_GRAPHIQL_ASSETS_DIR" in problem
    assert "unpkg" not in problem


async def test_offline_browser_shows_why_instead_of_loading_forever() -> None:
    """Headless Chromium that reaches only 127.0.0.1 shows the explanation where GraphiQL would be."""
    chromium = os.environ.get("BFFTEST_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        missing("Chromium (`apt-get install chromium`)")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=graphiql.render_page(assets_base=None), content_type="text/html")

    app = web.Application()
    app.router.add_get("/graphql", page)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        with tempfile.TemporaryDirectory() as profile:
            process = await asyncio.create_subprocess_exec(
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--dump-dom",
                str(server.make_url("/graphql")),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            async with asyncio.timeout(60):
                dom, _ = await process.communicate()
    finally:
        await server.close()

    body = dom.decode()
    shown = re.search(r'<div id="graphiql"><div id="graphiql-problem">(.*?)</div></div>', body, re.DOTALL)
    assert shown is not None, body[-3000:]
    assert "GraphiQL could not load its scripts" in shown.group(1)
    assert SETUP_COMMAND in shown.group(1)
    assert "Loading GraphiQL" not in shown.group(0)
