"""The whole-response cache (``BFF_RESPONSE_CACHE``) over a real downstream service on 127.0.0.1.

The service is a small json-server-shaped blog (``posts``, ``users``) whose ``Cache-Control`` each test
sets per resource, and which counts the requests it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import strawberry
from aiohttp import web

from bff import App, BadUserInput, Info, Record, Resource, Service, all_nodes, node, to_one
from bff.app import VIEW
from bff.context import CACHE
from bff.operation.response_cache import ResponseCache
from tests.e2e.stack import Stack, run_bff

posts = Resource("blog", "posts", list_size=10, fields={"id": int, "userId": int, "title": str})
users = Resource("blog", "users", list_size=10, fields={"id": int, "name": str})


@strawberry.type
class User:
    """A writer."""

    id: strawberry.ID
    name: str

    @classmethod
    def from_record(cls, record: Record) -> User:
        """Build from a ``users`` record."""
        return cls(id=strawberry.ID(str(record["id"])), name=record["name"])


@strawberry.type
class Post:
    """A post by one user."""

    id: strawberry.ID
    user_id: strawberry.ID
    title: str

    @classmethod
    def from_record(cls, record: Record) -> Post:
        """Build from a ``posts`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            user_id=strawberry.ID(str(record["userId"])),
            title=record["title"],
        )

    user: User | None = to_one(users, key=lambda post: post.user_id, build=User.from_record)


@strawberry.type
class Query:
    """Posts, one post, a greeting and a field that always fails."""

    @strawberry.field
    async def posts(self, info: Info) -> list[Post]:
        return await all_nodes(info, posts, Post.from_record)

    @strawberry.field
    async def post(self, info: Info, id: strawberry.ID) -> Post | None:
        return node(info, Post.from_record, await posts.get(info.context, id))

    @strawberry.field
    def greet(self) -> str:
        return "hello"

    @strawberry.field
    def broken(self) -> str | None:
        raise BadUserInput("This field always fails.")


@strawberry.type
class Mutation:
    """Renaming a post."""

    @strawberry.mutation
    async def rename_post(self, info: Info, id: strawberry.ID, title: str) -> Post:
        response = await posts.request(info.context, "PATCH", str(id), json_body={"title": title})
        await posts.invalidate(info.context, ids=[str(id)])
        return Post.from_record(response.body)


blog = App(
    name="blog",
    query=Query,
    mutation=Mutation,
    services={"blog": Service(default_url="http://127.0.0.1:9", description="posts and users")},
)


@dataclass
class Blog:
    """The running blog service: its URL, the ``Cache-Control`` of each resource, requests served."""

    url: str
    cache_control: dict[str, str]
    requests: Counter[str] = field(default_factory=Counter)
    data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def run_blog(**cache_control: str) -> AsyncIterator[Blog]:
    """Serve the blog on a free port with ``cache_control`` per resource (default ``max-age=60``)."""
    data = {
        "posts": [{"id": i, "userId": 1 + i % 2, "title": f"post {i} " + "x" * 350} for i in range(1, 6)],
        "users": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}],
    }
    state = Blog("", {"posts": "max-age=60", "users": "max-age=60", **cache_control}, data=data)

    async def listing(request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        state.requests[f"GET /{resource}"] += 1
        ids = request.query.getall("id", [])
        records = [r for r in data[resource] if not ids or str(r["id"]) in ids]
        return web.json_response(records, headers={"Cache-Control": state.cache_control[resource]})

    async def one(request: web.Request) -> web.Response:
        resource, record_id = request.match_info["resource"], request.match_info["id"]
        state.requests[f"{request.method} /{resource}/id"] += 1
        record = next((r for r in data[resource] if str(r["id"]) == record_id), None)
        if record is None:
            return web.json_response({}, status=404)
        if request.method == "PATCH":
            record.update(await request.json())
        return web.json_response(record, headers={"Cache-Control": state.cache_control[resource]})

    app = web.Application()
    app.router.add_get("/{resource}", listing)
    app.router.add_route("*", "/{resource}/{id}", one)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = next(address[1] for address in runner.addresses if isinstance(address, tuple))
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def cached_bff(blog_service: Blog, **settings: str) -> AsyncIterator[Stack]:
    """The blog app's BFF with the response cache on (and ``settings``)."""
    async with run_bff(
        "response-cache", {"blog": blog_service.url}, app_spec=blog, BFF_RESPONSE_CACHE="true", **settings
    ) as stack:
        yield stack


def responses_of(stack: Stack) -> ResponseCache:
    """The BFF's response cache."""
    assert stack.app is not None
    cache = stack.app[VIEW].schema.responses  # type: ignore[attr-defined]
    assert isinstance(cache, ResponseCache)
    return cache


async def post(
    stack: Stack, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    """POST ``query`` and return the whole HTTP response."""
    payload: dict[str, Any] = {"query": query, **({"variables": variables} if variables else {})}
    return await stack.http.post(stack.graphql_url, json=payload, headers=headers)


POSTS = "{ posts { id title user { name } } }"


async def test_a_repeated_query_is_answered_from_the_cache_without_running() -> None:
    """The second identical query is a hit: the same body, no downstream request, with ``Age`` and
    ``Cache-Control: max-age=60, public``."""
    async with run_blog() as service, cached_bff(service) as stack:
        first = await post(stack, POSTS)
        before = sum(service.requests.values())
        second = await post(stack, POSTS)
        cache = responses_of(stack)
    assert first.json() == second.json()
    assert first.json()["data"]["posts"][0]["user"] == {"name": "Grace"}
    assert before == 2
    assert sum(service.requests.values()) == 2
    assert first.headers["Cache-Control"] == "max-age=60, public"
    assert "Age" not in first.headers
    assert second.headers["Cache-Control"] == "max-age=60, public"
    assert second.headers["Age"].isdigit()
    assert cache.lookups.value("miss") == 1
    assert cache.lookups.value("stored") == 1
    assert cache.lookups.value("hit") == 1


async def test_a_hit_skips_execution_even_when_the_entity_cache_would_have_answered() -> None:
    """A hit does not run the operation: the operation's resolvers never see it, so an entity cache
    emptied behind its back changes nothing until the entry expires (counted as a hit)."""
    async with run_blog() as service, cached_bff(service) as stack:
        await post(stack, POSTS)
        assert stack.app is not None
        await stack.app[CACHE].storage.delete_many([f"blog/posts/{i}" for i in range(1, 6)])
        answer = await post(stack, POSTS)
        hits = responses_of(stack).lookups.value("hit")
    assert answer.status_code == 200
    assert hits == 1
    assert sum(service.requests.values()) == 2


async def test_a_private_or_no_store_answer_keeps_the_result_out() -> None:
    """A query that used a ``private`` (or ``no-store``) answer runs every time; one that did not is kept."""
    async with run_blog(users="private, max-age=60") as service, cached_bff(service) as stack:
        for _ in range(2):
            with_users = await post(stack, POSTS)
        only_posts = [await post(stack, "{ posts { title } }") for _ in range(2)]
        cache = responses_of(stack)
    assert "errors" not in with_users.json()
    assert "Cache-Control" not in with_users.headers
    assert service.requests["GET /users"] == 2
    assert cache.bypassed.value("uncacheable") == 2
    assert only_posts[1].headers["Age"].isdigit()
    assert cache.lookups.value("hit") == 1
    async with run_blog(users="no-store") as service, cached_bff(service) as stack:
        for _ in range(2):
            await post(stack, POSTS)
        assert responses_of(stack).lookups.value("hit") == 0
    assert service.requests["GET /users"] == 2


async def test_the_lifetime_is_the_shortest_downstream_one_and_the_entry_expires() -> None:
    """Posts keep 60 s and users 1 s: the result is kept for 1 s, then runs again (and reaches users)."""
    async with run_blog(users="max-age=1") as service, cached_bff(service) as stack:
        first = await post(stack, POSTS)
        hit = await post(stack, POSTS)
        await asyncio.sleep(1.2)
        again = await post(stack, POSTS)
        cache = responses_of(stack)
    assert first.headers["Cache-Control"] == "max-age=1, public"
    assert "Age" in hit.headers
    assert "Age" not in again.headers
    assert cache.lookups.value("hit") == 1
    assert cache.lookups.value("miss") == 2
    assert service.requests["GET /users"] == 2
    assert service.requests["GET /posts"] == 1


async def test_a_mutation_invalidates_the_results_that_read_its_resource() -> None:
    """After ``renamePost`` the posts query runs again and shows the new title; the mutation itself is
    never cached."""
    rename = 'mutation { renamePost(id: "1", title: "renamed") { id title } }'
    async with run_blog() as service, cached_bff(service) as stack:
        await post(stack, POSTS)
        await post(stack, POSTS)
        renamed = await post(stack, rename)
        after = await post(stack, POSTS)
        cache = responses_of(stack)
    assert renamed.json() == {"data": {"renamePost": {"id": "1", "title": "renamed"}}}
    assert after.json()["data"]["posts"][0]["title"] == "renamed"
    assert "Age" not in after.headers
    assert cache.lookups.value("hit") == 1
    assert cache.bypassed.value("not_query") == 1
    assert service.requests["GET /posts"] == 2


async def test_authenticated_requests_always_run() -> None:
    """With an API key the query runs each time and nothing is stored or served from the cache."""
    key = "response-cache-test-key"
    keys = {hashlib.sha256(key.encode()).hexdigest(): "employee:ada"}
    async with run_blog() as service, cached_bff(service, BFF_API_KEYS=json.dumps(keys)) as stack:
        await post(stack, POSTS)
        signed_in = [await post(stack, POSTS, **{"X-Api-Key": key}) for _ in range(2)]
        cache = responses_of(stack)
    assert all("Cache-Control" not in answer.headers for answer in signed_in)
    assert cache.bypassed.value("authenticated") == 2
    assert cache.lookups.value("hit") == 0


async def test_results_with_errors_or_without_downstream_answers_are_not_kept() -> None:
    """A result with an error, and one that used no downstream answer (no lifetime), run every time."""
    async with run_blog() as service, cached_bff(service) as stack:
        for _ in range(2):
            failed = await post(stack, "{ posts { title } broken }")
            greeted = await post(stack, "{ greet }")
        cache = responses_of(stack)
    assert failed.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert greeted.json() == {"data": {"greet": "hello"}}
    assert cache.bypassed.value("errors") == 2
    assert cache.bypassed.value("no_downstream") == 2
    assert cache.lookups.value("hit") == 0


async def test_variables_tell_entries_apart() -> None:
    """The same document with other variables is another entry, each answering its own data."""
    query = "query One($id: ID!) { post(id: $id) { title } }"
    async with run_blog() as service, cached_bff(service) as stack:
        answers = [
            (await post(stack, query, {"id": post_id})).json()["data"]["post"]["title"]
            for post_id in ("1", "2", "1", "2")
        ]
        cache = responses_of(stack)
    assert answers[0].startswith("post 1 ")
    assert answers[1].startswith("post 2 ")
    assert answers[2:] == answers[:2]
    assert cache.lookups.value("stored") == 2
    assert cache.lookups.value("hit") == 2


async def test_the_byte_bound_holds() -> None:
    """With 1,024 bytes two small results fit and a third drops the least recently used; a result
    larger than the bound is never kept."""
    query = "query One($id: ID!) { post(id: $id) { title } }"
    async with run_blog() as service, cached_bff(service, BFF_RESPONSE_CACHE_BYTES="1024") as stack:
        for post_id in ("1", "2", "3", "1"):
            await post(stack, query, {"id": post_id})
        big = await post(stack, "{ posts { title } }")
        cache = responses_of(stack)
    assert "errors" not in big.json()
    assert cache.size_bytes <= 1024
    assert cache.entries == 2
    assert cache.lookups.value("hit") == 0
    assert cache.lookups.value("stored") == 4
    assert cache.bypassed.value("too_large") == 1


async def test_get_requests_are_cached_like_posts() -> None:
    """A query sent with GET is stored and then served from the cache, with the same headers."""
    async with run_blog() as service, cached_bff(service) as stack:
        answers = [await stack.http.get(stack.graphql_url, params={"query": POSTS}) for _ in range(2)]
        from_post = await post(stack, POSTS)
    assert answers[0].json() == answers[1].json() == from_post.json()
    assert answers[1].headers["Cache-Control"] == "max-age=60, public"
    assert answers[1].headers["Age"].isdigit()
    assert service.requests["GET /posts"] == 1


async def test_a_cacheable_answer_varies_on_the_credential_headers() -> None:
    """A public answer is an anonymous one: a shared cache in front of the BFF must not hand it to a
    request with ``Authorization`` or ``X-Api-Key`` (RFC 9111 §4.1), so stored and cached answers say
    ``Vary`` on both, beside the ``Vary: Origin`` of CORS."""
    async with (
        run_blog() as service,
        cached_bff(service, BFF_CORS_ALLOWED_ORIGINS="https://app.example") as stack,
    ):
        origin = {"Origin": "https://app.example"}
        answers = [
            await stack.http.get(stack.graphql_url, params={"query": POSTS}, headers=origin) for _ in range(2)
        ]
    for answer in answers:
        varies = {
            name.strip().lower() for value in answer.headers.get_list("Vary") for name in value.split(",")
        }
        assert {"authorization", "x-api-key", "origin"} <= varies, answer.headers
    assert answers[1].headers["Age"].isdigit()


async def test_the_cache_is_off_by_default_and_counted_in_metrics_when_on() -> None:
    """Without ``BFF_RESPONSE_CACHE`` no result is kept and no header is added; with it ``/metrics``
    counts hits, misses, bypasses and bytes."""
    async with run_blog() as service:
        async with run_bff("default", {"blog": service.url}, app_spec=blog) as stack:
            plain = [await post(stack, POSTS) for _ in range(2)]
            assert stack.app is not None
            assert stack.app[VIEW].schema.responses is None  # type: ignore[attr-defined]
        async with cached_bff(service) as stack:
            for query in (POSTS, POSTS, "{ greet }"):
                await post(stack, query)
            metrics = (await stack.http.get(stack.graphql_url.replace("/graphql", "/metrics"))).text
    assert all("Cache-Control" not in answer.headers for answer in plain)
    assert 'bff_response_cache_lookups_total{outcome="hit"} 1.0' in metrics
    assert 'bff_response_cache_lookups_total{outcome="miss"} 2.0' in metrics
    assert 'bff_response_cache_bypassed_total{reason="no_downstream"} 1.0' in metrics
    size = next(line for line in metrics.splitlines() if line.startswith("bff_response_cache_bytes "))
    assert float(size.split()[1]) > 0
