"""Direct execution (bff.operation.direct) answers and logs as Strawberry's ``execute`` with the kit's
extensions does: masked unexpected errors, coded ones, variables that do not coerce, stale marks."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import strawberry

from bff.app import VIEW, App
from bff.errors import BFFError
from bff.operation.direct import DirectExecution
from tests.e2e.stack import Stack, run_bff


class Teapot(BFFError):
    code = "TEAPOT"


@strawberry.type
class Nested:
    value: int
    label: str | None


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> str:
        return "fine"

    @strawberry.field
    def boom(self) -> str | None:
        raise ValueError("a bug, with a secret in its message")

    @strawberry.field
    def coded(self) -> str | None:
        raise Teapot("I am a teapot.", spout=1)

    @strawberry.field
    def strict(self) -> str:
        raise ValueError("non-null and broken")

    @strawberry.field
    def echo(self, n: int) -> int:
        return n

    @strawberry.field
    async def nested(self) -> list[Nested]:
        return [Nested(value=1, label=None), Nested(value=2, label="two")]


APP = App(name="direct", query=Query, services={})


@pytest.fixture
async def stacks() -> AsyncIterator[tuple[Stack, Stack]]:
    async with (
        run_bff("direct", {}, app_spec=APP) as direct,
        run_bff("strawberry", {}, app_spec=APP, BFF_COMPILED_EXECUTION="false") as plain,
    ):
        yield direct, plain


def runs_of(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The queries the stack's direct execution ran, from now on."""
    assert stack.app is not None
    direct = stack.app[VIEW].schema.direct
    assert isinstance(direct, DirectExecution)
    ran: list[str] = []
    execute = direct.execute

    async def counted(query: str, *args: Any, **kwargs: Any) -> Any:
        ran.append(query)
        return await execute(query, *args, **kwargs)

    monkeypatch.setattr(direct, "execute", counted)
    return ran


def normalised(body: dict[str, Any]) -> str:
    for error in body.get("errors") or ():
        (error.get("extensions") or {}).pop("requestId", None)
    return json.dumps(body, sort_keys=True)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ ok nested { value label } }", None),
        ("{ ok boom }", None),
        ("{ coded a: coded ok }", None),
        ("{ ok strict }", None),
        ("query($n: Int!) { echo(n: $n) }", {"n": 3}),
        ("query($n: Int!) { echo(n: $n) }", {"n": "three"}),
    ],
)
async def test_direct_answers_as_strawberry(
    stacks: tuple[Stack, Stack],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    query: str,
    variables: dict[str, Any] | None,
) -> None:
    """The first run of a document goes through Strawberry (it validates it), the second runs
    directly; both answer as the BFF without compiled execution does, status and log lines included."""
    direct, plain = stacks
    ran = runs_of(direct, monkeypatch)
    body = {"query": query, "variables": variables}
    answers = []
    logged = []
    for url in (plain.graphql_url, direct.graphql_url, direct.graphql_url):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bff.errors"):
            response = await plain.http.post(url, json=body)
        answers.append((response.status_code, normalised(response.json())))
        logged.append([(record.levelname, record.getMessage()) for record in caplog.records])
    assert answers[1] == answers[0]
    assert answers[2] == answers[0]
    assert logged[1] == logged[0]
    assert logged[2] == logged[0]
    assert ran == [query]


async def test_a_masked_error_carries_the_request_id(stacks: tuple[Stack, Stack]) -> None:
    """The masked error of a direct run has the code and the request id, and no secret."""
    direct, _ = stacks
    for _ in range(2):
        response = await direct.http.post(direct.graphql_url, json={"query": "{ boom }"})
    body = response.json()
    (error,) = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["X-Request-ID"]
    assert "secret" not in response.text
