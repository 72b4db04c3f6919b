"""To-one fields resolve at once from a loaded record, and await only what is not loaded yet."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from graphql.pyutils import Path

from bff.downstream import Call, ServiceClient, StaleMark
from bff.errors import DownstreamUnavailable
from bff.graph.relations import Relation
from bff.loaders import Loaders, Record, load_one
from bff.operation.budget import Budget
from bff.settings import ServiceSettings
from bff.stale import StaleLog

GENRES = {str(i): {"id": i, "name": f"genre {i}"} for i in range(1, 6)}


@dataclass
class Track:
    genre_id: str | None


@dataclass(frozen=True)
class Genre:
    name: str

    @classmethod
    def from_record(cls, record: Record) -> Genre:
        return cls(name=record["name"])


class Genres:
    """A MockTransport handler serving ``/genres?id=..`` (503 for ``failing`` ids), counting requests."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.requests = 0
        self.failing = failing

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        ids = [value for key, value in parse_qsl(request.url.query.decode()) if key == "id"]
        if self.failing.intersection(ids):
            return httpx.Response(503)
        return httpx.Response(200, json=[GENRES[i] for i in ids if i in GENRES])


def operation(handler: Genres) -> tuple[Any, ServiceClient]:
    """A stand-in for one operation's context (its loaders and stale log) and the catalog client."""
    settings = ServiceSettings.model_validate({"url": "http://catalog.test", "retry_attempts": 1})
    client = ServiceClient("catalog", settings, transport=httpx.MockTransport(handler))
    stale = StaleLog()
    budget = Budget(max_items=1_000, deadline=None)
    context = SimpleNamespace(loaders=Loaders(Call("op"), stale), stale=stale, budget=budget, catalog=client)
    return context, client


GENRE: Relation[Track, Genre] = Relation(
    key=lambda track: track.genre_id,
    load=lambda ctx, key: load_one(ctx.loaders.by_id(ctx.catalog, "genres"), key),
    build=Genre.from_record,
)


def info(context: Any, index: int = 0) -> Any:
    return SimpleNamespace(context=context, path=Path(Path(None, index, None), "genre", "Track"))


async def test_loaded_record_resolves_without_awaiting() -> None:
    """Once the key's batch is done, the field returns its node itself, one node per record."""
    handler = Genres()
    context, client = operation(handler)
    await context.loaders.by_id(client, "genres").load("2")
    first = GENRE.resolve(Track("2"), info(context, 0))
    second = GENRE.resolve(Track("2"), info(context, 1))
    await client.aclose()
    assert first == Genre("genre 2")
    assert second is first
    assert handler.requests == 1


async def test_record_not_loaded_yet_is_awaited_in_one_batch() -> None:
    """Before its batch, the field returns an awaitable; sibling fields still share one request."""
    handler = Genres()
    context, client = operation(handler)
    pending = [GENRE.resolve(Track(key), info(context, i)) for i, key in enumerate(["1", "3", "1"])]
    assert all(inspect.isawaitable(result) for result in pending)
    nodes = await asyncio.gather(*pending)
    await client.aclose()
    assert nodes == [Genre("genre 1"), Genre("genre 3"), Genre("genre 1")]
    assert handler.requests == 1


async def test_no_key_is_null_without_a_load() -> None:
    """A source without a foreign key gives null at once and asks no service."""
    handler = Genres()
    context, client = operation(handler)
    assert GENRE.resolve(Track(None), info(context)) is None
    await client.aclose()
    assert handler.requests == 0


async def test_failed_batch_raises_its_error_when_resolved() -> None:
    """A key whose batch failed raises that batch's error, the same one for every field of the key."""
    handler = Genres(failing=frozenset({"4"}))
    context, client = operation(handler)
    started = GENRE.start(context, [Track("4"), Track("4")], [1, 1])
    await asyncio.gather(*(future for future, _ in started.values()), return_exceptions=True)
    errors = []
    for index in range(2):
        with pytest.raises(DownstreamUnavailable) as raised:
            GENRE.resolve(Track("4"), info(context, index))
        errors.append(raised.value)
    await client.aclose()
    assert [weight for _, weight in started.values()] == [2]
    assert errors[0] is errors[1]


async def test_stale_record_notes_the_field_path() -> None:
    """A stale record resolved at once still marks its field's path as stale."""
    handler = Genres()
    context, client = operation(handler)
    stale = dict(GENRES["5"])
    context.stale.mark([StaleMark(stale, "catalog", 61.5)])
    context.loaders.by_id(client, "genres").prime("5", stale)
    node = GENRE.resolve(Track("5"), info(context, 7))
    await client.aclose()
    assert node == Genre("genre 5")
    assert context.stale.entries == [{"path": [7, "genre"], "service": "catalog", "ageMs": 61500}]
    assert handler.requests == 0
