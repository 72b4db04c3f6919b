"""Fixtures of the example apps' tests: json-server 0.17.4 over the JSONPlaceholder data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bff_chinook.demo.jsonserver import run_json_servers
from examples.jsonplaceholder.data import load_data
from tests.support.jsonserver import require_json_server


@pytest.fixture(scope="session")
async def jsonplaceholder_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Base URL of one json-server over a copy of the example's data, with ``/_stats`` counters.

    Shared by the session: tests only read, and reset the counters before counting.
    """
    directory = tmp_path_factory.mktemp("jsonplaceholder")
    dbs = {"jsonplaceholder": load_data()}
    async with run_json_servers(require_json_server(), directory, dbs=dbs) as urls:
        yield urls["jsonplaceholder"]
