"""Protecting the endpoint, over real sockets: protocol, limits, auth, rate limits, APQ, CORS, CSRF."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web

from bff.app import VIEW
from bff.persisted import sha256_hex
from tests.e2e.stack import Stack, run_bff
from tests.support.chinook import customer_record
from tests.support.tokens import SECRET, token

GRAPHQL_RESPONSE = "application/graphql-response+json"
HEALTHY_QUERY = "{ genres { name } }"


async def post(stack: Stack, body: Any, **headers: str) -> httpx.Response:
    """POST ``body`` as JSON with extra headers (underscores in names become dashes)."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    return await stack.http.post(stack.graphql_url, json=body, headers=sent)


async def assert_serving(stack: Stack) -> None:
    """The BFF still answers a normal query."""
    response = await post(stack, {"query": HEALTHY_QUERY})
    assert response.status_code == 200
    assert response.json()["data"]["genres"][0] == {"name": "Rock"}


def codes(body: dict[str, Any]) -> list[str]:
    """The codes of a response body's errors."""
    return [error["extensions"]["code"] for error in body.get("errors", [])]


# GraphQL over HTTP --------------------------------------------------------------------------------


async def test_graphql_response_json_request_errors_are_400_without_data(
    demo_services: dict[str, str],
) -> None:
    """Parse and validation failures: 400 and no ``data`` with graphql-response+json, 200 with JSON."""
    async with run_bff("protocol", demo_services) as stack:
        for query in ("{", "{ nope }"):
            modern = await post(stack, {"query": query}, accept=GRAPHQL_RESPONSE)
            assert modern.status_code == 400
            assert modern.headers["Content-Type"].startswith(GRAPHQL_RESPONSE)
            assert "data" not in modern.json()
            legacy = await post(stack, {"query": query}, accept="application/json")
            assert legacy.status_code == 200
            assert legacy.headers["Content-Type"] == "application/json; charset=utf-8"
            assert "data" not in legacy.json()
        # A field error nulls the non-null root: still a response with data (null), so 200.
        partial = await post(
            stack, {"query": "{ tracks(first: 500) { totalCount } }"}, accept=GRAPHQL_RESPONSE
        )
        assert partial.status_code == 200
        assert partial.json()["data"] is None
        assert codes(partial.json()) == ["BAD_USER_INPUT"]


