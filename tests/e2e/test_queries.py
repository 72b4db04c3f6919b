"""The graph answers with the Chinook data, batching one request per level per chunk.

Each test runs twice: with the BFF over our demo services and over real json-server 0.17.4
instances. Queries go through the ``gql`` client, a GraphQL client we did not write.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport

from bff.loaders import chunk_keys
from bff.settings import ServiceSettings
from tests.e2e.chinook_index import Chinook
from tests.e2e.stack import Stack

NESTED_CUSTOMER = '{ customer(id: "1") { invoices { lines { track { album { artist { name } } } } } } }'
ALL_CUSTOMERS = (
    "{ customers(first: 59) { edges { node {"
    " invoices { total lines { track { name genre { name } } } } } } } }"
)
TRACKS_PAGE = """
query Tracks($after: String) {
  tracks(first: 100, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name } }
  }
}
"""


async def run_gql(stack: Stack, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute with the gql client over HTTP; gql raises if the response has errors."""
    transport = AIOHTTPTransport(url=stack.graphql_url, ssl=False)
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        request = gql(query)
        request.variable_values = variables
        result: dict[str, Any] = await session.execute(request)
    return result


def expected_chunks(stack: Stack, service: str, resource: str, field: str, keys: list[int]) -> int:
    """How many GETs the loader needs for ``keys`` with the default service settings."""
    settings = ServiceSettings.model_validate({"url": stack.service_urls[service]})
    base = len(f"{settings.base_url}/{resource}")
    unique = list(dict.fromkeys(str(key) for key in keys))
    return len(
        chunk_keys(
            unique,
            field=field,
            base_length=base,
            max_batch_size=settings.max_batch_size,
            max_url_length=settings.max_url_length,
        )
    )


async def test_nested_customer_makes_one_request_per_level(stack: Stack, chinook: Chinook) -> None:
    """Customer, invoices, lines, tracks, albums, artists: exactly six downstream requests."""
    result = await run_gql(stack, NESTED_CUSTOMER)
    ids = chinook.by_id
    expected = {
        "customer": {
            "invoices": [
                {
                    "lines": [
                        {
                            "track": {
                                "album": {
                                    "artist": {
                                        "name": ids["artists"][
                                            ids["albums"][ids["tracks"][line["trackId"]]["albumId"]][
                                                "artistId"
                                            ]
                                        ]["name"]
                                    }
                                }
                            }
                        }
                        for line in chinook.children("invoiceLines", "invoiceId", invoice["id"])
                    ]
                }
                for invoice in chinook.children("invoices", "customerId", 1)
            ]
        }
    }
    assert result == expected
    counts = await stack.counts()
    assert counts == {
        "customers": {"GET /customers": 1},
        "catalog": {"GET /tracks": 1, "GET /albums": 1, "GET /artists": 1},
        "sales": {"GET /invoices": 1, "GET /invoiceLines": 1},
        "playlists": {},
    }


async def test_all_customers_batch_per_level_per_chunk(stack: Stack, chinook: Chinook) -> None:
    """59 customers' invoices, lines, tracks and genres take one request per level per chunk."""
    result = await run_gql(stack, ALL_CUSTOMERS)
    ids = chinook.by_id
    invoices = [
        inv for c in chinook.data["customers"] for inv in chinook.children("invoices", "customerId", c["id"])
    ]
    lines = [ln for inv in invoices for ln in chinook.children("invoiceLines", "invoiceId", inv["id"])]
    track_ids = [ln["trackId"] for ln in lines]
    genre_ids = [ids["tracks"][t]["genreId"] for t in track_ids]
    expected_nodes = [
        {
            "node": {
                "invoices": [
                    {
                        "total": str(Decimal(str(inv["total"]))),
                        "lines": [
                            {
                                "track": {
                                    "name": ids["tracks"][ln["trackId"]]["name"],
                                    "genre": {
                                        "name": ids["genres"][ids["tracks"][ln["trackId"]]["genreId"]]["name"]
                                    },
                                }
                            }
                            for ln in chinook.children("invoiceLines", "invoiceId", inv["id"])
                        ],
                    }
                    for inv in chinook.children("invoices", "customerId", c["id"])
                ]
            }
        }
        for c in chinook.data["customers"]
    ]
    assert result == {"customers": {"edges": expected_nodes}}

    counts = await stack.counts()
    customer_keys = [c["id"] for c in chinook.data["customers"]]
    assert counts["customers"] == {"GET /customers": 1}
    assert counts["sales"] == {
        "GET /invoices": expected_chunks(stack, "sales", "invoices", "customerId", customer_keys),
        "GET /invoiceLines": expected_chunks(
            stack, "sales", "invoiceLines", "invoiceId", [i["id"] for i in invoices]
        ),
    }
    assert counts["catalog"] == {
        "GET /tracks": expected_chunks(stack, "catalog", "tracks", "id", track_ids),
        "GET /genres": expected_chunks(stack, "catalog", "genres", "id", genre_ids),
    }
    total = sum(sum(per.values()) for per in counts.values())
    assert total < 40, "batching must never degrade to one request per parent"


