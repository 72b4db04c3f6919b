"""Downstream drift is loud: a service that renames ``reportsToId`` yields DOWNSTREAM_CONTRACT.

The customers service here answers employee records with ``reportsTo`` where the contract says
``reportsToId`` (a rename a service team might ship). Before response validation, every
``Employee.reportsTo`` was a silent null; now the fields that would show a breaking record fail
with ``DOWNSTREAM_CONTRACT``, one error per downstream answer, logged once and counted. Proven over
our demo service and over json-server 0.17.4 serving the same renamed data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bff.context import SERVICES
from bff_chinook.demo.chinook import load_chinook
from bff_chinook.demo.jsonserver import run_json_servers
from bff_chinook.demo.server import start_services
from tests.e2e.stack import Stack, run_bff
from tests.support.jsonserver import require_json_server


def renamed_data() -> dict[str, list[dict[str, Any]]]:
    """The Chinook data with every employee's ``reportsToId`` renamed to ``reportsTo``."""
    data = load_chinook()
    data["employees"] = [
        {("reportsTo" if key == "reportsToId" else key): value for key, value in record.items()}
        for record in data["employees"]
    ]
    return data


@asynccontextmanager
async def drifted_stack(kind: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The BFF over a customers service (demo or json-server) serving the renamed employees."""
    data = renamed_data()
    if kind == "demo":
        services = await start_services(ports={"customers": 0}, data=data)
        async with services, run_bff("demo", services.urls) as stack:
            yield stack
    else:
        bin_path = require_json_server()
        servers = run_json_servers(bin_path, tmp_path, services=["customers"], data=data)
        async with servers as urls, run_bff("json-server", urls) as stack:
            yield stack


@pytest.fixture(params=["demo", "json-server"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    async with drifted_stack(request.param, tmp_path) as running:
        yield running


async def test_a_renamed_field_is_downstream_contract_not_a_silent_null(stack: Stack) -> None:
    """``employee(id: 2) { reportsTo }`` over renamed records: DOWNSTREAM_CONTRACT naming the field."""
    body = await stack.post('{ employee(id: "2") { firstName reportsTo { firstName } } }')
    assert body["data"] == {"employee": None}
    (error,) = body["errors"]
    assert error["path"] == ["employee"]
    assert error["extensions"]["code"] == "DOWNSTREAM_CONTRACT"
    assert error["extensions"]["service"] == "customers"
    assert error["extensions"]["resource"] == "employees"
    assert error["extensions"]["fields"] == ["reportsToId"]
    assert "reportsToId missing" in error["message"]


async def test_one_error_one_log_line_and_a_count_per_breaking_answer(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten customers' support reps, one batched answer: one error with affectedFields, one WARNING,
    and the violations counted per field on the service client."""
    query = "{ customers(first: 10) { edges { node { firstName supportRep { lastName } } } } }"
    with caplog.at_level(logging.WARNING, logger="bff.contract"):
        body = await stack.post(query)
    edges = body["data"]["customers"]["edges"]
    assert len(edges) == 10
    assert all(edge["node"]["firstName"] and edge["node"]["supportRep"] is None for edge in edges)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "DOWNSTREAM_CONTRACT"
    assert error["extensions"]["affectedFields"] == 10
    warnings = [r for r in caplog.records if r.name == "bff.contract"]
    assert len(warnings) == 1
    assert "reportsToId missing" in warnings[0].getMessage()
    assert stack.app is not None
    counter = stack.app[SERVICES]["customers"].contract_violations
    assert counter.value("customers", "employees", "reportsToId") >= 1


async def test_the_fields_that_do_not_need_the_record_still_answer(stack: Stack) -> None:
    """A customer whose rep's record breaks: the customer's own fields answer, only supportRep fails."""
    body = await stack.post('{ customer(id: "1") { firstName lastName supportRep { firstName } } }')
    assert body["data"]["customer"]["firstName"] == "Luís"
    assert body["data"]["customer"]["supportRep"] is None
    assert [e["path"] for e in body["errors"]] == [["customer", "supportRep"]]
