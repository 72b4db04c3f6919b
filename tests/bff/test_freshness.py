"""Freshness: what the downstream cache stage records of each answer an operation used."""

from __future__ import annotations

import httpx

from bff.cache import EntityCache, MemoryStorage
from bff.downstream import Call, ServiceClient
from bff.settings import ServiceSettings


class Clock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def catalog(cache_control: dict[str, str], clock: Clock) -> tuple[ServiceClient, EntityCache, list[str]]:
    """A catalog client over a mock service answering ``Cache-Control`` per path (503 for every path in
    ``cache_control["failing"]``), the entity cache it uses, and the paths the service was asked for."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path in cache_control.get("failing", ""):
            return httpx.Response(503)
        album = request.url.params.get("albumId")
        records = [{"id": 1, "albumId": 1}, {"id": 2, "albumId": 1}] if album else [{"id": 1}]
        headers = {"Cache-Control": cache_control.get(request.url.path, "max-age=30")}
        return httpx.Response(200, json=records, headers=headers)

    cache = EntityCache(MemoryStorage(100, clock=clock), clock=clock)
    settings = ServiceSettings.model_validate({"url": "http://catalog.test/"})
    client = ServiceClient("catalog", settings, transport=httpx.MockTransport(handler), cache=cache)
    return client, cache, asked


async def test_a_fetched_then_cached_answer_gives_its_remaining_lifetime() -> None:
    """A by-field batch fetched with ``max-age=30`` lives 30 s; read from the cache 10 s later, 20 s."""
    clock = Clock()
    client, _cache, asked = catalog({}, clock)
    first = Call("r1")
    await client.get("/tracks", call=first, params=[("albumId", "1")])
    clock.now += 10
    second = Call("r2")
    await client.get("/tracks", call=second, params=[("albumId", "1")])
    assert (first.freshness.lifetime_s, first.freshness.reads) == (30.0, {("catalog", "tracks")})
    assert (second.freshness.lifetime_s, second.freshness.spoiled) == (20.0, None)
    assert asked == ["/tracks"]


async def test_the_shortest_lifetime_wins_and_no_store_spoils() -> None:
    """Of two answers the shorter lifetime is kept; a ``no-store`` one spoils the operation."""
    clock = Clock()
    client, _cache, _asked = catalog({"/albums": "max-age=5", "/genres": "no-store"}, clock)
    call = Call("r")
    await client.get("/tracks", call=call, params=[("id", "1")])
    await client.get("/albums", call=call)
    assert (call.freshness.lifetime_s, call.freshness.spoiled) == (5.0, None)
    await client.get("/genres", call=call)
    assert call.freshness.spoiled == "uncacheable"


async def test_reads_past_the_cache_and_stale_answers_spoil() -> None:
    """``cache=False`` is an uncached read; an answer served stale because the service failed is stale."""
    clock = Clock()
    behaviour: dict[str, str] = {}
    client, _cache, _asked = catalog(behaviour, clock)
    past = Call("r1")
    await client.get("/tracks", call=past, params=[("id", "1")], cache=False)
    fresh = Call("r2")
    await client.get("/genres", call=fresh, params=[("_start", "0")])
    clock.now += 31
    behaviour["failing"] = "/genres"
    stale = Call("r3")
    answer = await client.get("/genres", call=stale, params=[("_start", "0")])
    assert past.freshness.spoiled == "uncached_read"
    assert fresh.freshness.spoiled is None
    assert answer.stale
    assert stale.freshness.spoiled == "stale"


async def test_a_watched_operation_records_versions_before_reading() -> None:
    """While watched, each resource's version is taken before its first read; an invalidation then
    shows as another version."""
    clock = Clock()
    client, cache, _asked = catalog({}, clock)
    call = Call("r")
    call.freshness.watch()
    await client.get("/tracks", call=call, params=[("id", "1")])
    taken = call.freshness.versions[("catalog", "tracks")]
    assert await cache.versions([("catalog", "tracks")]) == [taken]
    await cache.invalidate([], resources=[("catalog", "tracks")])
    assert await cache.versions([("catalog", "tracks")]) != [taken]
