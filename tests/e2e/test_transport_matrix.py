"""Each policy holds on each transport: POST, GET, SSE, graphql-transport-ws and graphql-ws.

The policies live in one operation pipeline (``bff/operation``) that every transport executes
through; a hostile client once walked around the safelist and the rate limit over WebSocket and SSE.
Every cell sends a refused operation and an allowed one over real sockets. Legacy graphql-ws runs
only subscriptions, so its documents are subscriptions where the others' are queries.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import run_bff
from tests.e2e.transports import TRANSPORTS, Operation, codes, run

QUERY_OK = "{ __typename }"
SUB_OK = 'subscription { playlistUpdated(playlistId: "1") { __typename } }'


def pick(transport: str, query: str, subscription: str) -> str:
    """The document for ``transport``: the subscription form over legacy graphql-ws."""
    return subscription if transport == "graphql-ws" else query


def admitted(result: dict[str, Any], refused_code: str) -> bool:
    """The operation got past the policy (it ran, or failed later for another reason)."""
    return refused_code not in codes(result) and result.get("close") is None


async def check(transport: str, url: str, refused: Operation, code: str, allowed: Operation) -> None:
    """``refused`` fails with ``code`` (and no data); ``allowed`` passes the same policy."""
    result = await run(transport, url, refused)
    assert code in codes(result), (transport, result)
    assert not result.get("data"), (transport, result)
    if transport != "graphql-ws":
        ok = await run(transport, url, allowed)
        assert admitted(ok, code), (transport, ok)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_safelist(transport: str, demo_services: dict[str, str], tmp_path: Path) -> None:
    """With a manifest, a document outside it is PERSISTED_QUERY_NOT_IN_LIST on every transport."""
    manifest = tmp_path / "manifest.json"
    listed = [QUERY_OK, SUB_OK]
    manifest.write_text(json.dumps({hashlib.sha256(d.encode()).hexdigest(): d for d in listed}))
    async with run_bff("safelist", demo_services, BFF_PERSISTED_QUERIES_MANIFEST=str(manifest)) as stack:
        doc = pick(
            transport, "{ genres { name } }", 'subscription { playlistUpdated(playlistId: "2") { change } }'
        )
        mutation = 'mutation { createPlaylist(input: {name: "x"}) { playlist { id } } }'
        refused = Operation(mutation if transport in ("post", "sse", "graphql-transport-ws") else doc)
        await check(transport, stack.graphql_url, refused, "PERSISTED_QUERY_NOT_IN_LIST", Operation(QUERY_OK))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_rate_limit(transport: str, demo_services: dict[str, str]) -> None:
    """Past BFF_RATE_LIMIT, operations are RATE_LIMITED on every transport (429 over HTTP)."""
    async with run_bff("rate", demo_services, BFF_RATE_LIMIT="3/minute") as stack:
        doc = Operation(pick(transport, QUERY_OK, SUB_OK))
        if transport != "graphql-ws":
            for _ in range(3):
                assert admitted(await run(transport, stack.graphql_url, doc), "RATE_LIMITED")
        else:
            for _ in range(3):
                assert admitted(await run(transport, stack.graphql_url, Operation(QUERY_OK)), "RATE_LIMITED")
        result = await run(transport, stack.graphql_url, doc)
        assert codes(result) == ["RATE_LIMITED"], result
        retry_after = result["errors"][0]["extensions"]["retryAfter"]
        assert 1 <= retry_after <= 60
        if transport in ("post", "get"):
            assert result["status"] == 429


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_rate_limit_by_cost(transport: str, demo_services: dict[str, str]) -> None:
    """By cost, one heavy operation spends the window: the next is RATE_LIMITED on every transport."""
    async with run_bff(
        "rate-cost", demo_services, BFF_RATE_LIMIT="60/minute", BFF_RATE_LIMIT_BY_COST="true"
    ) as stack:
        heavy = pick(
            transport,
            "{ tracks(first: 30) { edges { node { album { title } genre { name } } } } }",
            'subscription { playlistUpdated(playlistId: "1") { playlist { tracks { album { title } } } } }',
        )
        await run(transport, stack.graphql_url, Operation(heavy), timeout_s=1.0)
        result = await run(transport, stack.graphql_url, Operation(pick(transport, QUERY_OK, SUB_OK)))
        assert codes(result) == ["RATE_LIMITED"], result


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_operation_selection(transport: str, demo_services: dict[str, str]) -> None:
    """Several operations without operationName are refused (GraphQL spec 6.1), never priced as one."""
    async with run_bff("select", demo_services) as stack:
        two = pick(
            transport,
            "query A { genres { name } } query B { __typename }",
            'subscription A { playlistUpdated(playlistId: "1") { change } } '
            'subscription B { playlistUpdated(playlistId: "2") { change } }',
        )
        named = Operation("query A { __typename } query B { __typename }", operation_name="B")
        await check(transport, stack.graphql_url, Operation(two), "GRAPHQL_VALIDATION_FAILED", named)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cost_limit(transport: str, demo_services: dict[str, str]) -> None:
    """An operation over BFF_MAX_COST is QUERY_TOO_COMPLEX on every transport."""
    async with run_bff("cost", demo_services, BFF_MAX_COST="50") as stack:
        heavy = pick(
            transport,
            "{ tracks(first: 60) { edges { node { album { title } } } } }",
            'subscription { playlistUpdated(playlistId: "1") { playlist { tracks { album { title } } } } }',
        )
        await check(transport, stack.graphql_url, Operation(heavy), "QUERY_TOO_COMPLEX", Operation(QUERY_OK))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_depth_limit(transport: str, demo_services: dict[str, str]) -> None:
    """An operation deeper than BFF_MAX_DEPTH is QUERY_TOO_DEEP on every transport."""
    async with run_bff("depth", demo_services, BFF_MAX_DEPTH="3") as stack:
        deep = pick(
            transport,
            '{ track(id: "1") { album { artist { name } } } }',
            'subscription { playlistUpdated(playlistId: "1") { playlist { tracks { name } } } }',
        )
        await check(transport, stack.graphql_url, Operation(deep), "QUERY_TOO_DEEP", Operation(QUERY_OK))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_introspection_and_suggestions_off(transport: str, demo_services: dict[str, str]) -> None:
    """Introspection off and no "Did you mean" hints, on every transport."""
    env = {"BFF_INTROSPECTION": "false", "BFF_FIELD_SUGGESTIONS": "false"}
    async with run_bff("prod", demo_services, **env) as stack:
        if transport != "graphql-ws":
            result = await run(transport, stack.graphql_url, Operation("{ __schema { types { name } } }"))
            assert codes(result) == ["INTROSPECTION_DISABLED"], result
        typo = pick(
            transport, "{ genre { name } }", 'subscription { playlistUpdate(playlistId: "1") { change } }'
        )
        result = await run(transport, stack.graphql_url, Operation(typo))
        assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"], result
        assert all("Did you mean" not in error["message"] for error in result["errors"])


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_string_bound(transport: str, demo_services: dict[str, str]) -> None:
    """A variable string over BFF_MAX_STRING_BYTES is BAD_USER_INPUT before any downstream call."""
    async with run_bff("strings", demo_services, BFF_MAX_STRING_BYTES="100") as stack:
        doc = pick(
            transport,
            "query($s: String) { artists(search: $s) { totalCount } }",
            "subscription($s: ID!) { playlistUpdated(playlistId: $s) { change } }",
        )
        await stack.reset_counts()
        refused = Operation(doc, variables={"s": "x" * 101})
        await check(transport, stack.graphql_url, refused, "BAD_USER_INPUT", Operation(QUERY_OK))
        literal = pick(
            transport,
            '{ artists(search: "%s") { totalCount } }' % ("y" * 101),
            'subscription { playlistUpdated(playlistId: "%s") { change } }' % ("y" * 101),
        )
        result = await run(transport, stack.graphql_url, Operation(literal))
        assert codes(result) == ["BAD_USER_INPUT"], result
        assert await stack.total_requests() == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_apq(transport: str, demo_services: dict[str, str]) -> None:
    """Automatic persisted queries work the same on every transport: not found, register, run by hash."""
    async with run_bff("apq", demo_services) as stack:
        doc = pick(
            transport,
            "{ apq: __typename }",
            'subscription { apq: playlistUpdated(playlistId: "9") { change } }',
        )
        persisted = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(doc.encode()).hexdigest()}}
        result = await run(transport, stack.graphql_url, Operation(None, extensions=persisted))
        assert codes(result) == ["PERSISTED_QUERY_NOT_FOUND"], result
        if transport == "graphql-ws":
            return
        assert (await run(transport, stack.graphql_url, Operation(doc, extensions=persisted)))["data"] == {
            "apq": "Query"
        }
        result = await run(transport, stack.graphql_url, Operation(None, extensions=persisted))
        assert result["data"] == {"apq": "Query"}, result


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_size_limit(transport: str, demo_services: dict[str, str]) -> None:
    """A request or WebSocket message over BFF_MAX_BODY_BYTES is refused (413, or close 1009)."""
    async with run_bff("size", demo_services, BFF_MAX_BODY_BYTES="2048") as stack:
        big = Operation(pick(transport, QUERY_OK, SUB_OK) + " #" + "z" * 4000)
        result = await run(transport, stack.graphql_url, big)
        if transport in ("graphql-transport-ws", "graphql-ws"):
            assert result == {"close": 1009}
        else:
            assert result["status"] == 413
            assert codes(result) == ["REQUEST_TOO_LARGE"]
        assert admitted(await run(transport, stack.graphql_url, Operation(QUERY_OK)), "REQUEST_TOO_LARGE")


async def test_csrf_prevention_covers_sse(demo_services: dict[str, str]) -> None:
    """With BFF_CSRF_PREVENTION, an SSE GET a browser could send cross-site is refused as JSON (400)."""
    async with run_bff("csrf", demo_services, BFF_CSRF_PREVENTION="true") as stack:
        response = await stack.http.get(
            stack.graphql_url, params={"query": QUERY_OK}, headers={"Accept": "text/event-stream"}
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTED"
        allowed = await stack.http.get(
            stack.graphql_url,
            params={"query": QUERY_OK},
            headers={"Accept": "text/event-stream", "apollo-require-preflight": "true"},
        )
        assert allowed.status_code == 200
        assert allowed.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_parse_and_validation_errors_carry_codes(transport: str, demo_services: dict[str, str]) -> None:
    """A document that does not parse is GRAPHQL_PARSE_FAILED (graphql-transport-ws closes with 4400,
    as Strawberry's protocol handler does), one that does not validate GRAPHQL_VALIDATION_FAILED, and
    variables that do not coerce BAD_USER_INPUT, on every transport (Apollo's codes)."""
    async with run_bff("codes", demo_services) as stack:
        result = await run(transport, stack.graphql_url, Operation("{ genres { name "))
        if transport == "graphql-transport-ws":  # the protocol closes on a document that does not parse
            assert result == {"close": 4400}, result
        else:
            assert codes(result) == ["GRAPHQL_PARSE_FAILED"], result
        nope = pick(transport, "{ nope }", 'subscription { nope(playlistId: "1") { change } }')
        result = await run(transport, stack.graphql_url, Operation(nope))
        assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"], result
        typed = pick(
            transport,
            "query($n: Int) { tracks(first: $n) { totalCount } }",
            "subscription($n: ID!) { playlistUpdated(playlistId: $n) { change } }",
        )
        result = await run(transport, stack.graphql_url, Operation(typed, variables={"n": ["not", "this"]}))
        assert codes(result) == ["BAD_USER_INPUT"], result
