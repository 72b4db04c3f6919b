"""Resilience over real sockets: deadlines, retries, breakers, bulkheads, de-duplication, caching.

Each test starts its own demo services (so injected faults and cache state stay private) and its
own BFF with the settings under test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psutil
import pytest

from bff.downstream import Call, ServiceClient
from bff.errors import DownstreamUnavailable
from bff.settings import ServiceSettings
from bff_chinook.demo.server import start_services
from tests.e2e.stack import Stack, run_bff

SERVICES = ("customers", "catalog", "sales", "playlists")
FAST_RETRIES = {f"BFF_SERVICE_{name.upper()}_RETRY_WAIT_INITIAL_MS": "10" for name in SERVICES}
NESTED = '{ customer(id: "1") { invoices { lines { track { album { artist { name } } } } } } }'


@pytest.fixture
async def services() -> AsyncIterator[dict[str, str]]:
    """Demo services of this test alone."""
    running = await start_services(ports=dict.fromkeys(SERVICES, 0))
    async with running:
        yield running.urls


async def set_faults(stack: Stack, service: str, **faults: Any) -> None:
    """Replace one demo service's injected faults."""
    response = await stack.http.put(f"{stack.service_urls[service]}/_faults", json=faults)
    response.raise_for_status()


async def stats(stack: Stack, service: str) -> dict[str, Any]:
    """One demo service's request counters, with its recent request targets."""
    response = await stack.http.get(f"{stack.service_urls[service]}/_stats")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def connections_to(port: int) -> int:
    """Open TCP connections from this process (the BFF and the test's own client) to ``port``."""
    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


async def test_hanging_service_is_cut_at_the_operation_deadline(services: dict[str, str]) -> None:
    """A hanging catalog: partial data and DOWNSTREAM_TIMEOUT within the deadline, nothing left behind."""
    async with run_bff("hang", services, BFF_OPERATION_TIMEOUT_MS="1000") as stack:
        # Warm the keep-alive connections whose handler tasks outlive every request.
        await stack.post('{ customer(id: "1") { firstName } }')
        await set_faults(stack, "catalog", hang=True)
        catalog_port = int(services["catalog"].rsplit(":", 1)[1])
        sockets_before = connections_to(catalog_port)
        tasks_before = asyncio.all_tasks()
        started = time.monotonic()
        body = await stack.post('{ track(id: "1") { name } customer(id: "1") { firstName } }')
        elapsed = time.monotonic() - started
        assert elapsed < 1.0 + 0.1, f"took {elapsed:.3f} s for a 1 s deadline"
        assert body["data"] == {"track": None, "customer": {"firstName": "Luís"}}
        assert body["errors"][0]["extensions"]["code"] == "DOWNSTREAM_TIMEOUT"
        assert body["errors"][0]["extensions"]["service"] == "catalog"
        await asyncio.sleep(0.2)
        left = asyncio.all_tasks() - tasks_before
        assert not left, f"tasks left behind: {left}"
        assert connections_to(catalog_port) == sockets_before


async def test_503_twice_then_200_is_retried_to_success(services: dict[str, str]) -> None:
    """Two 503s then a 200: the query succeeds and the service saw exactly three requests."""
    async with run_bff("retry", services, **FAST_RETRIES) as stack:
        await set_faults(stack, "catalog", fail_first=2, error_status=503)
        await stack.http.delete(f"{services['catalog']}/_stats")
        body = await stack.post('{ track(id: "7") { name } }')
        assert body == {"data": {"track": {"name": "Let's Get It Up"}}}
        assert (await stats(stack, "catalog"))["total"] == 3


async def test_retry_after_is_honoured(services: dict[str, str]) -> None:
    """A 429 with Retry-After: 1 is retried after about one second and succeeds."""
    async with run_bff("429", services, **FAST_RETRIES) as stack:
        await set_faults(stack, "catalog", fail_first=1, error_status=429, retry_after="1")
        started = time.monotonic()
        body = await stack.post('{ track(id: "7") { name } }')
        assert time.monotonic() - started >= 0.95
        assert body == {"data": {"track": {"name": "Let's Get It Up"}}}


async def test_retry_after_above_the_cap_gives_up(services: dict[str, str]) -> None:
    """A Retry-After longer than the cap is not waited for: RATE_LIMITED after one request."""
    async with run_bff("429-cap", services, BFF_SERVICE_CATALOG_RETRY_AFTER_MAX_MS="2000") as stack:
        await set_faults(stack, "catalog", error_rate=1.0, error_status=429, retry_after="30")
        await stack.http.delete(f"{services['catalog']}/_stats")
        body = await stack.post('{ track(id: "7") { name } }')
        assert body["data"] == {"track": None}
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert body["errors"][0]["extensions"]["retryAfter"] == 30.0
        assert (await stats(stack, "catalog"))["total"] == 1


