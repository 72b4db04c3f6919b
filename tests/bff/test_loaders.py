"""DataLoaders batch loads into GETs with repeated parameters, chunked, in key order."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import httpx
import pytest

from bff.downstream import Call, ServiceClient
from bff.errors import DownstreamUnavailable
from bff.loaders import Loaders, chunk_keys
from bff.settings import ServiceSettings

TRACKS = {str(i): {"id": i, "name": f"track {i}", "albumId": i % 3} for i in range(1, 301)}


class Recorder:
    """A MockTransport handler serving ``/tracks`` with json-server filtering, recording each URL."""

    def __init__(self, fail_ids: frozenset[str] = frozenset()) -> None:
        self.urls: list[httpx.URL] = []
        self.fail_ids = fail_ids

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        pairs = parse_qsl(request.url.query.decode())
        if any(key == "id" and value in self.fail_ids for key, value in pairs):
            return httpx.Response(503)
        wanted: dict[str, set[str]] = {}
        for key, value in pairs:
            wanted.setdefault(key, set()).add(value)
        rows = [r for r in TRACKS.values() if all(str(r.get(k)) in v for k, v in wanted.items())]
        return httpx.Response(200, json=rows)


def make_client(handler: Recorder, **overrides: int) -> ServiceClient:
    settings = ServiceSettings.model_validate({"url": "http://catalog.test", **overrides})
    return ServiceClient("catalog", settings, transport=httpx.MockTransport(handler))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def test_sibling_loads_batch_into_one_request(recorder: Recorder) -> None:
    """Ten loads issued together become one GET carrying all ten ids."""
    client = make_client(recorder)
    loader = Loaders(Call("req-1")).by_id(client, "tracks")
    keys = [str(i) for i in range(1, 11)]
    results = await asyncio.gather(*(loader.load(key) for key in keys))
    await client.aclose()
    assert len(recorder.urls) == 1
    assert [value for key, value in parse_qsl(recorder.urls[0].query.decode()) if key == "id"] == keys
    assert [r["id"] for r in results if r is not None] == list(range(1, 11))


async def test_results_in_key_order_and_missing_is_none(recorder: Recorder) -> None:
    """Results follow the order of the keys asked, and an unknown id gives None."""
    client = make_client(recorder)
    loader = Loaders(Call("req-1")).by_id(client, "tracks")
    results = await loader.load_many(["9", "99999", "2"])
    await client.aclose()
    assert [r["id"] if r else None for r in results] == [9, None, 2]


async def test_batches_split_by_max_batch_size(recorder: Recorder) -> None:
    """250 keys with a batch size of 100 make three requests of 100, 100 and 50 keys."""
    client = make_client(recorder, max_batch_size=100, max_url_length=65_536)
    results = await Loaders(Call("r")).by_id(client, "tracks").load_many([str(i) for i in range(1, 251)])
    await client.aclose()
    sizes = sorted(len(parse_qsl(url.query.decode())) for url in recorder.urls)
    assert sizes == [50, 100, 100]
    assert [r["id"] for r in results if r] == list(range(1, 251))


async def test_batches_split_by_max_url_length(recorder: Recorder) -> None:
    """No request URL is longer than max_url_length, and every key is fetched once."""
    client = make_client(recorder, max_batch_size=10_000, max_url_length=300)
    await Loaders(Call("r")).by_id(client, "tracks").load_many([str(i) for i in range(1, 301)])
    await client.aclose()
    assert len(recorder.urls) > 1
    assert all(len(str(url)) <= 300 for url in recorder.urls)
    ids = [value for url in recorder.urls for key, value in parse_qsl(url.query.decode()) if key == "id"]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 301)]


def test_chunk_keys_keeps_an_oversized_key_alone() -> None:
    """A key whose URL alone exceeds the limit still gets a chunk of its own."""
    chunks = chunk_keys(
        ["1", "x" * 500, "2"], field="id", base_length=20, max_batch_size=10, max_url_length=100
    )
    assert chunks == [["1"], ["x" * 500], ["2"]]


async def test_by_field_groups_records_per_key_and_primes_by_id(recorder: Recorder) -> None:
    """A foreign-key load returns each key's records and later by-id loads need no request."""
    client = make_client(recorder)
    loaders = Loaders(Call("r"))
    groups = await loaders.by_field(client, "tracks", "albumId").load_many(["1", "2", "7"])
    assert [len(group) for group in groups] == [100, 100, 0]
    assert all(record["albumId"] == 1 for record in groups[0])
    before = len(recorder.urls)
    track = await loaders.by_id(client, "tracks").load(str(groups[1][0]["id"]))
    await client.aclose()
    assert track is groups[1][0]
    assert len(recorder.urls) == before == 1


async def test_primed_records_load_by_id_without_a_request_and_first_primed_wins(recorder: Recorder) -> None:
    """Records primed (a list page) answer later by-id loads; of two primed records with one id the
    first stays, and a key loaded before priming keeps its loaded record."""
    client = make_client(recorder)
    loaders = Loaders(Call("r"))
    loaded = await loaders.by_id(client, "tracks").load("5")
    first, second = {"id": 1, "name": "first"}, {"id": 1, "name": "second"}
    loaders.prime(client, "tracks", [first, {"id": 2}, "not a record"])
    loaders.prime(client, "tracks", [second, {"id": 5, "name": "primed"}])
    loader = loaders.by_id(client, "tracks")
    one, two, five = await loader.load_many(["1", "2", "5"])
    await client.aclose()
    assert one is first
    assert two == {"id": 2}
    assert five is loaded
    assert len(recorder.urls) == 1


async def test_failed_chunk_fails_only_its_keys() -> None:
    """When one chunk's request fails, keys of the other chunks still resolve."""
    recorder = Recorder(fail_ids=frozenset({"3"}))
    client = make_client(recorder, max_batch_size=2)
    loader = Loaders(Call("r")).by_id(client, "tracks")
    outcomes = await asyncio.gather(*(loader.load(str(i)) for i in range(1, 5)), return_exceptions=True)
    await client.aclose()
    assert [o["id"] if isinstance(o, dict) else type(o) for o in outcomes] == [
        1,
        2,
        DownstreamUnavailable,
        DownstreamUnavailable,
    ]


async def test_loaders_are_per_operation(recorder: Recorder) -> None:
    """Two operations' loaders share nothing: the second operation fetches again."""
    client = make_client(recorder)
    await Loaders(Call("op-1")).by_id(client, "tracks").load("5")
    await Loaders(Call("op-2")).by_id(client, "tracks").load("5")
    await client.aclose()
    assert len(recorder.urls) == 2
