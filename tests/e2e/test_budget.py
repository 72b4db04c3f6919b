"""The runtime budget: an operation the cost limit allows cannot take the event loop or memory away.

A hostile client found that ``Playlist.tracks`` (priced at 500) holds 3,290 tracks on playlist 1, so a
query the cost limit allowed took 9 s of CPU and blocked ``/healthz`` for 25 s with three at once.
"""

from __future__ import annotations

import asyncio
import time

from tests.e2e.stack import run_bff

HEAVY = '{ playlist(id: "1") { tracks { album { tracks { album { artist { albums { title } } } } } } } }'


def codes(body: dict[str, object]) -> list[str]:
    """The codes of a response body's errors."""
    errors = body.get("errors") or []
    assert isinstance(errors, list)
    return [error["extensions"]["code"] for error in errors]


async def test_the_heavy_query_is_stopped_by_the_item_budget(demo_services: dict[str, str]) -> None:
    """The cost limit lets the query in; the list's prefetch counts the items below it level by level
    and refuses the list with one OPERATION_BUDGET_EXCEEDED before graphql-core completes any of them,
    while the other root fields of the operation still come back."""
    async with run_bff("budget", demo_services, BFF_MAX_ITEMS="20000") as stack:
        body = await stack.post(HEAVY.replace("{ playlist", '{ genre: track(id: "1") { name } playlist', 1))
    assert codes(body) == ["OPERATION_BUDGET_EXCEEDED"], body
    error = body["errors"][0]
    assert error["extensions"]["limit"] == 20_000
    assert error["path"] == ["playlist", "tracks"]
    assert body["data"] == {"genre": {"name": "For Those About To Rock (We Salute You)"}, "playlist": None}


async def test_items_past_the_budget_are_null_with_one_error(demo_services: dict[str, str]) -> None:
    """Where no prefetch can count ahead, the item budget stops resolution itself: one error, and the
    fields past it are null without an error each."""
    query = '{ track(id: "1") { album { tracks { album { tracks { name } } } } } }'
    async with run_bff("budget-resolve", demo_services, BFF_MAX_ITEMS="5") as stack:
        body = await stack.post(query)
    assert codes(body) == ["OPERATION_BUDGET_EXCEEDED"], body


async def test_a_small_budget_stops_a_normal_query_and_the_default_does_not(
    demo_services: dict[str, str],
) -> None:
    """BFF_MAX_ITEMS counts every node an operation hands out: 100 stops 59 customers' invoices."""
    query = "{ customers(first: 59) { edges { node { invoices { lines { track { name } } } } } } }"
    async with run_bff("budget-small", demo_services, BFF_MAX_ITEMS="100") as stack:
        assert codes(await stack.post(query)) == ["OPERATION_BUDGET_EXCEEDED"]
    async with run_bff("budget-default", demo_services) as stack:
        assert "errors" not in await stack.post(query)


async def test_healthz_answers_while_heavy_queries_run(demo_services: dict[str, str]) -> None:
    """Two heavy queries at once with no item budget, stopped only by a 1.5 s deadline: /healthz is
    answered all along, because resolution yields the event loop every slice (the latency itself is
    measured in bench/budget.py). The deadline is well below what the two take together (one alone
    can finish in under 3 s)."""
    env = {"BFF_MAX_ITEMS": "100000000", "BFF_OPERATION_TIMEOUT_MS": "1500"}
    async with run_bff("budget-slices", demo_services, **env) as stack:
        healthz = stack.graphql_url.replace("/graphql", "/healthz")
        await stack.post(
            '{ playlist(id: "1") { tracks { album { artist { name } } } } }'
        )  # warm the loaders' data
        heavy = [asyncio.ensure_future(stack.post(HEAVY)) for _ in range(2)]
        answered_while_running = 0
        while not all(task.done() for task in heavy):
            started = time.monotonic()
            response = await stack.http.get(healthz)
            assert response.status_code == 200
            if not all(task.done() for task in heavy):
                answered_while_running += 1
            await asyncio.sleep(max(0.0, 0.01 - (time.monotonic() - started)))
        bodies = [task.result() for task in heavy]
    assert answered_while_running >= 3
    assert all(codes(body) == ["OPERATION_TIMEOUT"] for body in bodies), bodies