async def test_breaker_opens_then_half_opens_then_closes(services: dict[str, str]) -> None:
    """After 3 failures calls fail fast with no request; after recovery one probe goes, then traffic flows."""
    env = {
        "BFF_SERVICE_CATALOG_BREAKER_THRESHOLD": "3",
        "BFF_SERVICE_CATALOG_BREAKER_RECOVERY_MS": "500",
        "BFF_SERVICE_CATALOG_RETRY_ATTEMPTS": "1",
    }
    async with run_bff("breaker", services, **env) as stack:
        readyz = stack.graphql_url.replace("/graphql", "/readyz")
        await set_faults(stack, "catalog", error_rate=1.0, error_status=500)
        for track_id in range(1, 4):
            body = await stack.post(f'{{ track(id: "{track_id}") {{ name }} }}')
            assert body["errors"][0]["extensions"]["code"] == "DOWNSTREAM_ERROR"
        await stack.http.delete(f"{services['catalog']}/_stats")

        body = await stack.post('{ track(id: "4") { name } customer(id: "1") { firstName } }')
        assert body["data"] == {"track": None, "customer": {"firstName": "Luís"}}
        assert body["errors"][0]["extensions"] == {"code": "CIRCUIT_OPEN", "service": "catalog"}
        assert (await stats(stack, "catalog"))["total"] == 0
        ready = (await stack.http.get(readyz)).json()
        assert ready["status"] == "degraded"
        assert ready["services"]["catalog"] == {"breaker": "open"}

        await stack.http.delete(f"{services['catalog']}/_faults")
        await set_faults(stack, "catalog", delay_ms=200)
        await asyncio.sleep(0.6)
        assert (await stack.http.get(readyz)).json()["services"]["catalog"] == {"breaker": "half-open"}
        probes = await asyncio.gather(
            *(stack.post(f'{{ track(id: "{i}") {{ name }} }}') for i in range(10, 15))
        )
        codes = sorted(p["errors"][0]["extensions"]["code"] if "errors" in p else "OK" for p in probes)
        assert codes == ["CIRCUIT_OPEN"] * 4 + ["OK"]
        assert (await stats(stack, "catalog"))["total"] == 1

        body = await stack.post('{ track(id: "20") { name } }')
        assert "errors" not in body
        ready = (await stack.http.get(readyz)).json()
        assert ready["status"] == "ready"
        assert {state["breaker"] for state in ready["services"].values()} == {"closed"}


async def test_post_is_never_retried(services: dict[str, str]) -> None:
    """An injected failure on POST reaches the service exactly once."""
    settings = ServiceSettings.model_validate({"url": services["catalog"], "retry_wait_initial_ms": 10})
    client = ServiceClient("catalog", settings)
    async with httpx.AsyncClient() as admin:
        await admin.put(f"{services['catalog']}/_faults", json={"error_rate": 1.0, "methods": ["POST"]})
        with pytest.raises(DownstreamUnavailable):
            await client.request("POST", "/genres", call=Call("post-1"), json_body={"name": "Polka"})
        get = await client.get("/genres/1", call=Call("get-1"))
        counts = (await admin.get(f"{services['catalog']}/_stats")).json()["requests"]
    await client.aclose()
    assert get.body["name"] == "Rock"
    assert counts == {"POST /genres": 1, "GET /genres/1": 1}


async def test_bulkhead_rejects_beyond_its_queue(services: dict[str, str]) -> None:
    """With one slot and no queue, concurrent calls beyond the first fail fast as DOWNSTREAM_UNAVAILABLE."""
    env = {"BFF_SERVICE_CATALOG_MAX_CONCURRENCY": "1", "BFF_SERVICE_CATALOG_MAX_QUEUE": "0"}
    async with run_bff("bulkhead", services, **env) as stack:
        await set_faults(stack, "catalog", delay_ms=300)
        bodies = await asyncio.gather(
            *(stack.post(f'{{ track(id: "{i}") {{ name }} }}') for i in range(1, 4))
        )
    codes = sorted(b["errors"][0]["extensions"]["code"] if "errors" in b else "OK" for b in bodies)
    assert codes == ["DOWNSTREAM_UNAVAILABLE", "DOWNSTREAM_UNAVAILABLE", "OK"]


async def test_cache_serves_a_repeated_query_without_requests(services: dict[str, str]) -> None:
    """The same nested query twice within the TTL makes zero downstream requests the second time."""
    env = {f"BFF_SERVICE_{name.upper()}_CACHE_TTL_MS": "60000" for name in SERVICES}
    async with run_bff("cache", services, **env) as stack:
        first = await stack.post(NESTED)
        await stack.reset_counts()
        second = await stack.post(NESTED)
        assert second == first
        assert "errors" not in second
        assert await stack.total_requests() == 0


