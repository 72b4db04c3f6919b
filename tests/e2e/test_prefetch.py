"""Lists load their items' related records up front: the same requests, and fields that need no await."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bff.graph.relations import Relation
from bff_chinook.demo.server import start_services
from tests.e2e.stack import Stack, run_bff

WIDE = (
    '{ customer(id: "1") { supportRep { lastName } invoices { customer { lastName } lines {'
    " invoice { id } track { name genre { name } mediaType { name } album { artist { name } } } } } } }"
)


@pytest.fixture
def awaited(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every to-one field that had to await its record (none, when prefetched)."""
    paths: list[str] = []
    later = Relation._later

    def counting(self: Relation[Any, Any], info: Any, future: Any) -> Any:
        paths.append(".".join(str(key) for key in info.path.as_list()))
        return later(self, info, future)

    monkeypatch.setattr(Relation, "_later", counting)
    return paths


async def test_prefetched_relationships_resolve_without_awaiting(
    demo_stack: Stack, awaited: list[str]
) -> None:
    """Every relationship field under a list resolves at once, with one request per level and resource."""
    await demo_stack.reset_counts()
    body = await demo_stack.post(WIDE)
    assert "errors" not in body
    lines = [line for invoice in body["data"]["customer"]["invoices"] for line in invoice["lines"]]
    assert len(lines) == 38
    assert all(line["track"]["genre"]["name"] and line["track"]["album"]["artist"] for line in lines)
    # The fields of the root customer are the only ones nothing loaded ahead: supportRep, and
    # invoices, which is never loaded ahead (permission classes guard it).
    assert awaited == ["customer.supportRep", "customer.invoices"]
    assert await demo_stack.counts() == {
        "customers": {"GET /customers": 1, "GET /employees": 1},
        "catalog": {
            "GET /tracks": 1,
            "GET /genres": 1,
            "GET /mediaTypes": 1,
            "GET /albums": 1,
            "GET /artists": 1,
        },
        "sales": {"GET /invoices": 1, "GET /invoiceLines": 1},
        "playlists": {},
    }


@pytest.mark.parametrize("directive", ["@skip(if: $flag)", "@include(if: $flag)"])
async def test_skipped_relationship_is_not_loaded(demo_stack: Stack, directive: str) -> None:
    """A to-one field left out by @skip or @include is not prefetched: no request for it."""
    flag = directive.startswith("@skip")
    query = (
        f'query ($flag: Boolean!) {{ invoice(id: "98") {{ lines {{ id track {directive} {{ name }} }} }} }}'
    )
    await demo_stack.reset_counts()
    body = await demo_stack.post(query, {"flag": flag})
    assert "errors" not in body
    assert all("track" not in line for line in body["data"]["invoice"]["lines"])
    assert (await demo_stack.counts())["catalog"] == {}


async def test_fragments_are_prefetched_too(demo_stack: Stack, awaited: list[str]) -> None:
    """To-one fields selected through fragments are found and loaded like the others."""
    query = (
        'query { invoice(id: "98") { lines { ...Line } } }'
        " fragment Line on InvoiceLine { track { ... on Track { genre { name } } } }"
    )
    await demo_stack.reset_counts()
    body = await demo_stack.post(query)
    assert "errors" not in body
    assert all(line["track"]["genre"]["name"] for line in body["data"]["invoice"]["lines"])
    # Only the root invoice's lines wait (nothing lists invoices); they prefetch the rest.
    assert awaited == ["invoice.lines"]
    assert (await demo_stack.counts())["catalog"] == {"GET /tracks": 1, "GET /genres": 1}


@pytest.fixture
async def services() -> AsyncIterator[dict[str, str]]:
    """Demo services of this test alone (it breaks the catalog)."""
    running = await start_services(ports=dict.fromkeys(("customers", "catalog", "sales", "playlists"), 0))
    async with running:
        yield running.urls


async def test_stale_records_of_a_list_mark_each_field(services: dict[str, str]) -> None:
    """Tracks prefetched from expired cache entries while catalog fails are marked stale per line."""
    env = {
        "BFF_SERVICE_CATALOG_CACHE_TTL_MS": "100",
        "BFF_SERVICE_CATALOG_STALE_IF_ERROR_MS": "60000",
        "BFF_SERVICE_CATALOG_RETRY_ATTEMPTS": "1",
    }
    query = '{ invoice(id: "98") { lines { track { name } } } }'
    async with run_bff("prefetch-stale", services, **env) as stack:
        fresh = await stack.post(query)
        await asyncio.sleep(0.25)
        response = await stack.http.put(f"{services['catalog']}/_faults", json={"error_rate": 1.0})
        response.raise_for_status()
        stale = await stack.post(query)
    assert stale["data"] == fresh["data"]
    assert "errors" not in stale
    lines = stale["data"]["invoice"]["lines"]
    marks = stale["extensions"]["stale"]
    assert sorted(tuple(mark["path"]) for mark in marks) == [
        ("invoice", "lines", index, "track") for index in range(len(lines))
    ]
    assert all(mark["service"] == "catalog" for mark in marks)
