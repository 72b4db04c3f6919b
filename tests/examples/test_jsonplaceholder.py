"""The JSONPlaceholder example app served by the kit over a real json-server 0.17.4.

Downstream requests are counted by json-server's ``/_stats`` (``"GET /users": 1`` whatever the
query string, so one ``GET /users`` for every user of 100 posts is one batched request).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from strawberry.tools import merge_types

from bff import Info, Resource, cost_hint, nodes, prefetch, to_one
from bff.settings import SettingsError, load_settings
from bff_chinook.demo.jsonserver import run_json_servers
from examples.jsonplaceholder import app
from examples.jsonplaceholder.data import load_data
from examples.jsonplaceholder.query import Query
from examples.jsonplaceholder.resources import users
from examples.jsonplaceholder.types import User
from tests.e2e.stack import Stack, run_bff
from tests.support.caching_proxy import run_caching_proxy
from tests.support.jsonserver import require_json_server
from tests.test_readme import BLOCKS

DATA = load_data()
USERS = {user["id"]: user for user in DATA["users"]}
POST_FIELDS = "id userId title body user { id name username email } comments { id postId name email }"


@pytest.fixture(scope="module")
async def bff(jsonplaceholder_url: str) -> AsyncIterator[Stack]:
    """The example app served over the shared json-server, with default settings."""
    async with run_bff("jsonplaceholder", {"jsonplaceholder": jsonplaceholder_url}, app_spec=app) as stack:
        yield stack


@pytest.fixture
async def stack(bff: Stack) -> Stack:
    """The example app's BFF with json-server's request counters at zero."""
    await bff.reset_counts()
    return bff


def post_answer(post: dict[str, Any]) -> dict[str, Any]:
    """What ``POST_FIELDS`` select of ``post``: its fields, its author's and its comments'."""
    user = USERS[post["userId"]]
    return {
        "id": str(post["id"]),
        "userId": str(post["userId"]),
        "title": post["title"],
        "body": post["body"],
        "user": {key: str(user[key]) for key in ("id", "name", "username", "email")},
        "comments": [
            {"id": str(c["id"]), "postId": str(c["postId"]), "name": c["name"], "email": c["email"]}
            for c in DATA["comments"]
            if c["postId"] == post["id"]
        ],
    }


async def test_posts_with_their_users_take_two_requests(stack: Stack) -> None:
    """``{ posts { user { name } } }`` is one ``GET /posts`` and one batched ``GET /users``, all 100 right."""
    body = await stack.post("{ posts { user { name } } }")
    expected = [{"user": {"name": USERS[post["userId"]]["name"]}} for post in DATA["posts"]]
    assert body == {"data": {"posts": expected}}
    assert await stack.counts() == {"jsonplaceholder": {"GET /posts": 1, "GET /users": 1}}


async def test_every_field_of_every_post_matches_the_data_in_three_requests(stack: Stack) -> None:
    """Each post with its author and its five comments is the data set's, for one request per resource."""
    body = await stack.post(f"{{ posts {{ {POST_FIELDS} }} }}")
    assert body == {"data": {"posts": [post_answer(post) for post in DATA["posts"]]}}
    assert all(len(post["comments"]) == 5 for post in body["data"]["posts"])
    counts = {"GET /posts": 1, "GET /users": 1, "GET /comments": 1}
    assert await stack.counts() == {"jsonplaceholder": counts}


async def test_users_posts_and_comments_take_one_request_per_level(stack: Stack) -> None:
    """Three levels of lists (10 users, 100 posts, 500 comments) are three requests, in the data's order."""
    body = await stack.post("{ users { username posts { id comments { id } } } }")
    expected = [
        {
            "username": user["username"],
            "posts": [
                {
                    "id": str(post["id"]),
                    "comments": [{"id": str(c["id"])} for c in DATA["comments"] if c["postId"] == post["id"]],
                }
                for post in DATA["posts"]
                if post["userId"] == user["id"]
            ],
        }
        for user in DATA["users"]
    ]
    assert body == {"data": {"users": expected}}
    counts = {"GET /users": 1, "GET /posts": 1, "GET /comments": 1}
    assert await stack.counts() == {"jsonplaceholder": counts}


async def test_the_readme_first_query_takes_three_requests(stack: Stack) -> None:
    """The tutorial's first query (README.md) gets every post's author and comments in the three requests
    the tutorial names."""
    [query] = [code for language, code in BLOCKS if language == "graphql"]
    body = await stack.post(query)
    assert "errors" not in body
    assert len(body["data"]["posts"]) == 100
    assert sum(len(post["comments"]) for post in body["data"]["posts"]) == 500
    counts = {"GET /posts": 1, "GET /users": 1, "GET /comments": 1}
    assert await stack.counts() == {"jsonplaceholder": counts}