async def test_cache_fetches_only_the_misses(services: dict[str, str]) -> None:
    """Ten tracks of which seven are cached: one request for the other three keys only."""
    async with run_bff("misses", services, BFF_SERVICE_CATALOG_CACHE_TTL_MS="60000") as stack:
        await stack.post("{ " + " ".join(f't{i}: track(id: "{i}") {{ name }}' for i in range(1, 8)) + " }")
        await stack.reset_counts()
        body = await stack.post(
            "{ " + " ".join(f't{i}: track(id: "{i}") {{ name }}' for i in range(1, 11)) + " }"
        )
        assert len(body["data"]) == 10
        assert all(value is not None for value in body["data"].values())
        assert (await stats(stack, "catalog"))["recent"] == ["GET /tracks?id=8&id=9&id=10"]


async def test_no_store_is_never_cached(services: dict[str, str]) -> None:
    """Answers marked Cache-Control: no-store are fetched again every time."""
    async with run_bff("no-store", services, BFF_SERVICE_CATALOG_CACHE_TTL_MS="60000") as stack:
        await set_faults(stack, "catalog", cache_control="no-store")
        await stack.post('{ track(id: "1") { name } }')
        await stack.post('{ track(id: "1") { name } }')
        assert (await stats(stack, "catalog"))["requests"] == {"GET /tracks": 2}


async def test_max_age_from_the_service_wins_over_the_default(services: dict[str, str]) -> None:
    """A service's max-age=0 keeps its answers out of the cache even with a configured TTL."""
    async with run_bff("max-age", services, BFF_SERVICE_CATALOG_CACHE_TTL_MS="60000") as stack:
        await set_faults(stack, "catalog", cache_control="public, max-age=0")
        await stack.post('{ track(id: "1") { name } }')
        await stack.post('{ track(id: "1") { name } }')
        assert (await stats(stack, "catalog"))["requests"] == {"GET /tracks": 2}


async def test_stale_entity_is_served_while_the_service_fails(services: dict[str, str]) -> None:
    """With catalog down and the cached track expired, the track still comes back, marked stale."""
    env = {
        "BFF_SERVICE_CATALOG_CACHE_TTL_MS": "100",
        "BFF_SERVICE_CATALOG_STALE_IF_ERROR_MS": "60000",
        "BFF_SERVICE_CATALOG_RETRY_ATTEMPTS": "1",
    }
    async with run_bff("stale", services, **env) as stack:
        fresh = await stack.post('{ track(id: "5") { name album { title } } }')
        await asyncio.sleep(0.25)
        await set_faults(stack, "catalog", error_rate=1.0, error_status=503)
        stale = await stack.post('{ track(id: "5") { name album { title } } }')
    assert stale["data"] == fresh["data"]
    assert "errors" not in stale
    marks = stale["extensions"]["stale"]
    assert [mark["path"] for mark in marks] == [["track"], ["track", "album"]]
    assert all(mark["service"] == "catalog" and mark["ageMs"] >= 200 for mark in marks)


async def test_stale_is_served_on_the_first_failure_without_retrying(services: dict[str, str]) -> None:
    """With stale copies of every key, a failed batch is not retried: stale data comes back at once."""
    env = {"BFF_SERVICE_CATALOG_CACHE_TTL_MS": "100", "BFF_SERVICE_CATALOG_RETRY_WAIT_INITIAL_MS": "500"}
    async with run_bff("stale-fast", services, **env) as stack:
        await stack.post('{ track(id: "5") { name } }')
        await asyncio.sleep(0.25)
        await set_faults(stack, "catalog", error_rate=1.0, error_status=503)
        await stack.http.delete(f"{services['catalog']}/_stats")
        body = await stack.post('{ track(id: "5") { name } }')
        assert body["extensions"]["stale"][0]["path"] == ["track"]
        assert (await stats(stack, "catalog"))["total"] == 1


async def test_stale_window_is_bounded(services: dict[str, str]) -> None:
    """Past the stale window, a failing service gives its error instead of old data."""
    env = {
        "BFF_SERVICE_CATALOG_CACHE_TTL_MS": "50",
        "BFF_SERVICE_CATALOG_STALE_IF_ERROR_MS": "50",
        "BFF_SERVICE_CATALOG_RETRY_ATTEMPTS": "1",
    }
    async with run_bff("stale-window", services, **env) as stack:
        await stack.post('{ track(id: "5") { name } }')
        await asyncio.sleep(0.25)
        await set_faults(stack, "catalog", error_rate=1.0, error_status=503)
        body = await stack.post('{ track(id: "5") { name } }')
    assert body["data"] == {"track": None}
    assert body["errors"][0]["extensions"]["code"] == "DOWNSTREAM_UNAVAILABLE"


