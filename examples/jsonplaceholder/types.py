"""The GraphQL types: a post, its author and its comments, each built from one REST record.

Leaf fields are plain attributes, copied from the record once; only the relationship fields
(:func:`bff.to_one`, :func:`bff.to_many`) resolve, through the operation's batched loaders.
"""

from __future__ import annotations

from typing import Any

import strawberry

from bff import to_many, to_one
from examples.jsonplaceholder import resources


@strawberry.type
class Comment:
    """A comment on a post."""

    id: strawberry.ID
    post_id: strawberry.ID
    name: str
    email: str
    body: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Comment:
        """Build from a ``comments`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            post_id=strawberry.ID(str(record["postId"])),
            name=record["name"],
            email=record["email"],
            body=record["body"],
        )


@strawberry.type
class User:
    """A user who writes posts."""

    id: strawberry.ID
    name: str
    username: str
    email: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> User:
        """Build from a ``users`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            name=record["name"],
            username=record["username"],
            email=record["email"],
        )

    posts: list[Post] = to_many(
        resources.posts,
        by="userId",
        key=lambda user: user.id,
        build=lambda record: Post.from_record(record),
        description="The user's posts.",
        size=10,
    )


@strawberry.type
class Post:
    """A blog post by one user."""

    id: strawberry.ID
    user_id: strawberry.ID
    title: str
    body: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Post:
        """Build from a ``posts`` record."""
        return cls(
            id=strawberry.ID(str(record["id"])),
            user_id=strawberry.ID(str(record["userId"])),
            title=record["title"],
            body=record["body"],
        )

    user: User | None = to_one(
        resources.users,
        key=lambda post: post.user_id,
        build=User.from_record,
        description="The post's author.",
    )
    comments: list[Comment] = to_many(
        resources.comments,
        by="postId",
        key=lambda post: post.id,
        build=Comment.from_record,
        description="The comments on the post.",
        size=5,
    )
