"""The demo REST services over real sockets: json-server 0.17.4 conventions, request stats, isolation."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from bff_chinook.demo.chinook import Record, load_chinook
from bff_chinook.demo.rest import STORE, create_service_app
from bff_chinook.demo.server import DemoServices, start_services


@pytest.fixture(scope="module")
def chinook() -> dict[str, list[Record]]:
    """The shipped data, loaded once; the services copy it, so no test can change it."""
    return load_chinook()


@pytest.fixture
async def services(chinook: dict[str, list[Record]]) -> AsyncIterator[DemoServices]:
    """Fresh catalog and sales services on ephemeral ports, so writes never leak between tests."""
    async with await start_services(ports={"catalog": 0, "sales": 0}, data=chinook) as running:
        yield running


@pytest.fixture
async def catalog(services: DemoServices) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the catalog service."""
    async with httpx.AsyncClient(base_url=services.urls["catalog"], trust_env=False) as client:
        yield client


def album_track_ids(chinook: dict[str, list[Record]], album_id: int) -> list[int]:
    """Return the ids of one album's tracks, in stored order."""
    return [track["id"] for track in chinook["tracks"] if track["albumId"] == album_id]


def ids(response: httpx.Response) -> list[int]:
    """Return the ids of a list response, in order."""
    assert response.status_code == 200, response.text
    return [record["id"] for record in response.json()]


async def test_repeated_filter_values_are_alternatives(
    catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]
) -> None:
    """``?albumId=1&albumId=2`` returns the tracks of either album, in id order."""
    response = await catalog.get("/tracks", params=[("albumId", 1), ("albumId", 2)])
    expected = [track["id"] for track in chinook["tracks"] if track["albumId"] in (1, 2)]
    assert ids(response) == expected
    assert "X-Total-Count" not in response.headers


async def test_repeated_ids_batch_lookup(catalog: httpx.AsyncClient) -> None:
    """``?id=9&id=3&id=999999`` returns the existing records in stored order, skipping unknown ids."""
    response = await catalog.get("/tracks", params=[("id", 9), ("id", 3), ("id", 999999)])
    assert ids(response) == [3, 9]


async def test_filters_compare_as_strings_and_ignore_unknown_fields(
    catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]
) -> None:
    """Values match as ``String(value)`` (``1.99``, not ``01``), and a field no record has is ignored."""
    assert ids(await catalog.get("/tracks?albumId=01")) == []
    pricey = await catalog.get("/tracks?unitPrice=1.99")
    assert ids(pricey) == [track["id"] for track in chinook["tracks"] if track["unitPrice"] == 1.99]
    assert ids(await catalog.get("/genres?noSuchField=1")) == list(range(1, 26))


async def test_page_and_limit_give_total_count_and_links(
    services: DemoServices, catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]
) -> None:
    """``_page`` + ``_limit`` slice after filtering, with ``X-Total-Count`` and first/prev/next/last links."""
    response = await catalog.get("/tracks?albumId=1&_page=2&_limit=3")
    assert ids(response) == album_track_ids(chinook, 1)[3:6]
    assert response.headers["X-Total-Count"] == "10"
    base = f"{services.urls['catalog']}/tracks?albumId=1&_page="
    assert response.headers["Link"] == ", ".join(
        [
            f'<{base}1&_limit=3>; rel="first"',
            f'<{base}1&_limit=3>; rel="prev"',
            f'<{base}3&_limit=3>; rel="next"',
            f'<{base}4&_limit=3>; rel="last"',
        ]
    )


async def test_page_alone_has_ten_items(catalog: httpx.AsyncClient) -> None:
    """``_page`` without ``_limit`` pages by 10; a page past the end is empty with no links."""
    response = await catalog.get("/tracks?_page=3")
    assert ids(response) == list(range(21, 31))
    assert response.headers["X-Total-Count"] == "3503"
    past = await catalog.get("/tracks?_page=1000")
    assert ids(past) == []
    assert past.headers["Link"] == ""


async def test_start_with_limit_or_end_slices(
    catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]
) -> None:
    """``_start`` + ``_limit`` and ``_start`` + ``_end`` slice the list and report the full count."""
    limited = await catalog.get("/tracks?_start=10&_limit=3")
    assert ids(limited) == [11, 12, 13]
    assert limited.headers["X-Total-Count"] == "3503"
    ended = await catalog.get("/tracks?albumId=1&_start=8&_end=20")
    assert ids(ended) == album_track_ids(chinook, 1)[8:]
    assert ended.headers["X-Total-Count"] == "10"


async def test_sort_descending(catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]) -> None:
    """``_sort=title&_order=desc`` orders by title, last first."""
    response = await catalog.get("/albums?_sort=title&_order=desc")
    titles = [album["title"] for album in response.json()]
    assert titles == sorted((album["title"] for album in chinook["albums"]), reverse=True)


