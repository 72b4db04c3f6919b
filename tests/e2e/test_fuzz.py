"""Fuzzing the endpoint: generated malformed and hostile requests never get a 5xx or an unexpected error."""

from __future__ import annotations

import asyncio
import json
import string
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bff_chinook.demo.server import start_services
from tests.e2e.stack import run_bff

EXAMPLES = 1_200
"""Requests the fuzz test sends (the issue asks for at least 1,000)."""

FIELDS = ["genres", "tracks", "customer", "customers", "artist", "__typename", "__schema", "invoice", "nope"]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/graphql",
    "application/json; charset",
    ";;;",
]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/graphql-response+json",
    "text/html",
    "text/plain",
    "a/b;q=x",
]


@dataclass
class Request:
    """One generated HTTP request."""

    method: str = "POST"
    body: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        body = None if self.body is None else self.body[:300]
        params = {key: value[:300] for key, value in self.params.items()}
        return f"Request({self.method}, body={body!r}, params={params!r}, headers={self.headers!r})"


class BackgroundBFF:
    """The demo services and a BFF on their own event loop in a thread, for synchronous fuzzing."""

    def __init__(self, **environ: str) -> None:
        self.environ = environ
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = AsyncExitStack()
        self.url = ""
        self.client: httpx.Client | None = None
        """An HTTP client a test may keep here for the BFF's lifetime."""

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=60)

    async def _start(self) -> str:
        services = await self.stack.enter_async_context(
            await start_services(ports=dict.fromkeys(("customers", "catalog", "sales", "playlists"), 0))
        )
        bff = await self.stack.enter_async_context(run_bff("fuzz", services.urls, **self.environ))
        return bff.graphql_url

    def __enter__(self) -> BackgroundBFF:
        self.thread.start()
        self.url = self._run(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[BackgroundBFF, httpx.Client]]:
    """A BFF with tight limits (so the limits get hit too) and a client for it."""
    with (
        BackgroundBFF(BFF_MAX_BODY_BYTES="20000", BFF_MAX_DEPTH="10", BFF_MAX_ALIASES="20") as bff,
        httpx.Client(timeout=30) as client,
    ):
        yield bff, client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
names = st.sampled_from(FIELDS)
documents = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="{}()[]:$!@.,=\"' \n" + string.ascii_letters, max_size=300),
    st.integers(1, 3_000).map(lambda n: "{ " + "genres { " * n + "id" + " }" * n + " }"),
    st.integers(1, 3_000).map(lambda n: "{" * n + "}" * n),
    st.integers(1, 2_000).map(lambda n: "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"),
    st.builds(
        lambda f, args: f"{{ {f}{args} {{ id }} }}",
        names,
        st.sampled_from(["", "(first: -1)", "(id: 1)", "(first: 99999999999)", '(after: "x")']),
    ),
    st.integers(1, 400).map(
        lambda n: (
            "query Q { ...F } "
            + " ".join(
                f"fragment F{'' if i == 0 else i} on Query {{ ...F{i + 1} __typename }}" for i in range(n)
            )
        )
    ),
    st.just("query($n: Int) { tracks(first: $n) { totalCount } }"),
    st.just("mutation { __typename }"),
    st.just("subscription { __typename }"),
)
extensions = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {
            "persistedQuery": st.fixed_dictionaries(
                {"version": st.sampled_from([1, 2, "1", None]), "sha256Hash": st.text(max_size=70)}
            )
        }
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """A malformed or hostile request: bytes, bad JSON, wrong types, deep or wide documents, odd headers."""
    kind = draw(st.sampled_from(["bytes", "json", "params", "get", "method", "huge"]))
    headers: dict[str, str] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type
    accept = draw(st.sampled_from(ACCEPTS))
    if accept is not None:
        headers["Accept"] = accept
    if draw(st.booleans()):
        headers["Authorization"] = draw(
            st.sampled_from(["Bearer x.y.z", "Basic abc", "Bearer", "Bearer a.b"])
        )
    if kind == "bytes":
        return Request(body=draw(st.binary(max_size=500)), headers=headers)
    if kind == "json":
        return Request(body=json.dumps(draw(json_values)).encode(), headers=headers)
    if kind == "huge":
        return Request(body=b'{"query": "{ __typename }", "x": "' + b"y" * 30_000 + b'"}', headers=headers)
    params = {
        "query": draw(st.one_of(documents, json_values)),
        "variables": draw(
            st.one_of(st.none(), json_values, st.dictionaries(st.sampled_from(["n", "id"]), json_values))
        ),
        "operationName": draw(st.one_of(st.none(), st.just("Q"), json_values)),
        "extensions": draw(extensions),
    }
    if kind == "params":
        return Request(body=json.dumps(params).encode(), headers=headers)
    query = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in params.items()
        if value is not None and draw(st.booleans())
    }
    if kind == "get":
        return Request(method="GET", params=query, headers=headers)
    method = draw(st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    return Request(method=method, params=query, headers=headers)


def send(client: httpx.Client, url: str, request: Request) -> httpx.Response:
    """Send one generated request."""
    return client.request(
        request.method, url, content=request.body, params=request.params, headers=request.headers
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(request=requests())
def test_hostile_requests_never_get_a_5xx(
    fuzz_target: tuple[BackgroundBFF, httpx.Client], request: Request
) -> None:
    """Every generated request gets a 4xx or a GraphQL response, never a 5xx or INTERNAL_SERVER_ERROR."""
    bff, client = fuzz_target
    response = send(client, bff.url, request)
    assert response.status_code < 500, response.text
    if request.method == "HEAD" or response.headers.get("Content-Type", "").startswith("text/html"):
        return
    if response.status_code in (204, 403) and request.method == "OPTIONS":
        return
    if response.status_code == 400 and response.headers.get("Content-Type", "").startswith("text/plain"):
        # aiohttp's HTTP parser refused the request line (a URL over 8 KiB) before the app saw it.
        assert "Got more than" in response.text
        return
    body = response.json()
    assert isinstance(body, dict)
    assert "data" in body or body.get("errors"), body
    codes = [error.get("extensions", {}).get("code") for error in body.get("errors", [])]
    assert "INTERNAL_SERVER_ERROR" not in codes, body


def test_the_server_stays_healthy_after_fuzzing(fuzz_target: tuple[BackgroundBFF, httpx.Client]) -> None:
    """After the fuzzing the same process still answers health checks and queries."""
    bff, client = fuzz_target
    assert client.get(bff.url.replace("/graphql", "/healthz")).json() == {"status": "ok"}
    response = client.post(bff.url, json={"query": "{ genres { name } }"})
    assert response.json()["data"]["genres"][0] == {"name": "Rock"}
