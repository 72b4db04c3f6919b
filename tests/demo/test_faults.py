"""Fault injection in the demo services over real sockets: delays, errors, hangs, resets, the admin API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bff_chinook.demo.chinook import Record, load_chinook
from bff_chinook.demo.faults import FaultConfig
from bff_chinook.demo.server import DemoServices, start_services


@pytest.fixture(scope="module")
def chinook() -> dict[str, list[Record]]:
    """The shipped data, loaded once; the services copy it."""
    return load_chinook()


@pytest.fixture
async def services(chinook: dict[str, list[Record]]) -> AsyncIterator[DemoServices]:
    """A fresh catalog service on an ephemeral port, without faults."""
    async with await start_services(ports={"catalog": 0}, data=chinook) as running:
        yield running


@pytest.fixture
async def catalog(services: DemoServices) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the catalog service."""
    async with httpx.AsyncClient(base_url=services.urls["catalog"], trust_env=False) as client:
        yield client


async def set_faults(client: httpx.AsyncClient, **fields: Any) -> None:
    """Replace the service's faults through ``PUT /_faults``."""
    response = await client.put("/_faults", json=fields)
    assert response.status_code == 200, response.text


async def test_fixed_delay(catalog: httpx.AsyncClient) -> None:
    """``delay_ms`` delays every answer by at least that long."""
    await set_faults(catalog, delay_ms=200)
    started = time.perf_counter()
    response = await catalog.get("/genres/1")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.2


async def test_error_rate_one_fails_every_request_with_retry_after(catalog: httpx.AsyncClient) -> None:
    """``error_rate=1`` answers every request with ``error_status`` and the ``Retry-After`` header."""
    await set_faults(catalog, error_rate=1.0, error_status=503, retry_after="2")
    for _ in range(3):
        response = await catalog.get("/genres/1")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.json()["error"] == "injected fault"