async def test_sort_by_several_keys(catalog: httpx.AsyncClient) -> None:
    """``_sort=albumId,milliseconds&_order=desc,asc`` orders by album (last first), then by length."""
    response = await catalog.get("/tracks?albumId=1&albumId=2&_sort=albumId,milliseconds&_order=desc,asc")
    records = response.json()
    assert [track["albumId"] for track in records] == [2] + [1] * 10
    lengths = [track["milliseconds"] for track in records[1:]]
    assert lengths == sorted(lengths)


async def test_sort_puts_nulls_after_values(catalog: httpx.AsyncClient) -> None:
    """Ascending order puts null composers last, as lodash ``orderBy`` does; descending puts them first."""
    ascending = (await catalog.get("/tracks?_sort=composer")).json()
    assert ascending[0]["composer"] is not None
    assert ascending[-1]["composer"] is None
    descending = (await catalog.get("/tracks?_sort=composer&_order=desc&_limit=1")).json()
    assert descending[0]["composer"] is None


async def test_q_searches_every_value_case_insensitively(
    catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]
) -> None:
    """``q=LOVE`` keeps tracks where any value contains "love" in any case, numbers included."""
    response = await catalog.get("/tracks?q=LOVE")
    expected = [
        track["id"]
        for track in chinook["tracks"]
        if any(value and "love" in str(value).lower() for value in track.values())
    ]
    assert ids(response) == expected
    assert ids(await catalog.get("/tracks?q=343719")) == [1]


async def test_operators(catalog: httpx.AsyncClient) -> None:
    """``_gte``/``_lte`` compare numbers, ``_ne`` excludes all its values, ``_like`` is a case-blind regex."""
    assert ids(await catalog.get("/genres?id_gte=24&id_lte=25")) == [24, 25]
    assert ids(await catalog.get("/genres?id_ne=1&id_ne=2&id_lte=4")) == [3, 4]
    assert ids(await catalog.get("/genres?name_like=^ROCK")) == [1, 5]


async def test_get_one_record(catalog: httpx.AsyncClient, chinook: dict[str, list[Record]]) -> None:
    """``GET /tracks/1`` returns the record as pretty JSON with json-server's headers."""
    response = await catalog.get("/tracks/1")
    assert response.status_code == 200
    assert response.json() == chinook["tracks"][0]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.text.startswith('{\n  "id": 1,')


@pytest.mark.parametrize("path", ["/tracks/999999", "/tracks/abc", "/nothing", "/nothing/1", "/tracks/1/x/y"])
async def test_missing_is_404_with_empty_json(catalog: httpx.AsyncClient, path: str) -> None:
    """A missing record, an unknown resource or path is 404 with the JSON body ``{}``."""
    response = await catalog.get(path)
    assert response.status_code == 404
    assert response.json() == {}


async def test_nested_route_filters_by_parent(catalog: httpx.AsyncClient) -> None:
    """``GET /albums/1/tracks`` is ``GET /tracks?albumId=1``."""
    assert ids(await catalog.get("/albums/1/tracks")) == ids(await catalog.get("/tracks?albumId=1"))


async def test_post_creates_with_next_id_and_location(
    services: DemoServices, catalog: httpx.AsyncClient
) -> None:
    """POST answers 201 with the record under the next id and its URL in ``Location``."""
    response = await catalog.post("/genres", json={"name": "Polka"})
    assert response.status_code == 201
    assert response.json() == {"name": "Polka", "id": 26}
    assert response.headers["Location"] == f"{services.urls['catalog']}/genres/26"
    assert (await catalog.get("/genres/26")).json() == {"name": "Polka", "id": 26}


async def test_post_with_a_taken_id_fails(catalog: httpx.AsyncClient) -> None:
    """POST with an id that exists is a 500, as json-server's duplicate-id error is."""
    response = await catalog.post("/genres", json={"id": 1, "name": "Again"})
    assert response.status_code == 500
    assert (await catalog.get("/genres/1")).json()["name"] == "Rock"


async def test_patch_merges_and_keeps_the_id(catalog: httpx.AsyncClient) -> None:
    """PATCH merges the body into the record; an id in the body is ignored."""
    response = await catalog.patch("/genres/2", json={"name": "Cool Jazz", "id": 99, "mood": "blue"})
    assert response.status_code == 200
    assert response.json() == {"id": 2, "name": "Cool Jazz", "mood": "blue"}
    assert (await catalog.get("/genres/2")).json() == response.json()


