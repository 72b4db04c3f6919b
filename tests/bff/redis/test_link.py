"""The Redis link: key names, outages noticed once and skipped for a second, recovery."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from bff.redis.link import DOWN_S, RedisLink, RedisUnavailable
from tests.bff.redis.conftest import LinkFactory
from tests.support.redis import RedisServer, free_port


def test_keys_are_prefixed_and_tagged() -> None:
    """Plain keys start with the prefix; tagged keys put prefix and tag in one Cluster hash tag."""
    link = RedisLink("redis://user:secret@127.0.0.1:1/2", prefix="shop")
    assert link.key("cache", "catalog/tracks/3") == "shop:cache:catalog/tracks/3"
    assert link.tagged("events", "log") == "{shop:events}:log"
    assert link.where == "127.0.0.1:1/2"
    assert "secret" not in link.where


async def test_an_outage_fails_fast_then_recovers(
    redis_server: RedisServer, links: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused command marks Redis down: later commands fail at once without trying, one WARNING is
    logged; after DOWN_S a command tries again and the recovery is logged once."""
    link = links()
    assert await link.run(lambda redis: redis.ping())
    await redis_server.stop()
    caplog.set_level(logging.INFO, "bff.redis")
    with pytest.raises(RedisUnavailable):
        await link.run(lambda redis: redis.ping())
    tried: list[int] = []

    async def counted(redis: Redis) -> object:
        tried.append(1)
        return await redis.ping()

    with pytest.raises(RedisUnavailable):
        await link.run(counted)
    assert tried == [], "no command is tried while Redis counts as down"
    assert not link.available
    await redis_server.start()
    await asyncio.sleep(DOWN_S)
    assert await link.run(lambda redis: redis.ping())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if "reachable again" in r.message]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].message
    assert len(recoveries) == 1


async def test_ping_reports_latency_or_none() -> None:
    """/readyz's probe: milliseconds when Redis answers, None when nothing listens."""
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    try:
        assert await link.ping() is None
        assert not link.available
    finally:
        await link.aclose()