async def test_fail_first_fails_exactly_n_requests_then_recovers(catalog: httpx.AsyncClient) -> None:
    """``fail_first=2`` gives 503 twice, then 200 for good; ``GET /_faults`` shows the budget left."""
    await set_faults(catalog, fail_first=2)
    statuses = [(await catalog.get("/genres/1")).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert (await catalog.get("/_faults")).json()["remaining_fail_first"] == 0


async def test_seeded_error_rate_repeats_the_same_sequence(catalog: httpx.AsyncClient) -> None:
    """With a ``seed``, the same config fails the same requests each time it is set."""
    runs = []
    for _ in range(2):
        await set_faults(catalog, error_rate=0.5, seed=7)
        runs.append([(await catalog.get("/genres/1")).status_code for _ in range(12)])
    assert runs[0] == runs[1]
    assert {200, 503} == set(runs[0])


async def test_hang_never_answers_so_the_client_times_out(catalog: httpx.AsyncClient) -> None:
    """``hang`` never answers: the client's own timeout fires."""
    await set_faults(catalog, hang=True)
    started = time.perf_counter()
    with pytest.raises(httpx.TimeoutException):
        await catalog.get("/genres/1", timeout=0.3)
    assert time.perf_counter() - started >= 0.3


async def test_hanging_request_does_not_block_close(chinook: dict[str, list[Record]]) -> None:
    """Closing the services while a request hangs drops that request and still finishes quickly."""
    faults = {"catalog": FaultConfig(hang=True)}
    async with (
        await start_services(ports={"catalog": 0}, data=chinook, faults=faults) as services,
        httpx.AsyncClient(base_url=services.urls["catalog"], trust_env=False) as client,
    ):
        request = asyncio.create_task(client.get("/genres/1", timeout=30))
        for _ in range(500):  # wait, at most 5 s, until the service has the request
            if (await client.get("/_stats")).json()["total"]:
                break
            await asyncio.sleep(0.01)
        assert not request.done()
        started = time.perf_counter()
        await services.close()  # the block closes them again, which does nothing
        closing_took = time.perf_counter() - started
        with pytest.raises(httpx.TransportError):
            await request
    assert closing_took < 5


async def test_reset_aborts_the_connection(catalog: httpx.AsyncClient) -> None:
    """``reset`` drops the connection without an answer: the client gets a transport error."""
    await set_faults(catalog, reset=True)
    with pytest.raises(httpx.TransportError):
        await catalog.get("/genres/1")
    await set_faults(catalog)
    assert (await catalog.get("/genres/1")).status_code == 200


async def test_methods_limit_the_faults(catalog: httpx.AsyncClient) -> None:
    """``methods=["POST"]`` fails POSTs and leaves GETs alone."""
    await set_faults(catalog, error_rate=1.0, error_status=500, methods=["post"])
    assert (await catalog.post("/genres", json={"name": "Polka"})).status_code == 500
    assert (await catalog.get("/genres/1")).status_code == 200
    assert (await catalog.get("/genres/26")).status_code == 404


async def test_faulted_requests_are_counted(catalog: httpx.AsyncClient) -> None:
    """Requests that get an injected error still count in ``/_stats``; admin calls do not."""
    await catalog.delete("/_stats")
    await set_faults(catalog, fail_first=1)
    await catalog.get("/genres/1")
    await catalog.get("/genres/1")
    assert (await catalog.get("/_stats")).json() == {
        "total": 2,
        "requests": {"GET /genres/1": 2},
        "recent": ["GET /genres/1", "GET /genres/1"],
    }


async def test_admin_put_get_delete(catalog: httpx.AsyncClient) -> None:
    """PUT replaces the config (missing fields default), GET shows it, DELETE clears it."""
    put = await catalog.put("/_faults", json={"delay_ms": 5, "retry_after": 1, "methods": ["get"]})
    assert put.status_code == 200
    faults = (await catalog.get("/_faults")).json()["faults"]
    assert faults == {**FaultConfig().to_dict(), "delay_ms": 5.0, "retry_after": "1", "methods": ["GET"]}
    cleared = await catalog.delete("/_faults")
    assert cleared.status_code == 200
    assert (await catalog.get("/_faults")).json() == {
        "faults": FaultConfig().to_dict(),
        "remaining_fail_first": 0,
    }


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"delay": 5}',
        b'{"delay_ms": "5"}',
        b'{"error_rate": 1.5}',
        b'{"error_status": 200}',
        b'{"hang": 1}',
        b'{"methods": "GET"}',
        b'{"fail_first": -1}',
    ],
)
async def test_admin_rejects_bad_input(catalog: httpx.AsyncClient, body: bytes) -> None:
    """Malformed JSON, a non-object, an unknown field, a wrong type or a value out of range is 400."""
    response = await catalog.put("/_faults", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "error" in response.json()
    assert (await catalog.get("/_faults")).json()["faults"] == FaultConfig().to_dict()


async def test_faults_given_at_start(chinook: dict[str, list[Record]]) -> None:
    """``start_services(faults=...)`` starts a service with its faults already in force."""
    faults = {"catalog": FaultConfig(fail_first=1, error_status=502)}
    async with (
        await start_services(ports={"catalog": 0}, data=chinook, faults=faults) as running,
        httpx.AsyncClient(base_url=running.urls["catalog"], trust_env=False) as client,
    ):
        assert (await client.get("/genres/1")).status_code == 502
        assert (await client.get("/genres/1")).status_code == 200


def test_from_env_reads_prefixed_variables() -> None:
    """``from_env`` reads ``<PREFIX>_<FIELD>`` variables and ignores others."""
    environ = {
        "DEMO_CATALOG_DELAY_MS": "200",
        "DEMO_CATALOG_ERROR_RATE": "0.25",
        "DEMO_CATALOG_RETRY_AFTER": "3",
        "DEMO_CATALOG_HANG": "no",
        "DEMO_CATALOG_RESET": "true",
        "DEMO_CATALOG_METHODS": "post, put",
        "DEMO_CATALOG_SEED": "42",
        "DEMO_SALES_DELAY_MS": "999",
    }
    config = FaultConfig.from_env("DEMO_CATALOG_", environ)
    assert config == FaultConfig(
        delay_ms=200, error_rate=0.25, retry_after="3", reset=True, methods=("POST", "PUT"), seed=42
    )
    assert FaultConfig.from_env("DEMO_CATALOG", {}) == FaultConfig()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEMO_X_DELAY_MS", "soon"),
        ("DEMO_X_HANG", "maybe"),
        ("DEMO_X_ERROR_RATE", "2"),
        ("DEMO_X_FAIL_FIRST", "1.5"),
    ],
)
def test_from_env_names_the_bad_variable(variable: str, value: str) -> None:
    """A variable that does not parse, or is out of range, is a ValueError naming it."""
    with pytest.raises(ValueError, match="DEMO_X_"):
        FaultConfig.from_env("DEMO_X", {variable: value})