async def test_put_replaces_and_keeps_the_id(catalog: httpx.AsyncClient) -> None:
    """PUT replaces every field but the id."""
    response = await catalog.put("/albums/1", json={"title": "Renamed"})
    assert response.status_code == 200
    assert response.json() == {"title": "Renamed", "id": 1}
    assert (await catalog.get("/albums/1")).json() == {"title": "Renamed", "id": 1}


async def test_delete_removes_the_record_and_its_dependents(catalog: httpx.AsyncClient) -> None:
    """DELETE answers 200 ``{}``; the record is gone and so are the tracks pointing at it."""
    response = await catalog.delete("/albums/1")
    assert response.status_code == 200
    assert response.json() == {}
    assert (await catalog.get("/albums/1")).status_code == 404
    assert ids(await catalog.get("/tracks?albumId=1")) == []
    assert (await catalog.delete("/albums/1")).status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_writing_a_missing_record_is_404(catalog: httpx.AsyncClient, method: str) -> None:
    """PUT, PATCH and DELETE of an unknown id are 404 ``{}``."""
    response = await catalog.request(method, "/genres/999", json={"name": "x"})
    assert response.status_code == 404
    assert response.json() == {}


async def test_malformed_json_body_is_400(catalog: httpx.AsyncClient) -> None:
    """A POST whose JSON does not parse is rejected with 400 and creates nothing."""
    headers = {"Content-Type": "application/json"}
    response = await catalog.post("/genres", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert ids(await catalog.get("/genres?_sort=id&_order=desc&_limit=1")) == [25]


async def test_weak_etag_and_304(catalog: httpx.AsyncClient) -> None:
    """GET sends a weak ETag; ``If-None-Match`` with it gives 304 without a body, until the data changes."""
    first = await catalog.get("/genres/1")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = await catalog.get("/genres/1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    await catalog.patch("/genres/1", json={"name": "Rock!"})
    changed = await catalog.get("/genres/1", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


async def test_etag_is_the_one_express_computes(catalog: httpx.AsyncClient) -> None:
    """The ETag is Express's: ``W/"<length in hex>-<27 chars of base64 SHA-1>"`` of the body."""
    response = await catalog.get("/genres/1")
    digest = base64.b64encode(hashlib.sha1(response.content).digest()).decode()[:27]
    assert response.headers["ETag"] == f'W/"{len(response.content):x}-{digest}"'


async def test_stats_count_requests_and_reset(services: DemoServices, catalog: httpx.AsyncClient) -> None:
    """``/_stats`` counts requests by method and path, not itself, per service; DELETE resets it."""
    await catalog.get("/tracks?id=1&id=2")
    await catalog.get("/tracks", params={"albumId": 3})
    await catalog.get("/tracks/1")
    await catalog.get("/tracks/999999")
    await catalog.get("/_stats")
    stats = await catalog.get("/_stats")
    assert stats.json() == {
        "total": 4,
        "requests": {"GET /tracks": 2, "GET /tracks/1": 1, "GET /tracks/999999": 1},
        "recent": ["GET /tracks?id=1&id=2", "GET /tracks?albumId=3", "GET /tracks/1", "GET /tracks/999999"],
    }
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"{services.urls['sales']}/_stats")).json() == {
            "total": 0,
            "requests": {},
            "recent": [],
        }
    reset = await catalog.delete("/_stats")
    assert reset.status_code == 200
    assert (await catalog.get("/_stats")).json() == {"total": 0, "requests": {}, "recent": []}


async def test_stats_allows_only_get_and_delete(catalog: httpx.AsyncClient) -> None:
    """Other methods on ``/_stats`` get 405 with an ``Allow`` header, and are not counted."""
    response = await catalog.post("/_stats", json={})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, DELETE"
    assert (await catalog.get("/_stats")).json()["total"] == 0


async def test_apps_never_share_or_change_the_given_data(chinook: dict[str, list[Record]]) -> None:
    """Each app deep-copies its records: a write to one app changes neither another app nor the input."""
    resources = {"genres": chinook["genres"]}
    first, second = create_service_app("a", resources), create_service_app("b", resources)
    first[STORE].collections["genres"][0]["name"] = "Changed"
    assert second[STORE].collections["genres"][0]["name"] == "Rock"
    assert chinook["genres"][0]["name"] == "Rock"


async def test_start_services_reports_bound_urls_and_rejects_unknown_names(
    chinook: dict[str, list[Record]],
) -> None:
    """Port 0 binds a free port that ``urls`` reports; unknown service names are a ValueError."""
    async with await start_services(ports={"playlists": 0}, data=chinook) as running:
        assert set(running.urls) == {"playlists"}
        assert not running.urls["playlists"].endswith(":0")
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.get(f"{running.urls['playlists']}/playlists/1")
        assert response.json() == {"id": 1, "name": "Music"}
    with pytest.raises(ValueError, match="unknown services"):
        await start_services(ports={"nope": 0})
