"""The entity cache: lifetimes from Cache-Control, freshness, stale window, bounded memory."""

from __future__ import annotations

import pytest

from bff.cache import EntityCache, MemoryStorage, entity_key, index_key, lifetime_s


class Clock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 30.0),
        ("no-cache", 30.0),
        ("max-age=5", 5.0),
        ("public, s-maxage=7, max-age=5", 7.0),
        ('max-age="9"', 9.0),
        ("max-age=0", None),
        ("no-store", None),
        ("private, max-age=60", None),
        ("max-age=abc", 30.0),
    ],
)
def test_lifetime_follows_cache_control(header: str | None, expected: float | None) -> None:
    """s-maxage beats max-age, no-store and private forbid storing, otherwise the default (RFC 9111)."""
    assert lifetime_s(header, 30.0) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("max-age=60", None), ("public, max-age=60", 60.0), ("s-maxage=9", 9.0)],
)
def test_answers_to_authorized_requests_need_public(header: str | None, expected: float | None) -> None:
    """A shared cache keeps an answer to an authorized request only if public (RFC 9111 section 3.5)."""
    assert lifetime_s(header, 30.0, authorized=True) == expected


def test_zero_default_caches_only_what_the_service_allows() -> None:
    """With TTL 0 an answer is cached only for the lifetime its Cache-Control gives (issue 8)."""
    assert lifetime_s("max-age=60", 0.0) == 60.0
    assert lifetime_s("no-cache", 0.0) is None
    assert lifetime_s(None, 0.0) is None


async def test_fresh_then_stale_then_gone() -> None:
    """An entry is fresh for its lifetime, stale for the window after, then dropped."""
    clock = Clock()
    cache = EntityCache(MemoryStorage(10, clock=clock), clock=clock)
    key = entity_key("catalog", "tracks", "1")
    await cache.store({key: {"id": 1}}, lifetime_s=10, stale_s=5)
    clock.now += 9
    assert (await cache.lookup([key]))[key].fresh is True
    clock.now += 2
    hit = (await cache.lookup([key]))[key]
    assert (hit.fresh, hit.age_s, hit.value) == (False, 11.0, {"id": 1})
    clock.now += 5
    assert await cache.lookup([key]) == {}


async def test_storage_is_bounded_and_invalidation_forgets() -> None:
    """At most max_entries are kept, and invalidate drops what it names."""
    storage = MemoryStorage(3)
    cache = EntityCache(storage)
    await cache.store({entity_key("s", "r", str(i)): i for i in range(10)}, lifetime_s=60, stale_s=0)
    assert len(storage) == 3
    index = index_key("sales", "invoices", "customerId", "1")
    await cache.store({index: ["1", "2"]}, lifetime_s=60, stale_s=0)
    await cache.invalidate([index])
    assert await cache.lookup([index]) == {}
