"""The ``json_servers`` fixture: real json-server 0.17.4 processes over the Chinook data.

Import the fixture into a ``conftest.py`` to use it (``from tests.support.jsonserver import
json_servers``). Without json-server installed (``npm ci --prefix .ci``, or ``$BFFTEST_JSON_SERVER_BIN``)
tests that use it are skipped, and fail when ``CI=true``: CI must never skip them silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bff_chinook.demo.jsonserver import (
    JSON_SERVER_BIN_ENV,
    find_json_server,
    json_server_version,
    run_json_servers,
)
from tests.support.tools import missing

__all__ = ["JSON_SERVER_VERSION", "json_servers", "require_json_server"]

JSON_SERVER_VERSION = "0.17.4"
"""The version the BFF is proven against (pinned in ``.ci/package.json``)."""


def require_json_server() -> Path:
    """Return the json-server bin; skip the test without one, or fail it when ``CI=true``.

    A json-server of another version fails the test: 1.x has other flags and query conventions.
    """
    bin_path = find_json_server()
    if bin_path is None:
        missing(f"json-server (`npm ci --prefix .ci`, or set {JSON_SERVER_BIN_ENV})")
    version = json_server_version(bin_path)
    if version != JSON_SERVER_VERSION:
        pytest.fail(f"{bin_path} is json-server {version}, not {JSON_SERVER_VERSION}", pytrace=False)
    return bin_path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def json_servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """One json-server per Chinook service on a free 127.0.0.1 port: service -> base URL.

    Started once per session from copies of the data under a temporary directory, stopped at the
    end of the session. Tests share the servers: reset ``/_stats`` before counting, and undo writes.
    """
    bin_path = require_json_server()
    async with run_json_servers(bin_path, tmp_path_factory.mktemp("json-server")) as urls:
        yield urls
