"""APQ documents in Redis: registered on one instance, run by hash on another; bounded; bypassed
while Redis is down."""

from __future__ import annotations

import pytest

from bff.persisted import sha256_hex
from bff.redis.queries import RedisQueryStore
from tests.bff.redis.conftest import LinkFactory
from tests.support.redis import RedisServer


async def test_a_document_registered_on_one_instance_is_found_on_another(links: LinkFactory) -> None:
    """A sets, B gets (from Redis, then from its own memory)."""
    a, b = RedisQueryStore(links(), max_entries=10), RedisQueryStore(links(), max_entries=10)
    document = "{ genres { name } }"
    await a.set(sha256_hex(document), document)
    assert await b.get(sha256_hex(document)) == document
    assert await b.get(sha256_hex("{ other }")) is None


async def test_the_shared_store_keeps_the_most_recently_used(
    links: LinkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past max_entries, registering drops the least recently used documents from Redis; a lookup
    counts as a use."""
    link = links()
    writer, reader = RedisQueryStore(link, max_entries=3), RedisQueryStore(links(), max_entries=3)
    clock = iter(range(1, 100))
    monkeypatch.setattr(writer, "_clock", lambda: float(next(clock)))
    monkeypatch.setattr(reader, "_clock", lambda: float(next(clock)))
    docs = [f"{{ q{i} }}" for i in range(5)]
    for doc in docs[:3]:
        await writer.set(sha256_hex(doc), doc)
    assert await reader.get(sha256_hex(docs[0])) == docs[0]  # q0 is now the most recent
    for doc in docs[3:]:
        await writer.set(sha256_hex(doc), doc)
    assert await link.client.zcard(writer.lru) == 3
    fresh = RedisQueryStore(links(), max_entries=3)
    found = [await fresh.get(sha256_hex(doc)) for doc in docs]
    assert found == [docs[0], None, None, docs[3], docs[4]]


async def test_without_redis_documents_stay_in_the_process(
    redis_server: RedisServer, links: LinkFactory
) -> None:
    """Redis down: a registration is kept in the process and no lookup raises (an unknown hash is a
    miss, so the client sends the query again)."""
    a = RedisQueryStore(links(), max_entries=10)
    await redis_server.stop()
    try:
        await a.set(sha256_hex("{ a }"), "{ a }")
        assert await a.get(sha256_hex("{ a }")) == "{ a }"
        assert await a.get(sha256_hex("{ b }")) is None
    finally:
        await redis_server.start()
