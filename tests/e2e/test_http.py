"""The endpoint over HTTP: GET and POST, GraphiQL, health, request ids, coded and masked errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from bff_chinook.demo.server import start_services
from tests.e2e.stack import Stack, run_bff

SERVICES = ("customers", "catalog", "sales", "playlists")


@pytest.fixture
async def demo(demo_stack: Stack) -> Stack:
    """The BFF over the shared demo services, counters reset."""
    await demo_stack.reset_counts()
    return demo_stack


@pytest.fixture
async def own_services() -> AsyncIterator[dict[str, str]]:
    """Demo services of this test alone, so it may break their data or inject faults freely."""
    services = await start_services(ports=dict.fromkeys(SERVICES, 0))
    async with services:
        yield services.urls


def closed_port_url() -> str:
    """A 127.0.0.1 URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_get_runs_a_query(demo: Stack) -> None:
    """GET /graphql?query=... answers a query as JSON."""
    response = await demo.http.get(demo.graphql_url, params={"query": "{ genres { name } }"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["data"]["genres"][0] == {"name": "Rock"}


async def test_graphiql_page_for_browsers(demo: Stack) -> None:
    """A browser's GET gets the GraphiQL page, whose assets the BFF serves itself."""
    response = await demo.http.get(demo.graphql_url, headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    assert "unpkg" not in response.text, "assets must be local (run `npm ci --prefix bff/graphiql`)"
    asset = response.text.split('src="', 1)[1].split('"', 1)[0]
    assert asset.startswith("/graphiql/assets/")
    served = await demo.http.get(demo.graphql_url.replace("/graphql", asset))
    assert served.status_code == 200
    assert len(served.content) > 10_000


async def test_healthz(demo: Stack) -> None:
    """/healthz answers 200 without touching any downstream service."""
    response = await demo.http.get(demo.graphql_url.replace("/graphql", "/healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert await demo.total_requests() == 0


async def test_request_id_is_echoed_or_made(demo: Stack) -> None:
    """A sane X-Request-Id comes back as sent; an unsafe one is replaced by a fresh id."""
    sent = await demo.http.post(
        demo.graphql_url, json={"query": "{ genres { id } }"}, headers={"X-Request-Id": "abc-1"}
    )
    assert sent.headers["X-Request-Id"] == "abc-1"
    unsafe = await demo.http.post(
        demo.graphql_url, json={"query": "{ genres { id } }"}, headers={"X-Request-Id": "a b\tc"}
    )
    assert unsafe.headers["X-Request-Id"] not in ("", "a b\tc")
    assert len(unsafe.headers["X-Request-Id"]) == 32


async def test_syntax_and_validation_errors_are_client_errors(demo: Stack) -> None:
    """A malformed query or an unknown field is a GraphQL error, never a 500 or a traceback."""
    for query in ("{ customer(id: ", "{ nosuchfield }", "{ customer(id: 1) { nosuch } }"):
        response = await demo.http.post(demo.graphql_url, json={"query": query})
        assert response.status_code < 500
        body = response.json()
        assert body["errors"], body
        assert "Traceback" not in response.text
    assert await demo.total_requests() == 0


async def test_failing_service_nulls_only_its_fields(own_services: dict[str, str]) -> None:
    """With sales answering 503, customer data still arrives and the invoice is null with a coded error."""
    async with run_bff("faulty", own_services) as stack:
        put = await stack.http.put(
            f"{own_services['sales']}/_faults", json={"error_rate": 1.0, "error_status": 503}
        )
        assert put.status_code == 200
        body = await stack.post('{ customer(id: "1") { firstName } invoice(id: "1") { total } }')
    assert body["data"] == {"customer": {"firstName": "Luís"}, "invoice": None}
    [error] = body["errors"]
    assert error["path"] == ["invoice"]
    assert error["extensions"]["code"] == "DOWNSTREAM_UNAVAILABLE"
    assert error["extensions"]["service"] == "sales"


async def test_unreachable_service_is_unavailable(own_services: dict[str, str]) -> None:
    """A service nobody listens for gives DOWNSTREAM_UNAVAILABLE; the other fields resolve."""
    async with run_bff("refused", {**own_services, "playlists": closed_port_url()}) as stack:
        body = await stack.post('{ playlist(id: "1") { name } genres { name } }')
    assert body["data"]["playlist"] is None
    assert len(body["data"]["genres"]) == 25
    assert body["errors"][0]["extensions"] == {"code": "DOWNSTREAM_UNAVAILABLE", "service": "playlists"}


async def test_slow_service_times_out(own_services: dict[str, str]) -> None:
    """A catalog slower than its read timeout gives DOWNSTREAM_TIMEOUT for its fields only."""
    async with run_bff("slow", own_services, BFF_SERVICE_CATALOG_READ_TIMEOUT_MS="200") as stack:
        await stack.http.put(f"{own_services['catalog']}/_faults", json={"delay_ms": 2000})
        body = await stack.post('{ track(id: "1") { name } customer(id: "2") { lastName } }')
    assert body["data"] == {"track": None, "customer": {"lastName": "Köhler"}}
    assert body["errors"][0]["extensions"]["code"] == "DOWNSTREAM_TIMEOUT"
    assert body["errors"][0]["extensions"]["service"] == "catalog"


async def test_unexpected_errors_are_masked(own_services: dict[str, str]) -> None:
    """A record that keeps its contract but breaks our code (a date that is no date) gives "Internal
    server error" and a request id, no internals."""
    async with run_bff("broken", own_services) as stack:
        invoice = (await stack.http.get(f"{own_services['sales']}/invoices/1")).json()
        replaced = await stack.http.put(
            f"{own_services['sales']}/invoices/1", json={**invoice, "invoiceDate": "the day before yesterday"}
        )
        assert replaced.status_code == 200
        response = await stack.http.post(
            stack.graphql_url,
            json={"query": '{ invoice(id: "1") { total invoiceDate } }'},
            headers={"X-Request-Id": "find-me"},
        )
    body = response.json()
    assert response.status_code == 200
    assert body["data"] == {"invoice": None}
    assert body["errors"][0]["message"] == "Internal server error"
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "find-me"}
    assert "ValueError" not in response.text
