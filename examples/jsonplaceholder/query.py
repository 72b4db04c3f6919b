"""The root ``Query``: whole lists, one record by id, and a greeting.

A list field loads the relationship fields the query selects on its items before it returns
(:func:`bff.all_nodes` prefetches them), so ``{ posts { user { name } } }`` is two downstream
requests: ``GET /posts`` and one ``GET /users?id=1&id=2..``.
"""

from __future__ import annotations

import strawberry

from bff import Info, all_nodes, cost_hint, node
from examples.jsonplaceholder import resources
from examples.jsonplaceholder.types import Post, User


@strawberry.type
class Query:
    """Posts and users of the ``jsonplaceholder`` service."""

    @strawberry.field(description="Every post.", metadata=cost_hint(size=resources.posts.list_size))
    async def posts(self, info: Info) -> list[Post]:
        return await all_nodes(info, resources.posts, Post.from_record)

    @strawberry.field(description="One post by id; null when there is none.")
    async def post(self, info: Info, id: strawberry.ID) -> Post | None:
        return node(info, Post.from_record, await resources.posts.get(info.context, id))

    @strawberry.field(description="Every user.", metadata=cost_hint(size=resources.users.list_size))
    async def users(self, info: Info) -> list[User]:
        return await all_nodes(info, resources.users, User.from_record)

    @strawberry.field(description="One user by id; null when there is none.")
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        return node(info, User.from_record, await resources.users.get(info.context, id))

    @strawberry.field(description="A greeting, to try the endpoint without any service.")
    def greet(self) -> str:
        return "Hello World!"
