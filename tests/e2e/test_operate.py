"""How telemetry is switched and served: off, on its own port, summed over worker processes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bff.context import SERVICES
from bff.telemetry import TELEMETRY
from bff.view import GraphQLView
from bff_chinook.demo.server import start_services
from tests.e2e.stack import run_bff
from tests.e2e.test_contract import renamed_data
from tests.support.processes import clean_env, post, start, stop

QUERY = '{ artist(id: "1") { name } }'
SERVICES_OF_CHINOOK = ("CUSTOMERS", "CATALOG", "SALES", "PLAYLISTS", "PAYMENTS")


def base(graphql_url: str) -> str:
    return graphql_url.rsplit("/", 1)[0]


async def test_with_metrics_and_tracing_off_no_seam_records(demo_services: dict[str, str]) -> None:
    """BFF_METRICS=false and no OTEL_TRACES_EXPORTER: no /metrics, no telemetry handed to the schema
    or the service clients, no traceId in answers; the answer is unchanged."""
    async with run_bff("off", demo_services, BFF_METRICS="false") as stack:
        assert stack.app is not None
        telemetry = stack.app[TELEMETRY]
        assert not telemetry.on
        view = next(r.handler for r in stack.app.router.routes() if isinstance(r.handler, GraphQLView))
        assert getattr(view.schema, "telemetry", "missing") is None
        assert all(client._telemetry is None for client in stack.app[SERVICES].values())
        answer = await stack.post(QUERY)
        assert answer == {"data": {"artist": {"name": "AC/DC"}}}
        assert (await stack.http.get(base(stack.graphql_url) + "/metrics")).status_code == 404


async def test_metrics_on_their_own_port(demo_services: dict[str, str]) -> None:
    """With BFF_METRICS_PORT, /metrics answers on that port only; the main port has none."""
    async with run_bff("metrics-port", demo_services, BFF_METRICS_PORT="0") as stack:
        assert stack.app is not None
        await stack.post(QUERY)
        address = stack.app[TELEMETRY].metrics_address
        assert address is not None
        host, port = address
        scraped = await stack.http.get(f"http://{host}:{port}/metrics")
        assert scraped.status_code == 200
        assert 'bff_operation_duration_seconds_count{operation_name="unknown"' in scraped.text
        assert (await stack.http.get(base(stack.graphql_url) + "/metrics")).status_code == 404


async def test_safelisted_operations_are_labelled_by_name(
    demo_services: dict[str, str], tmp_path: Path
) -> None:
    """In safelist mode an operation's name labels its metrics (the manifest bounds them)."""
    manifest = tmp_path / "manifest.json"
    body = 'query Artist { artist(id: "1") { name } }'
    operation = {"id": "a", "name": "Artist", "type": "query", "body": body}
    manifest.write_text(
        json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [operation]})
    )
    async with run_bff("safelist", demo_services, BFF_PERSISTED_QUERIES_MANIFEST=str(manifest)) as stack:
        assert await stack.post(body) == {"data": {"artist": {"name": "AC/DC"}}}
        text = (await stack.http.get(base(stack.graphql_url) + "/metrics")).text
    samples = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "bff_operation_duration_seconds_count"
    ]
    assert [(s.labels["operation_name"], s.value) for s in samples] == [("Artist", 1.0)]


def counts(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def test_worker_processes_share_metrics_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two `bff serve` processes with one PROMETHEUS_MULTIPROC_DIR: either's /metrics sums the
    operations of both, and a process that stopped no longer counts in the live gauges."""
    env = clean_env(
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        BFF_LOG_LEVEL="WARNING",
        BFF_SERVICE_CATALOG_RETRY_ATTEMPTS="1",
        **{f"BFF_SERVICE_{name}_URL": "http://127.0.0.1:9" for name in SERVICES_OF_CHINOOK},
    )
    first, first_url = await start(["serve", "--port", "0"], env)
    try:
        second, second_url = await start(["serve", "--port", "0"], env)
        try:
            for url, times in ((first_url, 2), (second_url, 3)):
                for _ in range(times):
                    answer = await post(url, {"query": QUERY})
                    [error] = answer["errors"]  # type: ignore[misc]
                    assert error["extensions"]["code"] == "DOWNSTREAM_UNAVAILABLE"
            async with httpx.AsyncClient() as http:
                both = (await http.get(base(first_url) + "/metrics")).text
                assert counts(both, "bff_operation_duration_seconds_count") == 5
                assert counts(both, "bff_operation_errors_total", code="DOWNSTREAM_UNAVAILABLE") == 5
                assert counts(both, "bff_downstream_breaker_state", service="catalog", state="closed") == 2
                assert "process_resident_memory_bytes" not in both  # per process: left out
        finally:
            assert await stop(second) == 0
        async with httpx.AsyncClient() as http:
            one = (await http.get(base(first_url) + "/metrics")).text
        assert counts(one, "bff_operation_duration_seconds_count") == 5  # counters outlive a worker
        assert counts(one, "bff_downstream_breaker_state", service="catalog", state="closed") == 1
    finally:
        assert await stop(first) == 0


async def test_a_refused_websocket_upgrade_is_counted(demo_services: dict[str, str]) -> None:
    """An upgrade refused for bad credentials (401) counts as an UNAUTHENTICATED refusal; an accepted
    WebSocket is counted open while it lasts."""
    async with run_bff("ws-refused", demo_services) as stack:
        ws_url = stack.graphql_url.replace("http://", "ws://", 1)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(
                    ws_url, protocols=["graphql-transport-ws"], headers={"Authorization": "Bearer nope"}
                )
            assert refused.value.status == 401
            async with session.ws_connect(ws_url, protocols=["graphql-transport-ws"]):
                text = (await stack.http.get(base(stack.graphql_url) + "/metrics")).text
                assert counts(text, "bff_websocket_connections") == 1
        assert counts(text, "bff_refusals_total", code="UNAUTHENTICATED") == 1


async def test_the_kits_contract_violations_are_exported() -> None:
    """Records that break their declaration, counted by the service client, reach /metrics."""
    services = await start_services(ports={"customers": 0}, data=renamed_data())
    async with services, run_bff("drift", services.urls) as stack:
        body = await stack.post('{ employee(id: "2") { firstName reportsTo { firstName } } }')
        assert body["errors"][0]["extensions"]["code"] == "DOWNSTREAM_CONTRACT"
        text = (await stack.http.get(base(stack.graphql_url) + "/metrics")).text
    labels = {"service": "customers", "resource": "employees", "field": "reportsToId"}
    assert counts(text, "bff_downstream_contract_violations_total", **labels) >= 1


async def test_downstream_requests_are_logged_one_line_each_at_debug_only(
    demo_services: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, bff.downstream writes one line per downstream request (service, method, path without
    its query, status, ms); at INFO, none."""
    async with run_bff("debug-lines", demo_services) as stack:
        with caplog.at_level(logging.INFO, logger="bff.downstream"):
            await stack.post('{ album(id: "1") { title artist { name } } }')
        assert [r for r in caplog.records if r.name == "bff.downstream"] == []
        with caplog.at_level(logging.DEBUG, logger="bff.downstream"):
            await stack.post('{ album(id: "2") { title artist { name } } }')
    lines = [r for r in caplog.records if r.name == "bff.downstream"]
    assert [(r.service, r.method, r.status) for r in lines] == [("catalog", "GET", 200)] * 2  # type: ignore[attr-defined]
    assert all("?" not in r.path and r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
