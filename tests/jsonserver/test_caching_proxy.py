"""The caching proxy in front of json-server over the JSONPlaceholder-shaped data, and on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from bff_chinook.demo.jsonserver import run_json_servers
from examples.jsonplaceholder.data import load_data
from tests.support.caching_proxy import CachingProxy, run_caching_proxy
from tests.support.jsonserver import require_json_server

CACHEABLE = "public, max-age=43200"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def jsonplaceholder(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The base URL of one json-server over a copy of the JSONPlaceholder data, for this module.

    Tests share it: a test that writes undoes its writes, so every test sees the data as generated.
    """
    bin_path = require_json_server()
    directory = tmp_path_factory.mktemp("jsonplaceholder")
    async with run_json_servers(bin_path, directory, dbs={"jsonplaceholder": load_data()}) as urls:
        yield urls["jsonplaceholder"]


@pytest.fixture
async def proxy(jsonplaceholder: str) -> AsyncIterator[CachingProxy]:
    """A caching proxy of this test alone in front of the shared json-server, so it counts from zero."""
    async with run_caching_proxy(jsonplaceholder) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client that ignores proxy settings from the environment."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def test_json_server_serves_the_jsonplaceholder_data(
    jsonplaceholder: str, http: httpx.AsyncClient
) -> None:
    """json-server over the data lists the 100 posts as generated and filters users by repeated ids."""
    posts = await http.get(f"{jsonplaceholder}/posts")
    assert posts.status_code == 200
    assert posts.json() == load_data()["posts"]
    assert len(posts.json()) == 100

    users = await http.get(f"{jsonplaceholder}/users?id=1&id=2")
    assert users.status_code == 200
    assert [user["id"] for user in users.json()] == [1, 2]