async def test_greet_needs_no_service(stack: Stack) -> None:
    """``greet`` answers ``Hello World!`` without any downstream request."""
    assert await stack.post("{ greet }") == {"data": {"greet": "Hello World!"}}
    assert await stack.counts() == {"jsonplaceholder": {}}


async def test_one_post_and_one_user_by_id_and_missing_ones_are_null(stack: Stack) -> None:
    """``post(id)`` and ``user(id)`` give a record with its relations; an unknown id gives null, no error."""
    query = f"""{{
        post(id: "42") {{ {POST_FIELDS} }}
        user(id: "7") {{ id name username email posts {{ id }} }}
        noPost: post(id: "101") {{ id }}
        noUser: user(id: "11") {{ id }}
    }}"""
    body = await stack.post(query)
    user = USERS[7]
    assert body == {
        "data": {
            "post": post_answer(DATA["posts"][41]),
            "user": {
                **{key: str(user[key]) for key in ("id", "name", "username", "email")},
                "posts": [{"id": str(n)} for n in range(61, 71)],
            },
            "noPost": None,
            "noUser": None,
        }
    }


async def test_the_benchmark_query_through_a_caching_proxy_is_free_when_warm(
    jsonplaceholder_url: str,
) -> None:
    """Behind a proxy saying ``max-age=43200``, the first run is ``GET /posts`` and one ``GET /users``; the
    second run reaches nothing, as the BFF's own cache honours ``max-age``."""
    query = "{ posts { id userId title user { id name email } } }"
    expected = [
        {
            "id": str(post["id"]),
            "userId": str(post["userId"]),
            "title": post["title"],
            "user": {key: str(USERS[post["userId"]][key]) for key in ("id", "name", "email")},
        }
        for post in DATA["posts"]
    ]
    async with (
        httpx.AsyncClient() as http,
        run_caching_proxy(jsonplaceholder_url) as proxy,
        run_bff("cached", {"jsonplaceholder": proxy.url}, app_spec=app) as stack,
    ):
        (await http.delete(f"{jsonplaceholder_url}/_stats")).raise_for_status()

        cold = await stack.post(query)
        cold_counts = (await http.get(f"{jsonplaceholder_url}/_stats")).json()["requests"]
        warm = await stack.post(query)
        warm_counts = (await http.get(f"{jsonplaceholder_url}/_stats")).json()["requests"]

    assert cold == warm == {"data": {"posts": expected}}
    assert cold_counts == {"GET /posts": 1, "GET /users": 1}
    assert warm_counts == cold_counts
    assert proxy.forwarded == 2


async def test_breaker_opens_after_its_threshold_when_json_server_stops(tmp_path: Path) -> None:
    """Once json-server stops, each of ``BREAKER_THRESHOLD`` queries fails with ``DOWNSTREAM_UNAVAILABLE``,
    then the breaker answers ``CIRCUIT_OPEN`` at once; fields without the service still answer."""
    env = {
        "BFF_SERVICE_JSONPLACEHOLDER_BREAKER_THRESHOLD": "3",
        "BFF_SERVICE_JSONPLACEHOLDER_RETRY_WAIT_INITIAL_MS": "10",
    }
    dbs = {"jsonplaceholder": load_data()}
    async with contextlib.AsyncExitStack() as json_server:
        urls = await json_server.enter_async_context(
            run_json_servers(require_json_server(), tmp_path, dbs=dbs)
        )
        async with run_bff("breaker", urls, app_spec=app, **env) as stack:
            readyz = stack.graphql_url.replace("/graphql", "/readyz")
            body = await stack.post('{ greet post(id: "1") { title } }')
            assert body == {"data": {"greet": "Hello World!", "post": {"title": DATA["posts"][0]["title"]}}}

            await json_server.aclose()  # json-server stops; its port is closed
            codes = []
            for post_id in range(2, 6):
                body = await stack.post(f'{{ greet post(id: "{post_id}") {{ title }} }}')
                assert body["data"] == {"greet": "Hello World!", "post": None}
                [error] = body["errors"]
                assert error["path"] == ["post"]
                assert error["extensions"]["service"] == "jsonplaceholder"
                codes.append(error["extensions"]["code"])
            ready = await stack.http.get(readyz)

    assert codes == ["DOWNSTREAM_UNAVAILABLE"] * 3 + ["CIRCUIT_OPEN"]
    assert ready.status_code == 503
    assert ready.json()["services"] == {"jsonplaceholder": {"breaker": "open"}}


