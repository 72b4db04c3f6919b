"""Links to the module's own redis-server, one key prefix per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bff.redis.link import RedisLink
from tests.support.redis import RedisServer, prefix

LinkFactory = Callable[..., RedisLink]


@pytest.fixture
async def links(redis_server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[LinkFactory]:
    """Make links to the module's Redis sharing this test's prefix (one link = one instance)."""
    shared = prefix(request.node.name[:20])
    made: list[RedisLink] = []

    def make(*, url: str | None = None, timeout_s: float = 0.5) -> RedisLink:
        link = RedisLink(url or redis_server.url, prefix=shared, timeout_s=timeout_s, max_connections=8)
        made.append(link)
        return link

    yield make
    for link in made:
        await link.aclose()
