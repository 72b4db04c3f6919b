"""Plain Strawberry + httpx + aiodataloader over the JSONPlaceholder example's REST service: the Python
peer of ``bench/graphql_benchmarks.py``, written as Strawberry's documentation shows (aiohttp view,
default schema without extensions, a DataLoader per request in a typed context, leaf fields as plain
attributes), without anything of bff.

    python bench/peers/strawberry_plain.py --upstream http://127.0.0.1:3000 [--port 0]

The schema is the example app's for the fields the benchmark asks for, so both answer the same JSON.
Prints ``listening: URL`` once it accepts connections; stops on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import strawberry
from aiodataloader import DataLoader
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView

HTTP = web.AppKey("http", httpx.AsyncClient)


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    username: str
    email: str


@dataclass
class Context:
    http: httpx.AsyncClient
    users: DataLoader[str, User | None]


def user_of(record: dict[str, Any]) -> User:
    return User(
        id=strawberry.ID(str(record["id"])),
        name=record["name"],
        username=record["username"],
        email=record["email"],
    )


@strawberry.type
class Post:
    id: strawberry.ID
    user_id: strawberry.ID
    title: str
    body: str

    @strawberry.field
    async def user(self, info: strawberry.Info[Context, None]) -> User | None:
        return await info.context.users.load(self.user_id)


@strawberry.type
class Query:
    @strawberry.field
    async def posts(self, info: strawberry.Info[Context, None]) -> list[Post]:
        response = await info.context.http.get("/posts")
        response.raise_for_status()
        return [
            Post(
                id=strawberry.ID(str(r["id"])),
                user_id=strawberry.ID(str(r["userId"])),
                title=r["title"],
                body=r["body"],
            )
            for r in response.json()
        ]

    @strawberry.field
    def greet(self) -> str:
        return "Hello World!"


class View(GraphQLView[Context, None]):
    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:  # type: ignore[override]
        http = request.app[HTTP]

        async def load_users(ids: list[str]) -> list[User | None]:
            answer = await http.get("/users", params=[("id", i) for i in ids])
            answer.raise_for_status()
            by_id = {str(r["id"]): user_of(r) for r in answer.json()}
            return [by_id.get(i) for i in ids]

        return Context(http=http, users=DataLoader(load_users))


def make_app(upstream: str) -> web.Application:
    app = web.Application()

    async def client(app: web.Application) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=upstream, limits=limits) as http:
            app[HTTP] = http
            yield

    app.cleanup_ctx.append(client)
    app.router.add_route("*", "/graphql", View(schema=strawberry.Schema(query=Query)))
    return app


async def serve(upstream: str, port: int) -> None:
    runner = web.AppRunner(make_app(upstream), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = next(a for a in runner.addresses if isinstance(a, tuple))[:2]
    print(f"listening: http://{host}:{bound}/graphql", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--upstream", required=True, help="base URL of the REST service")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args()
    asyncio.run(serve(args.upstream, args.port))


if __name__ == "__main__":
    main()
