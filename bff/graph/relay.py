"""Relay connections (Relay Cursor Connections Specification) over offset pages of a resource.

A cursor is opaque to clients: ``base64("offset:<n>")`` of the record's 0-based position in the
filtered list. ``first`` defaults to 20 and may not exceed 100 (``BAD_USER_INPUT`` otherwise). A root
field is one call::

    @strawberry.field(metadata=PAGE_COST)
    async def users(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> Connection[User]:
        return await connection(info, users, User.from_record, first=first, after=after)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from bff.cost_map import MAX_PAGE_SIZE, PAGE_SIZE, cost_hint
from bff.errors import BadUserInput
from bff.graph.nodes import Info
from bff.graph.relations import prefetch
from bff.graph.resource import Page, Resource
from bff.loaders import Record

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "PAGE_COST",
    "Connection",
    "Edge",
    "PageInfo",
    "connection",
    "decode_cursor",
    "encode_cursor",
    "page_window",
]

DEFAULT_PAGE_SIZE = PAGE_SIZE
_CURSOR_PREFIX = "offset:"

PAGE_COST: dict[str, Any] = cost_hint(size=PAGE_SIZE, multipliers=("first",), max_size=MAX_PAGE_SIZE)
"""``metadata`` of a connection field: ``first`` items, 20 without it, 100 when ``first`` is a variable."""

NodeT = TypeVar("NodeT")


def encode_cursor(offset: int) -> str:
    """The cursor of the record at 0-based ``offset``."""
    return base64.b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The offset a cursor points at; raises ``BAD_USER_INPUT`` for a cursor we did not make."""
    try:
        text = base64.b64decode(cursor.encode("ascii"), validate=True).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput(f"invalid cursor {cursor!r}", argument="after") from None
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit():
        raise BadUserInput(f"invalid cursor {cursor!r}", argument="after")
    return int(number)


def page_window(first: int | None, after: str | None) -> tuple[int, int]:
    """``(offset, limit)`` for the page after ``after`` of ``first`` records.

    Raises ``BAD_USER_INPUT`` when ``first`` is negative or above :data:`MAX_PAGE_SIZE`, or the
    cursor is invalid.
    """
    limit = DEFAULT_PAGE_SIZE if first is None else first
    if limit < 0:
        raise BadUserInput(f"first must not be negative (got {limit})", argument="first")
    if limit > MAX_PAGE_SIZE:
        raise BadUserInput(
            f"first must be at most {MAX_PAGE_SIZE} (got {limit})", argument="first", maximum=MAX_PAGE_SIZE
        )
    offset = 0 if after is None else decode_cursor(after) + 1
    return offset, limit


@strawberry.type
class PageInfo:
    """Where a page sits in the whole list."""

    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    """One record of a page and its cursor."""

    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    """A page of a list: its edges, where it sits, and how many records match in all."""

    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: Page, node: Callable[[Record], NodeT]) -> Connection[NodeT]:
        """Build the connection of ``page``, turning each record into a node with ``node``."""
        edges = [
            Edge(cursor=encode_cursor(page.offset + index), node=node(record))
            for index, record in enumerate(page.records)
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.offset + len(edges) < page.total,
                has_previous_page=page.offset > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
        )


async def connection(
    info: Info,
    resource: Resource,
    build: Callable[[Record], NodeT],
    *,
    first: int | None,
    after: str | None,
    filters: Sequence[tuple[str, str]] = (),
) -> Connection[NodeT]:
    """The page of ``resource`` after ``after`` of ``first`` records matching ``filters``, as a Relay
    connection of ``build(record)`` nodes, with the relationship fields the query selects on them
    loaded level by level (:func:`~bff.graph.relations.prefetch`).

    Raises ``BAD_USER_INPUT`` for a bad ``first`` or cursor, ``DOWNSTREAM_*`` when the service fails.
    """
    offset, limit = page_window(first, after)
    page = await resource.page(info.context, offset=offset, limit=limit, filters=filters)
    info.context.budget.spend(len(page.records))
    info.context.stale.note_any(info.path.as_list(), page.records)
    made: Connection[NodeT] = Connection.from_page(page, build)
    await prefetch(info, [edge.node for edge in made.edges], under=("edges", "node"))
    return made