async def test_get_through_the_proxy_is_direct_plus_cache_control(
    jsonplaceholder: str, proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """A GET with repeated parameters answers as json-server does, but with the proxy's Cache-Control."""
    path = "/posts?userId=1&userId=2"
    direct = await http.get(jsonplaceholder + path)
    proxied = await http.get(proxy.url + path)

    assert proxied.status_code == direct.status_code == 200
    assert proxied.json() == direct.json()
    assert {post["userId"] for post in proxied.json()} == {1, 2}
    assert len(proxied.json()) == 20
    assert direct.headers["Cache-Control"] == "no-cache"  # what json-server itself says
    assert proxied.headers.get_list("Cache-Control") == [CACHEABLE]
    assert proxied.headers["ETag"] == direct.headers["ETag"]
    assert proxied.headers["Content-Type"] == direct.headers["Content-Type"]
    assert proxy.forwarded == 1


async def test_page_requests_pass_total_count_and_links(
    jsonplaceholder: str, proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """A ``_page`` request through the proxy keeps json-server's ``X-Total-Count`` and ``Link`` headers."""
    path = "/posts?_page=2&_limit=10"
    direct = await http.get(jsonplaceholder + path)
    proxied = await http.get(proxy.url + path)

    assert [post["id"] for post in proxied.json()] == list(range(11, 21))
    assert proxied.headers["X-Total-Count"] == direct.headers["X-Total-Count"] == "100"
    assert proxied.headers["Link"] == direct.headers["Link"]
    assert set(proxied.links) == {"first", "prev", "next", "last"}
    assert proxied.headers["Cache-Control"] == CACHEABLE


async def test_if_none_match_gives_304_with_cache_control(
    proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """Revalidating with the ETag gets json-server's 304 with no body and the proxy's Cache-Control."""
    first = await http.get(f"{proxy.url}/users/3")
    again = await http.get(f"{proxy.url}/users/3", headers={"If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == CACHEABLE
    assert proxy.forwarded == 2


async def test_head_answers_with_get_headers_and_cache_control(
    proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """A HEAD gets no body but GET's ``Content-Length`` and ``ETag``, and the proxy's Cache-Control."""
    get = await http.get(f"{proxy.url}/todos/1", headers={"Accept-Encoding": "identity"})
    head = await http.head(f"{proxy.url}/todos/1", headers={"Accept-Encoding": "identity"})

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Cache-Control"] == CACHEABLE


async def test_compressed_answers_pass_through_compressed(
    jsonplaceholder: str, proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """A gzip answer reaches the client as json-server compressed it, and decodes to the same JSON."""
    direct = await http.get(f"{jsonplaceholder}/comments", headers={"Accept-Encoding": "gzip"})
    proxied = await http.get(f"{proxy.url}/comments", headers={"Accept-Encoding": "gzip"})
    plain = await http.get(f"{proxy.url}/comments", headers={"Accept-Encoding": "identity"})

    assert proxied.headers["Content-Encoding"] == direct.headers["Content-Encoding"] == "gzip"
    assert proxied.num_bytes_downloaded == direct.num_bytes_downloaded < len(proxied.content)
    assert proxied.json() == direct.json() == plain.json()
    assert "Content-Encoding" not in plain.headers


async def test_post_passes_through_without_cache_control(
    jsonplaceholder: str, proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """A POST reaches json-server once and answers 201 with its ``Location``, without the proxy's header."""
    new_post = {"userId": 1, "title": "proxied", "body": "through the proxy"}
    created = await http.post(f"{proxy.url}/posts", json=new_post)
    try:
        assert created.status_code == 201
        assert created.json() == {**new_post, "id": 101}
        assert created.headers["Location"].endswith("/posts/101")
        assert created.headers.get("Cache-Control") != CACHEABLE
        assert proxy.forwarded == 1
        assert (await http.get(f"{jsonplaceholder}/posts/101")).json()["title"] == "proxied"
    finally:
        deleted = await http.delete(f"{jsonplaceholder}/posts/101")  # the next test sees 100 posts again
    assert deleted.status_code == 200


async def test_forwarded_counts_every_request_sent_upstream(
    jsonplaceholder: str, proxy: CachingProxy, http: httpx.AsyncClient
) -> None:
    """``forwarded`` counts each request once, 404s included, and matches json-server's own count."""
    assert (await http.delete(f"{jsonplaceholder}/_stats")).status_code == 200
    responses = [
        await http.get(f"{proxy.url}/posts/1"),
        await http.get(f"{proxy.url}/posts/1"),  # the proxy stores nothing: sent again
        await http.get(f"{proxy.url}/comments?postId=1"),
        await http.get(f"{proxy.url}/todos/999"),
    ]
    assert [response.status_code for response in responses] == [200, 200, 200, 404]
    assert responses[3].headers.get("Cache-Control") != CACHEABLE  # not a successful answer
    assert proxy.forwarded == 4
    stats = (await http.get(f"{jsonplaceholder}/_stats")).json()
    assert stats == {"total": 4, "requests": {"GET /posts/1": 2, "GET /comments": 1, "GET /todos/999": 1}}


async def test_forwards_the_request_as_sent_except_host_and_hop_by_hop_headers(
    http: httpx.AsyncClient,
) -> None:
    """Method, path below upstream's, ordered query, body and end-to-end headers reach upstream unchanged."""
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Connection", "close"), ("X-Up", "yes")]
        return httpx.Response(200, headers=headers, content=b"stored")

    async with run_caching_proxy(
        "http://upstream.test/api/", transport=httpx.MockTransport(upstream)
    ) as proxy:
        response = await http.put(
            f"{proxy.url}/things/a%2Fb?x=2&y=1&x=1",
            content=b'{"n": 1}',
            headers={"X-Custom": "kept", "Connection": "X-Hop", "X-Hop": "dropped", "TE": "trailers"},
        )

    assert len(seen) == 1
    sent = seen[0]
    assert sent.method == "PUT"
    assert sent.url.raw_path == b"/api/things/a%2Fb?x=2&y=1&x=1"
    assert sent.content == b'{"n": 1}'
    assert sent.headers["Host"] == "upstream.test"
    assert sent.headers["X-Custom"] == "kept"
    assert sent.headers["Content-Length"] == "8"
    assert not {"connection", "x-hop", "te"} & {name.lower() for name in sent.headers}
    assert response.status_code == 200
    assert response.content == b"stored"
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Up"] == "yes"
    assert "Cache-Control" not in response.headers  # a PUT: never made cacheable
    assert proxy.forwarded == 1


async def test_a_failing_upstream_gives_502_and_still_counts(http: httpx.AsyncClient) -> None:
    """When upstream cannot be reached the proxy answers 502, without Cache-Control, and counts the try."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with run_caching_proxy("http://upstream.test", transport=httpx.MockTransport(refuse)) as proxy:
        response = await http.get(f"{proxy.url}/posts")

    assert response.status_code == 502
    assert "Cache-Control" not in response.headers
    assert proxy.forwarded == 1


@pytest.mark.parametrize("upstream", ["upstream.test", "ftp://upstream.test", "http://upstream.test/?a=1"])
async def test_an_upstream_that_is_not_a_base_url_is_refused(upstream: str) -> None:
    """An upstream without an http(s) scheme and host, or with a query, raises ``ValueError`` at once."""
    with pytest.raises(ValueError, match="upstream must be"):
        async with run_caching_proxy(upstream):
            pytest.fail("the block must not run")


async def test_the_port_is_closed_after_the_block(http: httpx.AsyncClient) -> None:
    """Leaving the block stops the proxy: its port no longer accepts connections."""
    async with run_caching_proxy(
        "http://upstream.test", transport=httpx.MockTransport(lambda _: httpx.Response(200))
    ) as proxy:
        assert (await http.get(proxy.url)).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await http.get(proxy.url)


async def test_proxies_do_not_share_a_count(jsonplaceholder: str, http: httpx.AsyncClient) -> None:
    """Two proxies run side by side on their own free ports, each counting only its own requests."""
    async with run_caching_proxy(jsonplaceholder) as one, run_caching_proxy(jsonplaceholder) as two:
        assert one.url != two.url
        await http.get(f"{one.url}/users/1")
        await http.get(f"{one.url}/users/2")
        await http.get(f"{two.url}/users/3")
    assert (one.forwarded, two.forwarded) == (2, 1)