async def test_concurrent_identical_queries_share_one_request(services: dict[str, str]) -> None:
    """50 concurrent identical queries for an uncached entity cause one downstream request."""
    async with run_bff("dedup", services) as stack:
        await set_faults(stack, "catalog", delay_ms=200)
        await stack.http.delete(f"{services['catalog']}/_stats")
        bodies = await asyncio.gather(*(stack.post('{ track(id: "42") { name } }') for _ in range(50)))
        assert all(body == bodies[0] for body in bodies)
        assert "errors" not in bodies[0]
        assert (await stats(stack, "catalog"))["total"] == 1


async def test_one_error_per_failed_batch(services: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """A failing catalog nulls each track but reports and logs one error for the batch, not one per field."""
    caplog.set_level(logging.INFO, logger="bff.errors")
    env = {"BFF_SERVICE_CATALOG_RETRY_ATTEMPTS": "1"}
    async with run_bff("batch-error", services, **env) as stack:
        await set_faults(stack, "catalog", error_rate=1.0, error_status=503)
        body = await stack.post('{ invoice(id: "98") { total lines { id track { name } } } }')
    lines = body["data"]["invoice"]["lines"]
    assert len(lines) > 1
    assert all(line["track"] is None for line in lines)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "DOWNSTREAM_UNAVAILABLE"
    assert error["extensions"]["service"] == "catalog"
    assert error["extensions"]["affectedFields"] == len(lines)
    assert sum("DOWNSTREAM_UNAVAILABLE" in record.getMessage() for record in caplog.records) == 1
    assert "Traceback" not in str(body)


async def test_input_that_cannot_be_sent_is_bad_user_input_and_spares_the_breaker(
    services: dict[str, str],
) -> None:
    """A 70 KB search httpx cannot put in a URL is BAD_USER_INPUT, five times; the breaker stays closed."""
    env = {
        "BFF_MAX_STRING_BYTES": "200000",
        "BFF_MAX_BODY_BYTES": "300000",
        "BFF_SERVICE_CATALOG_BREAKER_THRESHOLD": "3",
    }
    async with run_bff("invalid-url", services, **env) as stack:
        query = "query($s: String) { artists(search: $s) { totalCount } }"
        for _ in range(5):
            body = await stack.post(query, {"s": "x" * 70_000})
            assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
        ready = (await stack.http.get(stack.graphql_url.replace("/graphql", "/readyz"))).json()
        assert ready["services"]["catalog"]["breaker"] == "closed"
        assert (await stack.post('{ artist(id: "1") { name } }'))["data"] == {"artist": {"name": "AC/DC"}}


async def _raw_catalog(answer: bytes) -> asyncio.Server:
    """A catalog on 127.0.0.1 that writes ``answer`` (raw HTTP bytes) for every request it reads."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline() not in (b"\r\n", b""):
            pass
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _json_answer(body: bytes, head: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + head
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (_json_answer(b"hello", b"Content-Encoding: gzip\r\n"), "DOWNSTREAM_ERROR"),
        (_json_answer(b"[" * 100_000 + b"]" * 100_000), "DOWNSTREAM_ERROR"),
        (_json_answer(b'{"Name": "\xff\xfe"}'), "DOWNSTREAM_ERROR"),
        (b"NOT HTTP AT ALL\r\n\r\n", "DOWNSTREAM_UNAVAILABLE"),
    ],
    ids=["gzip-that-is-not", "nested-too-deep", "invalid-utf8", "not-http"],
)
async def test_a_garbled_answer_is_a_downstream_error(
    services: dict[str, str], answer: bytes, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A catalog answering garbage (a body its Content-Encoding does not decode, JSON nested past
    the parser's recursion limit, bytes in no UTF, no HTTP at all) fails the field with a
    DOWNSTREAM_* code naming the service, never INTERNAL_SERVER_ERROR with a logged traceback."""
    server = await _raw_catalog(answer)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        run_bff("garbled", {**services, "catalog": f"http://127.0.0.1:{port}"}, **FAST_RETRIES) as stack,
    ):
        body = await stack.post('{ track(id: "1") { name } customer(id: "1") { firstName } }')
    assert body["data"] == {"track": None, "customer": {"firstName": "Luís"}}
    assert [error["extensions"]["code"] for error in body["errors"]] == [code]
    assert body["errors"][0]["extensions"]["service"] == "catalog"
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
