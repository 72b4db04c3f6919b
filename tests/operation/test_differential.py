"""Compiled execution against graphql-core's, over real downstream services, byte for byte.

Two BFFs serve the same app over the same services, one with ``BFF_COMPILED_EXECUTION`` on and one
with it off. Every GraphQL document in the test suites (found by scanning ``tests/`` for string
constants that parse as a query and validate against the app) goes to both, and so do
hypothesis-generated selections over the Chinook schema: random fields, aliases, nested relations,
inline fragments and named fragments, ``@skip``/``@include`` with variables. The compiled BFF answers
each twice (the first run goes through Strawberry, which validates the document, the second runs
directly, :mod:`bff.operation.direct`). The answers must be equal
after JSON normalisation (keys sorted), errors and their order included; the one thing that differs
by design, a masked error's ``requestId``, is left out.
"""

from __future__ import annotations

import ast
import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    parse,
    validate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bff.app import App
from bff.compat import graphql_core_schema
from bff.graph.schema import build_schema
from bff.settings import load_settings
from bff_chinook.demo.jsonserver import run_json_servers
from bff_chinook.demo.server import start_services
from bff_chinook.schema import app as chinook_app
from examples.jsonplaceholder import app as jsonplaceholder_app
from examples.jsonplaceholder.data import load_data
from tests.e2e.stack import run_bff
from tests.support.jsonserver import require_json_server
from tests.support.tokens import SECRET, customer, employee

TESTS = Path(__file__).resolve().parents[1]


def core_schema(app: App) -> GraphQLSchema:
    settings = load_settings({}, services=app.service_defaults())
    return graphql_core_schema(build_schema(app, settings))


def documents(schema: GraphQLSchema) -> list[str]:
    """Every string constant under ``tests/`` that parses as one query valid against ``schema``."""
    found: dict[str, None] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            text = node.value.strip()
            if not text.startswith(("{", "query", "fragment")):
                continue
            try:
                document = parse(text)
            except Exception:  # not GraphQL: any other string constant
                continue
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            one_query = len(operations) == 1 and operations[0].operation is OperationType.QUERY
            if one_query and not validate(schema, document):
                found[text] = None
    return list(found)


class Pair:
    """A BFF with compiled execution and one without, over the same services, on a loop in a thread."""

    def __init__(self, app: App, name: str, **environ: str) -> None:
        self.app = app
        self.name = name
        self.environ = environ
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = AsyncExitStack()
        self.urls: tuple[str, str] = ("", "")
        self.tmp: Path | None = None

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=120)

    async def _start(self) -> tuple[str, str]:
        if self.name == "chinook":
            services = await self.stack.enter_async_context(
                await start_services(ports=dict.fromkeys(("customers", "catalog", "sales", "playlists"), 0))
            )
            urls = dict(services.urls)
        else:
            assert self.tmp is not None
            urls = await self.stack.enter_async_context(
                run_json_servers(require_json_server(), self.tmp, dbs={"jsonplaceholder": load_data()})
            )
        on = await self.stack.enter_async_context(
            run_bff("compiled", urls, app_spec=self.app, **self.environ)
        )
        off = await self.stack.enter_async_context(
            run_bff("graphql-core", urls, app_spec=self.app, **self.environ, BFF_COMPILED_EXECUTION="false")
        )
        return on.graphql_url, off.graphql_url

    def start(self) -> None:
        self.thread.start()
        self.urls = self._run(self._start())

    def stop(self) -> None:
        self._run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def normalised(response: httpx.Response) -> str:
    body = response.json()
    for error in body.get("errors") or ():
        (error.get("extensions") or {}).pop("requestId", None)
    return f"{response.status_code} {json.dumps(body, sort_keys=True)}"


def assert_same(
    client: httpx.Client,
    pair: Pair,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    """The answers to ``query`` of both BFFs, asserted equal; the compiled one.

    The compiled BFF answers twice: a document's first run validates it through Strawberry, later
    ones run by direct execution (:mod:`bff.operation.direct`).
    """
    body = {"query": query, "variables": variables or {}}
    compiled, url = pair.urls
    plain = normalised(client.post(url, json=body, headers=headers))
    for _ in range(2):
        answer = normalised(client.post(compiled, json=body, headers=headers))
        assert answer == plain, query
    return answer


@pytest.fixture(scope="module")
def chinook_pair() -> Iterator[Pair]:
    pair = Pair(chinook_app, "chinook")
    pair.start()
    yield pair
    pair.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as http:
        yield http


CHINOOK_SCHEMA = core_schema(chinook_app)
CHINOOK_DOCUMENTS = documents(CHINOOK_SCHEMA)


def test_the_suites_hold_chinook_queries() -> None:
    """The scan finds the suites' documents (a broken scan would make the next test vacuous)."""
    assert len(CHINOOK_DOCUMENTS) >= 30
    assert any("invoices" in text and "lines" in text for text in CHINOOK_DOCUMENTS)


def counted(client: httpx.Client, graphql_url: str) -> dict[str, float]:
    """The compiled-execution samples of a BFF's ``/metrics``: sample (with labels) -> value."""
    text = client.get(graphql_url.replace("/graphql", "/metrics")).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("bff_compiled_"))
    return {sample: float(value) for sample, value in samples}


def test_one_engine_compiles_and_the_other_does_not(chinook_pair: Pair, client: httpx.Client) -> None:
    """The comparison is between two engines: the first BFF runs plans (and counts a fallback for
    introspection), the second never does."""
    assert_same(client, chinook_pair, '{ customer(id: "1") { id firstName } }')
    assert_same(client, chinook_pair, "{ __schema { queryType { name } } }")
    compiled, plain = (counted(client, url) for url in chinook_pair.urls)
    assert compiled["bff_compiled_runs_total"] >= 1
    assert compiled['bff_compiled_fallbacks_total{reason="introspection"}'] >= 1
    assert plain.get("bff_compiled_runs_total", 0) == 0


