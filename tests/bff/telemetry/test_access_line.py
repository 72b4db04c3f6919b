"""bff.telemetry.http: the access line follows the log level; refusals are counted either way."""

from __future__ import annotations

import json

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from bff.http_protocol import error_response
from bff.telemetry.http import telemetry_middleware
from bff.telemetry.metrics import Metrics
from tests.support.logs import json_logs


async def _refuse(request: web.Request) -> web.Response:
    return error_response(415, "UNSUPPORTED_MEDIA_TYPE", "Send application/json.")


def _refusals(metrics: Metrics, code: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "bff_refusals_total" and sample.labels.get("code") == code:
                return sample.value
    return 0.0


@pytest.mark.parametrize(("level", "lines"), [("INFO", 1), ("WARNING", 0)])
async def test_a_refused_request_is_counted_and_logged_at_info_only(level: str, lines: int) -> None:
    """At INFO a refused request writes its access line; above INFO it writes none, and is still
    counted in ``bff_refusals_total``."""
    metrics = Metrics()
    app = web.Application(middlewares=[telemetry_middleware(metrics, "/graphql")])
    app.router.add_post("/graphql", _refuse)
    with json_logs(level) as stream:
        async with TestServer(app, host="127.0.0.1") as server, httpx.AsyncClient() as client:
            response = await client.post(str(server.make_url("/graphql")))
    assert response.status_code == 415
    assert _refusals(metrics, "UNSUPPORTED_MEDIA_TYPE") == 1
    access = [
        line for line in map(json.loads, stream.getvalue().splitlines()) if line["logger"] == "bff.access"
    ]
    assert len(access) == lines
    for line in access:
        assert (line["event"], line["status"], line["error_codes"]) == (
            "request",
            415,
            ["UNSUPPORTED_MEDIA_TYPE"],
        )