@pytest.mark.parametrize(
    ("environ", "refused", "extensions", "allowed"),
    [
        (
            {"BFF_MAX_DEPTH": "3"},
            "{ users { posts { comments { id } } } }",
            {"code": "QUERY_TOO_DEEP", "depth": 4, "limit": 3},
            "{ posts { user { name } } }",
        ),
        (
            {"BFF_MAX_COST": "100"},
            "{ posts { user { name } } }",  # 1 + 100 posts x 1 user
            {"code": "QUERY_TOO_COMPLEX", "cost": 101, "limit": 100},
            "{ users { posts { id } } }",  # 1 + 10 users x 1 list of posts
        ),
    ],
    ids=["depth", "cost"],
)
async def test_limits_refuse_deep_or_costly_queries_before_any_request(
    jsonplaceholder_url: str, environ: dict[str, str], refused: str, extensions: dict[str, Any], allowed: str
) -> None:
    """Over ``BFF_MAX_DEPTH`` or ``BFF_MAX_COST`` (priced by the resources' list sizes) a query is refused
    with its code and no downstream request; a query within the limit runs."""
    async with run_bff("limits", {"jsonplaceholder": jsonplaceholder_url}, app_spec=app, **environ) as stack:
        await stack.reset_counts()
        body = await stack.post(refused)
        assert "data" not in body
        assert [error["extensions"] for error in body["errors"]] == [extensions]
        assert await stack.total_requests() == 0
        assert "errors" not in await stack.post(allowed)


def test_settings_refuse_a_service_the_app_does_not_declare() -> None:
    """``BFF_SERVICE_POSTS_URL`` is refused naming the service the app declares; its own variable is taken."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"BFF_SERVICE_POSTS_URL": "http://127.0.0.1:3000"}, services=app.service_defaults())
    assert str(refused.value) == "BFF_SERVICE_POSTS_URL: unknown service (the app declares: jsonplaceholder)"

    settings = load_settings(
        {"BFF_SERVICE_JSONPLACEHOLDER_URL": "http://127.0.0.1:3999"}, services=app.service_defaults()
    )
    assert str(settings.service("jsonplaceholder").url).rstrip("/") == "http://127.0.0.1:3999"
    assert app.service_defaults() == {"jsonplaceholder": "http://127.0.0.1:3000"}


# A resource with one relationship, as README.md shows it: one declaration and one type, plus the
# root field that lists it.

todos = Resource("jsonplaceholder", "todos", list_size=200)


@strawberry.type
class Todo:
    """Something a user has to do."""

    id: strawberry.ID
    title: str
    completed: bool
    user_id: strawberry.ID

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Todo:
        """Build from a ``todos`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            title=record["title"],
            completed=record["completed"],
            user_id=strawberry.ID(str(record["userId"])),
        )

    user: User | None = to_one(users, key=lambda todo: todo.user_id, build=User.from_record)


@strawberry.type
class TodoQuery:
    """The root field listing todos."""

    @strawberry.field(metadata=cost_hint(size=todos.list_size))
    async def todos(self, info: Info) -> list[Todo]:
        return await prefetch(info, nodes(info, Todo.from_record, await todos.all(info.context)))


app_with_todos = dataclasses.replace(app, query=merge_types("Query", (Query, TodoQuery)))


async def test_a_resource_with_a_relationship_is_one_declaration_and_one_type(
    jsonplaceholder_url: str,
) -> None:
    """The app with ``todos`` added answers ``{ todos { title user { name } } }`` from the data, batched into
    one ``GET /todos`` and one ``GET /users``, and keeps its own fields."""
    service = {"jsonplaceholder": jsonplaceholder_url}
    async with run_bff("todos", service, app_spec=app_with_todos) as stack:
        await stack.reset_counts()
        body = await stack.post("{ todos { title completed user { name } } greet }")
        counts = await stack.counts()
    expected = [
        {
            "title": todo["title"],
            "completed": todo["completed"],
            "user": {"name": USERS[todo["userId"]]["name"]},
        }
        for todo in DATA["todos"]
    ]
    assert body == {"data": {"todos": expected, "greet": "Hello World!"}}
    assert counts == {"jsonplaceholder": {"GET /todos": 1, "GET /users": 1}}
