"""Rate limits over Redis: one count for every instance; open, with a log line, while Redis is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest

from bff.rate_limit import RateLimiter
from bff.shared import shared_state
from tests.support.chinook import chinook_settings
from tests.support.redis import RedisServer, prefix

Instances = Callable[[], RateLimiter]


@pytest.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[Instances]:
    """Make rate limiters as separate instances have them (5/minute, one Redis, one prefix)."""
    settings = chinook_settings(
        {
            "BFF_REDIS_URL": redis_server.url,
            "BFF_REDIS_PREFIX": prefix("limits"),
            "BFF_RATE_LIMIT": "5/minute",
        }
    )
    async with AsyncExitStack() as stack:

        def make() -> RateLimiter:
            state = shared_state(settings)
            assert state.link is not None
            stack.push_async_callback(state.link.aclose)
            made = RateLimiter.from_settings(
                settings, storage=state.rate_limit_storage, available=state.rate_limit_available
            )
            assert made is not None
            return made

        yield make


async def test_requests_on_two_instances_count_against_one_limit(limiter: Instances) -> None:
    """Three requests on A and two on B use up 5/minute; the sixth, on either, is refused."""
    a, b = limiter(), limiter()
    for instance in (a, b, a, b, a):
        assert await instance.hit("customer:1") is None
    assert await b.hit("customer:1") is not None
    assert await a.hit("customer:1") is not None
    assert await a.hit("customer:2") is None, "another key has its own count"


async def test_without_redis_the_limit_fails_open_and_says_so(
    redis_server: RedisServer, limiter: Instances, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: requests pass uncounted, each is counted in failed_open, and one WARNING says the limit
    is not enforced; once Redis is back the limit holds again (logged at INFO)."""
    a = limiter()
    caplog.set_level(logging.INFO, "bff.rate_limit")
    await redis_server.stop()
    try:
        for _ in range(10):
            assert await a.hit("customer:1") is None
    finally:
        await redis_server.start()
    assert a.failed_open == 10
    assert [r.levelname for r in caplog.records].count("WARNING") == 1
    await asyncio.sleep(1.0)
    for _ in range(5):
        assert await a.hit("customer:1") is None
    assert await a.hit("customer:1") is not None
    assert "enforced again" in caplog.text