async def test_transport_refusals_have_status_and_code(demo_services: dict[str, str]) -> None:
    """Wrong method, media types, charsets, bodies and mutations over GET get 4xx with a code."""
    async with run_bff("refusals", demo_services) as stack:
        url = stack.graphql_url
        cases = [
            (await stack.http.put(url, json={"query": HEALTHY_QUERY}), 405, "METHOD_NOT_ALLOWED"),
            (await stack.http.get(url, params={"query": "mutation { x }"}), 405, "METHOD_NOT_ALLOWED"),
            (
                await stack.http.post(url, content=b'{"query": "{ genres { id } }"}'),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (
                await stack.http.post(url, content=b"query", headers={"Content-Type": "text/plain"}),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (
                await stack.http.post(
                    url,
                    content=b'{"query":"{ __typename }"}',
                    headers={"Content-Type": "application/json; charset=latin-1"},
                ),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (await post(stack, {"query": HEALTHY_QUERY}, accept="text/plain"), 406, "NOT_ACCEPTABLE"),
            (
                await stack.http.post(
                    url, content=b"{ not json", headers={"Content-Type": "application/json"}
                ),
                400,
                "BAD_REQUEST",
            ),
            (await post(stack, [{"query": HEALTHY_QUERY}]), 400, "BAD_REQUEST"),
            (await post(stack, {"query": HEALTHY_QUERY, "variables": "x"}), 400, "BAD_REQUEST"),
            (
                await stack.http.get(url, params={"query": "{ __typename }", "variables": "{"}),
                400,
                "BAD_REQUEST",
            ),
        ]
        for response, status, code in cases:
            assert (response.status_code, codes(response.json())) == (status, [code]), response.text
        assert cases[0][0].headers["Allow"] == "GET, POST"
        assert cases[1][0].headers["Allow"] == "POST"
        await assert_serving(stack)


async def test_request_body_limit_is_413(demo_services: dict[str, str]) -> None:
    """A body over ``BFF_MAX_BODY_BYTES`` gets 413 with ``REQUEST_TOO_LARGE``; the server keeps serving."""
    async with run_bff("body", demo_services, BFF_MAX_BODY_BYTES="2048") as stack:
        response = await post(stack, {"query": "{ __typename }", "padding": "x" * 5000})
        assert response.status_code == 413
        assert codes(response.json()) == ["REQUEST_TOO_LARGE"]
        assert "2048" in response.json()["errors"][0]["message"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1000
            yield b'{"query": "{ __typename }"}'

        chunked = await stack.http.post(
            stack.graphql_url, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
        await assert_serving(stack)


# Limits -------------------------------------------------------------------------------------------

LIMIT_CASES = [
    ({"BFF_MAX_DEPTH": "3"}, '{ customer(id: "1") { invoices { lines { id } } } }', "QUERY_TOO_DEEP"),
    (
        {"BFF_MAX_COST": "100"},
        "{ tracks(first: 100) { edges { node { album { id } } } } }",
        "QUERY_TOO_COMPLEX",
    ),
    (
        {"BFF_MAX_ALIASES": "3"},
        "{ a: genres { id } b: genres { id } c: genres { id } d: genres { id } }",
        "TOO_MANY_ALIASES",
    ),
    (
        {"BFF_MAX_ROOT_FIELDS": "2"},
        '{ genres { id } artist(id: "1") { id } album(id: "1") { id } }',
        "TOO_MANY_ROOT_FIELDS",
    ),
    (
        {"BFF_MAX_TOKENS": "20"},
        "{ genres { id name } " + " ".join(f"g{i}: genres {{ id }}" for i in range(10)) + " }",
        "TOO_MANY_TOKENS",
    ),
]


@pytest.mark.parametrize(
    ("environ", "query", "code"), LIMIT_CASES, ids=["depth", "cost", "aliases", "root-fields", "tokens"]
)
async def test_each_limit_rejects_with_its_code_and_keeps_serving(
    demo_services: dict[str, str], environ: dict[str, str], query: str, code: str
) -> None:
    """Over a limit: the operation is refused before any downstream call, then normal queries still run."""
    async with run_bff("limit", demo_services, **environ) as stack:
        await stack.reset_counts()
        response = await post(stack, {"query": query}, accept=GRAPHQL_RESPONSE)
        assert response.status_code == 400
        body = response.json()
        assert "data" not in body
        assert codes(body) == [code]
        assert next(iter(environ.values())) in body["errors"][0]["message"]
        assert await stack.total_requests() == 0
        await assert_serving(stack)


async def test_default_limits_let_the_heavy_documented_queries_through(demo_services: dict[str, str]) -> None:
    """The heaviest queries of the e2e suite (all customers' invoices, a whole playlist) pass by default."""
    async with run_bff("defaults", demo_services) as stack:
        heavy = (
            "{ customers(first: 59) { edges { node {"
            " invoices { total lines { track { name genre { name } } } } } } } }"
        )
        response = await post(stack, {"query": heavy})
        assert "errors" not in response.json()
        response = await post(
            stack, {"query": '{ playlist(id: "3") { name tracks { id album { title } } } }'}
        )
        assert "errors" not in response.json()


async def test_validation_cache_hits_over_http(demo_services: dict[str, str]) -> None:
    """Repeating a document over HTTP validates it once: the limit rules keep the cache hitting."""
    async with run_bff("cache", demo_services) as stack:
        assert stack.app is not None
        cache = stack.app[VIEW].schema.validated
        query = '{ cacheProof: genres { id } track(id: "1") { name } }'
        await post(stack, {"query": query})
        before = (cache.hits, cache.misses)
        for _ in range(4):
            assert "errors" not in (await post(stack, {"query": query})).json()
        after = (cache.hits, cache.misses)
    assert (after[0] - before[0], after[1] - before[1]) == (4, 0)


async def test_introspection_and_suggestions_can_be_turned_off(demo_services: dict[str, str]) -> None:
    """With introspection off ``__schema`` fails with ``INTROSPECTION_DISABLED``; no "Did you mean" hints."""
    async with run_bff(
        "prod", demo_services, BFF_INTROSPECTION="false", BFF_FIELD_SUGGESTIONS="false"
    ) as stack:
        body = (await post(stack, {"query": "{ __schema { types { name } } }"})).json()
        assert codes(body) == ["INTROSPECTION_DISABLED"]
        body = (await post(stack, {"query": "{ genre { name } }"})).json()
        assert "Did you mean" not in body["errors"][0]["message"]
        assert (await post(stack, {"query": "{ __typename }"})).json() == {"data": {"__typename": "Query"}}
    async with run_bff("dev", demo_services) as stack:
        body = (await post(stack, {"query": "{ genre { name } }"})).json()
        assert "Did you mean" in body["errors"][0]["message"]


# Authentication and authorization -----------------------------------------------------------------

CUSTOMER_DATA = '{ customer(id: "1") { firstName email invoices { id } } }'


async def test_field_permissions_per_principal(demo_services: dict[str, str]) -> None:
    """Customers see their own email and invoices only (``FORBIDDEN`` otherwise); employees see all."""
    env = {"BFF_JWT_HS256_SECRET": SECRET, "BFF_AUTH_REQUIRED": "true"}
    async with run_bff("authz", demo_services, **env) as stack:
        own = (
            await post(
                stack, {"query": CUSTOMER_DATA}, authorization=f"Bearer {token(sub='c1', customer_id='1')}"
            )
        ).json()
        assert "errors" not in own
        assert own["data"]["customer"]["email"]
        other = (
            await post(
                stack, {"query": CUSTOMER_DATA}, authorization=f"Bearer {token(sub='c2', customer_id='2')}"
            )
        ).json()
        assert other["data"]["customer"] == {
            "firstName": own["data"]["customer"]["firstName"],
            "email": None,
            "invoices": None,
        }
        assert codes(other) == ["FORBIDDEN", "FORBIDDEN"]
        employee = f"Bearer {token(sub='e1', role='employee')}"
        staff = (await post(stack, {"query": CUSTOMER_DATA}, authorization=employee)).json()
        assert staff == own
        invoice = (
            await post(
                stack,
                {"query": '{ invoice(id: "1") { total } }'},
                authorization=f"Bearer {token(sub='c1', customer_id='1')}",
            )
        ).json()
        assert codes(invoice) == ["FORBIDDEN"]


async def test_anonymous_access_where_a_principal_is_required(demo_services: dict[str, str]) -> None:
    """Anonymous: protected fields fail with ``UNAUTHENTICATED``; 401 only when no field could run."""
    async with run_bff(
        "authn", demo_services, BFF_JWT_HS256_SECRET=SECRET, BFF_AUTH_REQUIRED="true"
    ) as stack:
        partial = await post(stack, {"query": CUSTOMER_DATA})
        assert partial.status_code == 200
        assert partial.json()["data"]["customer"]["firstName"]
        assert codes(partial.json()) == ["UNAUTHENTICATED", "UNAUTHENTICATED"]
        nothing = await post(stack, {"query": '{ invoice(id: "1") { total } }'})
        assert nothing.status_code == 401
        assert nothing.headers["WWW-Authenticate"] == "Bearer"
        assert codes(nothing.json()) == ["UNAUTHENTICATED"]
        bad = await post(stack, {"query": HEALTHY_QUERY}, authorization="Bearer not-a-token")
        assert bad.status_code == 401
        assert codes(bad.json()) == ["UNAUTHENTICATED"]
        expired = jwt.encode({"sub": "x", "exp": int(time.time()) - 3600}, SECRET, algorithm="HS256")
        assert (
            await post(stack, {"query": HEALTHY_QUERY}, authorization=f"Bearer {expired}")
        ).status_code == 401
        await assert_serving(stack)


async def test_authorization_header_is_forwarded_downstream() -> None:
    """A valid bearer token goes to the downstream services in ``Authorization``."""
    seen: list[str | None] = []

    async def customers(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        record = customer_record(id=1, firstName="Ana", lastName="B", email="a@b.c")
        return web.json_response([record], headers={"X-Total-Count": "1"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", customers)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    try:
        urls = {"customers": f"http://127.0.0.1:{port}"}
        async with run_bff("forward", urls, BFF_JWT_HS256_SECRET=SECRET) as stack:
            header = f"Bearer {token(sub='e1', role='employee')}"
            body = (
                await post(stack, {"query": '{ customer(id: "1") { firstName } }'}, authorization=header)
            ).json()
            assert body == {"data": {"customer": {"firstName": "Ana"}}}
            assert seen == [header]
    finally:
        await runner.cleanup()


# Rate limits --------------------------------------------------------------------------------------


async def test_rate_limit_per_principal(demo_services: dict[str, str]) -> None:
    """Over the limit: 429 with ``Retry-After`` and ``RATE_LIMITED``; another principal is not affected."""
    keys = {hashlib.sha256(name.encode()).hexdigest(): f"employee:{name}" for name in ("alice", "bob")}
    env = {"BFF_RATE_LIMIT": "3/minute", "BFF_API_KEYS": json.dumps(keys)}
    async with run_bff("rate", demo_services, **env) as stack:
        for _ in range(3):
            assert (await post(stack, {"query": "{ __typename }"}, x_api_key="alice")).status_code == 200
        limited = await post(stack, {"query": "{ __typename }"}, x_api_key="alice")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert codes(limited.json()) == ["RATE_LIMITED"]
        assert (await post(stack, {"query": "{ __typename }"}, x_api_key="bob")).status_code == 200
        assert (await post(stack, {"query": "{ __typename }"})).status_code == 200  # anonymous: by IP


async def test_rate_limit_weighted_by_cost(demo_services: dict[str, str]) -> None:
    """With ``BFF_RATE_LIMIT_BY_COST`` an expensive operation uses up the window sooner."""
    env = {"BFF_RATE_LIMIT": "150/minute", "BFF_RATE_LIMIT_BY_COST": "true"}
    async with run_bff("rate-cost", demo_services, **env) as stack:
        query = "{ tracks(first: 50) { edges { node { album { id } } } } }"  # costs 51
        statuses = [(await post(stack, {"query": query})).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


async def test_failed_credentials_are_throttled_per_client_ip(demo_services: dict[str, str]) -> None:
    """After 10 failed authentications (the default BFF_AUTH_FAILURE_LIMIT) requests with credentials
    from that IP get 429 RATE_LIMITED with Retry-After, good ones too; anonymous ones still run."""
    keys = {hashlib.sha256(b"alice").hexdigest(): "employee:alice"}
    async with run_bff("auth-failures", demo_services, BFF_API_KEYS=json.dumps(keys)) as stack:
        started = time.monotonic()
        responses = await asyncio.gather(
            *(post(stack, {"query": HEALTHY_QUERY}, x_api_key=f"guess-{n}") for n in range(100))
        )
        assert time.monotonic() - started < 5
        assert Counter(response.status_code for response in responses) == {401: 10, 429: 90}
        limited = next(response for response in responses if response.status_code == 429)
        assert codes(limited.json()) == ["RATE_LIMITED"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["errors"][0]["extensions"]["retryAfter"] == int(limited.headers["Retry-After"])
        good = await post(stack, {"query": HEALTHY_QUERY}, x_api_key="alice")
        assert (good.status_code, codes(good.json())) == (429, ["RATE_LIMITED"])
        token_too = await post(stack, {"query": HEALTHY_QUERY}, authorization="Bearer x.y.z")
        assert token_too.status_code == 429
        await assert_serving(stack)


async def test_auth_failure_limit_is_a_setting(demo_services: dict[str, str]) -> None:
    """BFF_AUTH_FAILURE_LIMIT sets how many failures an IP may have; good credentials count nothing."""
    keys = {hashlib.sha256(b"alice").hexdigest(): "employee:alice"}
    env = {"BFF_AUTH_FAILURE_LIMIT": "2/minute", "BFF_API_KEYS": json.dumps(keys)}
    async with run_bff("auth-failure-limit", demo_services, **env) as stack:
        for _ in range(5):
            assert (await post(stack, {"query": HEALTHY_QUERY}, x_api_key="alice")).status_code == 200
        statuses = [
            (await post(stack, {"query": HEALTHY_QUERY}, x_api_key="bad")).status_code for _ in range(3)
        ]
        assert statuses == [401, 401, 429]


# Persisted queries --------------------------------------------------------------------------------


async def test_apq_round_trip(demo_services: dict[str, str]) -> None:
    """Hash alone: ``PERSISTED_QUERY_NOT_FOUND``; hash and query: runs and registers; hash alone then runs."""
    query = "query Genres { genres { name } }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
    async with run_bff("apq", demo_services) as stack:
        first = (await post(stack, {"extensions": extensions})).json()
        assert codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]
        registered = (await post(stack, {"query": query, "extensions": extensions})).json()
        assert registered["data"]["genres"][0] == {"name": "Rock"}
        again = (await post(stack, {"extensions": extensions})).json()
        assert again == registered
        over_get = await stack.http.get(stack.graphql_url, params={"extensions": json.dumps(extensions)})
        assert over_get.json() == registered
        wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
        mismatch = (await post(stack, {"query": query, "extensions": wrong})).json()
        assert codes(mismatch) == ["PERSISTED_QUERY_HASH_MISMATCH"]


async def test_safelist_runs_only_the_manifest(demo_services: dict[str, str], tmp_path: Path) -> None:
    """With a manifest only its documents run, by hash or text; others get PERSISTED_QUERY_NOT_IN_LIST."""
    listed = "query Genres { genres { name } }"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": sha256_hex(listed), "name": "Genres", "type": "query", "body": listed}],
            }
        )
    )
    async with run_bff("safelist", demo_services, BFF_PERSISTED_QUERIES_MANIFEST=str(manifest)) as stack:
        by_hash = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(listed)}}
        assert "errors" not in (await post(stack, {"extensions": by_hash})).json()
        assert "errors" not in (await post(stack, {"query": listed})).json()
        refused = (await post(stack, {"query": "{ genres { id } }"})).json()
        assert codes(refused) == ["PERSISTED_QUERY_NOT_IN_LIST"]
        other = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex("{ genres { id } }")}}
        assert codes((await post(stack, {"query": "{ genres { id } }", "extensions": other})).json()) == [
            "PERSISTED_QUERY_NOT_IN_LIST"
        ]


# CORS and CSRF ------------------------------------------------------------------------------------


async def test_cors_allow_list(demo_services: dict[str, str]) -> None:
    """Allowed origins get CORS headers and preflights; others get none and a 403 preflight."""
    async with run_bff("cors", demo_services, BFF_CORS_ALLOWED_ORIGINS="https://app.example") as stack:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        ok = await stack.http.options(
            stack.graphql_url, headers={"Origin": "https://app.example", **preflight}
        )
        assert ok.status_code == 204
        assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in ok.headers["Access-Control-Allow-Methods"]
        evil = await stack.http.options(
            stack.graphql_url, headers={"Origin": "https://evil.example", **preflight}
        )
        assert evil.status_code == 403
        assert "Access-Control-Allow-Origin" not in evil.headers
        allowed = await post(stack, {"query": "{ __typename }"}, origin="https://app.example")
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        other = await post(stack, {"query": "{ __typename }"}, origin="https://evil.example")
        assert "Access-Control-Allow-Origin" not in other.headers
        ws_headers = {
            "Origin": "https://evil.example",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": "graphql-transport-ws",
        }
        assert (await stack.http.get(stack.graphql_url, headers=ws_headers)).status_code == 403


async def test_csrf_prevention(demo_services: dict[str, str]) -> None:
    """With CSRF prevention, a simple GET needs a preflight header; JSON POSTs pass."""
    async with run_bff("csrf", demo_services, BFF_CSRF_PREVENTION="true") as stack:
        simple = await stack.http.get(stack.graphql_url, params={"query": "{ __typename }"})
        assert simple.status_code == 400
        assert codes(simple.json()) == ["CSRF_PREVENTED"]
        flagged = await stack.http.get(
            stack.graphql_url,
            params={"query": "{ __typename }"},
            headers={"apollo-require-preflight": "true"},
        )
        assert flagged.status_code == 200
        assert (await post(stack, {"query": "{ __typename }"})).status_code == 200