async def test_tracks_pagination_walks_every_track_once(stack: Stack, chinook: Chinook) -> None:
    """Following endCursor visits all 3,503 tracks in order, with no duplicates and no gaps."""
    seen: list[int] = []
    after: str | None = None
    pages = 0
    while True:
        page = (await run_gql(stack, TRACKS_PAGE, {"after": after}))["tracks"]
        pages += 1
        assert page["totalCount"] == len(chinook.data["tracks"])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        seen.extend(int(edge["node"]["id"]) for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert pages < 100, "pagination does not terminate"
    assert seen == [t["id"] for t in chinook.data["tracks"]]
    assert pages == 36
    counts = await stack.counts()
    assert counts["catalog"] == {"GET /tracks": 36}


async def test_scalars_follow_the_schema_contract(stack: Stack, chinook: Chinook) -> None:
    """IDs are strings, money is a Decimal string, dates are ISO 8601 and leaves match the data."""
    result = await run_gql(
        stack,
        """{
          track(id: "3") { id name composer milliseconds bytes unitPrice
                           album { id title } genre { id name } mediaType { id name } }
          invoice(id: "98") { id invoiceDate billingCity billingCountry total customer { id email } }
        }""",
    )
    track = chinook.by_id["tracks"][3]
    invoice = chinook.by_id["invoices"][98]
    assert result["track"] == {
        "id": "3",
        "name": track["name"],
        "composer": track["composer"],
        "milliseconds": track["milliseconds"],
        "bytes": track["bytes"],
        "unitPrice": "0.99",
        "album": {"id": str(track["albumId"]), "title": chinook.by_id["albums"][track["albumId"]]["title"]},
        "genre": {"id": str(track["genreId"]), "name": chinook.by_id["genres"][track["genreId"]]["name"]},
        "mediaType": {
            "id": str(track["mediaTypeId"]),
            "name": chinook.by_id["mediaTypes"][track["mediaTypeId"]]["name"],
        },
    }
    assert result["invoice"]["invoiceDate"].startswith(invoice["invoiceDate"].removesuffix("Z"))
    assert result["invoice"]["invoiceDate"].endswith("+00:00")
    assert result["invoice"]["total"] == str(Decimal(str(invoice["total"])))
    assert (
        result["invoice"]["customer"]["email"] == chinook.by_id["customers"][invoice["customerId"]]["email"]
    )


async def test_relationships_in_every_direction(stack: Stack, chinook: Chinook) -> None:
    """Employees, artists, albums, playlists and genres resolve with the data set's relations."""
    result = await run_gql(
        stack,
        """{
          employee(id: "3") { firstName reportsTo { id } customers { id } }
          artist(id: "1") { name albums { title tracks { id } } }
          playlist(id: "3") { name tracks { id } }
          genres { id name }
          customer(id: "12") { supportRep { id lastName } }
          playlists(first: 5) { totalCount edges { node { id } } }
          artists(first: 3, search: "Led") { totalCount edges { node { name } } }
          customers(first: 100, country: "Brazil") { totalCount edges { node { country } } }
        }""",
    )
    employee = chinook.by_id["employees"][3]
    assert result["employee"]["firstName"] == employee["firstName"]
    assert result["employee"]["reportsTo"] == {"id": str(employee["reportsToId"])}
    assert [c["id"] for c in result["employee"]["customers"]] == [
        str(c["id"]) for c in chinook.children("customers", "supportRepId", 3)
    ]
    albums = chinook.children("albums", "artistId", 1)
    assert [a["title"] for a in result["artist"]["albums"]] == [a["title"] for a in albums]
    assert [[t["id"] for t in a["tracks"]] for a in result["artist"]["albums"]] == [
        [str(t["id"]) for t in chinook.children("tracks", "albumId", a["id"])] for a in albums
    ]
    assert [t["id"] for t in result["playlist"]["tracks"]] == [
        str(pt["trackId"]) for pt in chinook.children("playlistTracks", "playlistId", 3)
    ]
    assert len(result["genres"]) == len(chinook.data["genres"])
    rep = chinook.by_id["customers"][12]["supportRepId"]
    assert result["customer"]["supportRep"] == {
        "id": str(rep),
        "lastName": chinook.by_id["employees"][rep]["lastName"],
    }
    assert result["playlists"]["totalCount"] == len(chinook.data["playlists"])
    assert result["artists"]["totalCount"] >= 1
    assert all("Led" in e["node"]["name"] for e in result["artists"]["edges"])
    brazil = [c for c in chinook.data["customers"] if c["country"] == "Brazil"]
    assert result["customers"]["totalCount"] == len(brazil)
    assert {e["node"]["country"] for e in result["customers"]["edges"]} == {"Brazil"}


@pytest.mark.parametrize("first", [101, -1])
async def test_page_size_out_of_bounds_is_bad_user_input(stack: Stack, first: int) -> None:
    """first above 100 or below 0 is BAD_USER_INPUT and makes no downstream request."""
    body = await stack.post("query($n: Int) { tracks(first: $n) { totalCount } }", {"n": first})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await stack.total_requests() == 0


async def test_bad_cursor_is_bad_user_input(stack: Stack) -> None:
    """A cursor the BFF did not make is BAD_USER_INPUT."""
    body = await stack.post('{ tracks(after: "bm9wZQ==") { totalCount } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in body["errors"][0]["message"]


async def test_missing_records_are_null_without_error(stack: Stack) -> None:
    """An id that does not exist gives null, not an error."""
    body = await stack.post('{ customer(id: "999999") { id } track(id: "nope") { id } }')
    assert body == {"data": {"customer": None, "track": None}}
