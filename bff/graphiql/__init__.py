"""GraphiQL served by the BFF itself, so the playground works offline and behind strict firewalls.

GraphiQL's built files come from npm packages pinned in ``bff/graphiql/package.json`` (with its
lockfile) and installed by the setup step ``npm ci --prefix bff/graphiql``; none of that JavaScript
is copied into the repository. ``ASSETS`` is the allow-list: only those files are served, each under
a URL that names its package and version (``/graphiql/assets/graphiql@3.8.3/graphiql.min.js``), so
browsers may cache them forever. Without the setup step the page loads the same files from unpkg,
pinned by Subresource Integrity hashes.

When:
- at start-up, ``find_assets_dir`` picks the installed files (hashing them, a few milliseconds);
- ``render_page`` builds the HTML once; ``assets_routes`` gives the routes that serve the files.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Literal

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

__all__ = [
    "ASSETS",
    "CACHE_CONTROL",
    "CDN_BASE",
    "CDN_PROBLEM",
    "DEFAULT_ASSETS_PREFIX",
    "LOCAL_PROBLEM",
    "SETUP_COMMAND",
    "Asset",
    "assets_routes",
    "find_assets_dir",
    "render_page",
]

logger = logging.getLogger(__name__)

SETUP_COMMAND = "npm ci --prefix bff/graphiql"
"""The setup step that installs the assets into ``bff/graphiql/node_modules``."""

DEFAULT_ASSETS_PREFIX = "/graphiql/assets"
"""URL path under which ``assets_routes`` serves the files."""

CDN_BASE = "https://unpkg.com"
"""Where the page loads the files from when they are not installed."""

CDN_PROBLEM = (
    f"This BFF does not serve GraphiQL's files itself, so the page loads them from {CDN_BASE}, which "
    "this browser cannot reach (no network, a firewall or a proxy in the way). To serve them from "
    f"the BFF, so the playground works offline: run <code>{SETUP_COMMAND}</code> in the bff source "
    "tree and restart it (<code>pip install</code> of bff runs it when <code>npm</code> is on the PATH), "
    "or point <code>BFF_GRAPHIQL_ASSETS_DIR</code> at a <code>node_modules</code> that holds them."
)
"""What the page says (HTML) when its scripts do not load from the CDN."""

LOCAL_PROBLEM = (
    "The page loads GraphiQL's files from this BFF (under <code>{}</code>) and they did not arrive or "
    "did not match their pinned hashes: see the BFF's log and its <code>BFF_GRAPHIQL_ASSETS_DIR</code>."
)
"""What the page says (HTML, ``{}``: the assets' URL path) when its scripts do not load from the BFF."""

CACHE_CONTROL = "public, max-age=31536000, immutable"
"""One year: every asset URL names a pinned package version, so its content never changes."""

_HERE = Path(__file__).resolve().parent
_BUNDLED_DIR = _HERE / "node_modules"
_PAGE = _HERE / "page.html"

_CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One file of a pinned npm package: where it lives in the package and on the CDN, and its hash.

    ``integrity`` is the Subresource Integrity value (``sha384-`` + base64) of the file as published
    on npm; the same value works for the unpkg copy and for the installed one.
    """

    package: str
    version: str
    path: str
    integrity: str

    @property
    def cdn_url(self) -> str:
        """The file on unpkg, e.g. ``https://unpkg.com/graphiql@3.8.3/graphiql.min.js``."""
        return f"{CDN_BASE}/{self.package}@{self.version}/{self.path}"

    @property
    def kind(self) -> Literal["script", "style"]:
        """``script`` for ``.js`` files, ``style`` for ``.css`` files."""
        return "style" if self.path.endswith(".css") else "script"

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` the file is served with."""
        return _CONTENT_TYPES[Path(self.path).suffix]

    def local_url(self, name: str, base: str) -> str:
        """The file served by the BFF under ``base``: ``{base}/{package}@{version}/{name}``."""
        return f"{base.rstrip('/')}/{self.package}@{self.version}/{name}"


ASSETS: Mapping[str, Asset] = MappingProxyType(
    {
        # Page order: styles in this order in <head>, then scripts in this order (React first).
        "react.production.min.js": Asset(
            package="react",
            version="18.2.0",
            path="umd/react.production.min.js",
            integrity="sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
        ),
        "react-dom.production.min.js": Asset(
            package="react-dom",
            version="18.2.0",
            path="umd/react-dom.production.min.js",
            integrity="sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
        ),
        "graphiql.min.js": Asset(
            package="graphiql",
            version="3.8.3",
            path="graphiql.min.js",
            integrity="sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
        ),
        "graphiql.min.css": Asset(
            package="graphiql",
            version="3.8.3",
            path="graphiql.min.css",
            integrity="sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
        ),
        "plugin-explorer.umd.js": Asset(
            package="@graphiql/plugin-explorer",
            version="1.0.2",
            path="dist/index.umd.js",
            integrity="sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
        ),
        "plugin-explorer.css": Asset(
            package="@graphiql/plugin-explorer",
            version="1.0.2",
            path="dist/style.css",
            integrity="sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
        ),
    }
)
"""The allow-list: public file name → pinned npm file. Nothing else is served."""


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def _problems(node_modules: Path) -> list[str]:
    """What is missing or different in ``node_modules`` compared with ``ASSETS``; empty if nothing."""
    problems = []
    for asset in ASSETS.values():
        file = node_modules / asset.package / asset.path
        if not file.is_file():
            problems.append(f"{asset.package}/{asset.path} is missing")
        elif _sri(file.read_bytes()) != asset.integrity:
            problems.append(f"{asset.package}/{asset.path} is not the one of {asset.package}@{asset.version}")
    return problems


def find_assets_dir(configured: Path | None) -> Path | None:
    """The ``node_modules`` directory to serve GraphiQL's files from, or ``None`` to use the CDN.

    ``configured`` (``BFF_GRAPHIQL_ASSETS_DIR``) wins and must hold every file of ``ASSETS``, byte for
    byte, else ``ValueError``. Without it: ``bff/graphiql/node_modules`` if the setup step filled it,
    else ``None`` (logged as a warning: the playground then needs unpkg.com).
    """
    if configured is not None:
        if problems := _problems(configured):
            raise ValueError(
                f"GraphiQL assets directory {configured} is unusable ({'; '.join(problems)}); "
                f"point it at the node_modules that `{SETUP_COMMAND}` fills"
            )
        return configured
    if problems := _problems(_BUNDLED_DIR):
        logger.warning(
            "GraphiQL assets not installed (%s); the playground loads them from %s. Run `%s` to serve them.",
            problems[0],
            CDN_BASE,
            SETUP_COMMAND,
        )
        return None
    return _BUNDLED_DIR


def _tag(name: str, asset: Asset, assets_base: str | None) -> str:
    # SRI on local files too: a wrong BFF_GRAPHIQL_ASSETS_DIR fails loudly in the browser.
    if assets_base is None:
        url, extra = asset.cdn_url, ' crossorigin="anonymous"'
    else:
        url, extra = asset.local_url(name, assets_base), ""
    attrs = f'integrity="{html.escape(asset.integrity)}"{extra}'
    if asset.kind == "style":
        return f'    <link rel="stylesheet" href="{html.escape(url)}" {attrs} />'
    return f'    <script src="{html.escape(url)}" {attrs}></script>'


def render_page(*, assets_base: str | None, graphql_path: str = "/graphql") -> str:
    """The GraphiQL page, to be served on GET ``graphql_path`` with ``Accept: text/html``.

    ``assets_base`` is the URL path ``assets_routes`` serves under (``DEFAULT_ASSETS_PREFIX``): every
    script and style is then local and the page names no other host. ``None`` loads them from unpkg
    with SRI hashes. The page sends queries to its own URL and subscriptions to the same URL with
    ``ws:``/``wss:``; ``graphql_path`` is only named in the text shown without JavaScript.
    """
    tags = {
        kind: "\n".join(_tag(name, a, assets_base) for name, a in ASSETS.items() if a.kind == kind)
        for kind in ("style", "script")
    }
    return Template(_PAGE.read_text(encoding="utf-8")).substitute(
        styles=tags["style"],
        scripts=tags["script"],
        graphql_path=html.escape(graphql_path),
        problem=CDN_PROBLEM if assets_base is None else LOCAL_PROBLEM.format(html.escape(assets_base)),
    )


def _file_handler(file: Path, content_type: str) -> Handler:
    headers = {
        hdrs.CONTENT_TYPE: content_type,
        hdrs.CACHE_CONTROL: CACHE_CONTROL,
        hdrs.X_CONTENT_TYPE_OPTIONS: "nosniff",
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(file, headers=headers)

    return handler


def assets_routes(assets_dir: Path, prefix: str = DEFAULT_ASSETS_PREFIX) -> list[web.RouteDef]:
    """GET (and HEAD) routes serving each file of ``ASSETS`` from ``assets_dir`` (a ``node_modules``).

    One fixed route per allow-listed file, so any other path under ``prefix`` is a 404 and no path
    can reach another file. Responses carry ``CACHE_CONTROL``, an ETag and Last-Modified, and honour
    conditional and range requests (aiohttp's ``FileResponse``).
    """
    if not prefix.startswith("/"):
        raise ValueError(f"prefix must start with '/': {prefix!r}")
    return [
        web.get(
            asset.local_url(name, prefix),
            _file_handler(assets_dir / asset.package / asset.path, asset.content_type),
        )
        for name, asset in ASSETS.items()
    ]