@pytest.mark.parametrize("query", CHINOOK_DOCUMENTS)
def test_chinook_queries_of_the_suites(chinook_pair: Pair, client: httpx.Client, query: str) -> None:
    """Each Chinook query of the test suites: the same answer from both engines."""
    assert_same(client, chinook_pair, query)


def test_jsonplaceholder_queries(client: httpx.Client, tmp_path: Path) -> None:
    """The example's queries (its tests' and the benchmark's): the same answers from both engines."""
    schema = core_schema(jsonplaceholder_app)
    queries = [
        *documents(schema),
        "{posts{id,userId,title,user{id,name,email}}}",
        "{posts{title}}",
        "{greet}",
    ]
    assert len(queries) >= 5
    pair = Pair(jsonplaceholder_app, "jsonplaceholder")
    pair.tmp = tmp_path
    pair.start()
    try:
        for query in queries:
            assert_same(client, pair, query)
    finally:
        pair.stop()


NULL_CONDITION = (
    'query Q($s: Boolean = false) { customer(id: "1") { ...F @skip(if: $s) id } }'
    " fragment F on Customer { email firstName @include(if: $s) }"
)


@pytest.mark.parametrize("value", [False, True, None], ids=["false", "true", "explicit-null"])
def test_a_condition_variable_explicitly_null(
    chinook_pair: Pair, client: httpx.Client, value: bool | None
) -> None:
    """An explicit ``null`` for a ``@skip``/``@include`` variable with a default is accepted by
    validation and refused where graphql-core collects the field (a field error, the parent null); a
    plan compiled ahead must not turn it into a request error without data."""
    answer = assert_same(client, chinook_pair, NULL_CONDITION, {"s": value})
    assert '"data": {' in answer


GUARDED = [
    '{ customer(id: "1") { firstName email invoices { id total } } }',
    '{ customer(id: "2") { email supportRep { firstName } } }',
    '{ invoice(id: "1") { total lines { track { name } } } }',
    "{ customers(first: 3) { edges { node { id email invoices { total } } } } }",
]


@pytest.fixture(scope="module")
def guarded_pair() -> Iterator[Pair]:
    pair = Pair(chinook_app, "chinook", BFF_JWT_HS256_SECRET=SECRET, BFF_AUTH_REQUIRED="true")
    pair.start()
    yield pair
    pair.stop()


@pytest.mark.parametrize("who", ["anonymous", "customer 1", "customer 2", "employee"])
def test_guarded_fields_per_principal(guarded_pair: Pair, client: httpx.Client, who: str) -> None:
    """Fields with permission classes (bff_chinook.resolvers.access) answer alike for each principal,
    with BFF_AUTH_REQUIRED: the data each may see, and the same errors for the rest."""
    authorization = {"customer 1": customer("1"), "customer 2": customer("2"), "employee": employee()}
    headers = {"Authorization": authorization[who]} if who in authorization else None
    answers = [assert_same(client, guarded_pair, query, headers=headers) for query in GUARDED]
    assert any('"email": "' in answer for answer in answers) == (who != "anonymous")


ID_VALUES = st.sampled_from(["1", "2", "5", "59", "999999", "x"])


@st.composite
def selections(draw: st.DrawFn, parent: GraphQLObjectType, depth: int, variables: dict[str, bool]) -> str:
    """A random selection set on ``parent``: fields with aliases, fragments, conditions."""
    names = sorted(parent.fields)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4))
    parts: list[str] = []
    for name in chosen:
        field = parent.fields[name]
        arguments = ""
        required = [(n, a) for n, a in field.args.items() if isinstance(a.type, GraphQLNonNull)]
        if any(get_named_type(a.type).name != "ID" for _, a in required):
            continue
        if required:
            arguments = "(" + ", ".join(f'{n}: "{draw(ID_VALUES)}"' for n, _ in required) + ")"
        elif "first" in field.args:
            arguments = f"(first: {draw(st.integers(0, 4))})"
        named = get_named_type(field.type)
        sub = ""
        if isinstance(named, GraphQLObjectType):
            if depth >= 3:
                continue
            sub = " " + draw(selections(named, depth + 1, variables))
        elif hasattr(named, "fields"):
            sub = " { __typename }"
        alias = draw(st.sampled_from(["", "", f"a{len(parts)}: "]))
        condition = ""
        if draw(st.booleans()) and draw(st.booleans()):
            variable = f"v{len(variables)}"
            variables[variable] = draw(st.booleans())
            condition = f" @{draw(st.sampled_from(['skip', 'include']))}(if: ${variable})"
        parts.append(f"{alias}{name}{arguments}{condition}{sub}")
    if not parts:
        parts.append("__typename")
    if draw(st.booleans()):
        parts = [f"... on {parent.name} {{ {' '.join(parts)} }}"]
    return "{ " + " ".join(parts) + " }"


@st.composite
def chinook_queries(draw: st.DrawFn) -> tuple[str, dict[str, bool]]:
    variables: dict[str, bool] = {}
    query_type = CHINOOK_SCHEMA.query_type
    assert query_type is not None
    body = draw(selections(query_type, 0, variables))
    declared = ", ".join(f"${name}: Boolean!" for name in variables)
    return (f"query Q({declared}) {body}" if declared else f"query Q {body}"), variables


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=chinook_queries())
def test_generated_chinook_selections(
    chinook_pair: Pair, client: httpx.Client, query: tuple[str, dict[str, bool]]
) -> None:
    """Random selections over the Chinook schema: the same answer from both engines."""
    text, variables = query
    assert_same(client, chinook_pair, text, variables)
