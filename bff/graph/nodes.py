"""Turning downstream records into GraphQL nodes: the typed ``Info`` and the stale-aware builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias, TypeVar

import strawberry

from bff.context import Context
from bff.loaders import Record

__all__ = ["Info", "SharedNodes", "node", "nodes", "ref"]

Info: TypeAlias = strawberry.Info[Context, None]
"""What resolvers take as ``info``: ``info.context`` is the operation's :class:`~bff.context.Context`."""

T = TypeVar("T")

_SHARED_ANSWERS: Final = 32
"""Answers whose nodes a :class:`SharedNodes` keeps, at most."""


def ref(value: Any) -> str | None:
    """A foreign key from a record as an id string, or ``None`` when unset."""
    return None if value is None else str(value)


def node(info: Info, build: Callable[[Record], T], record: Record | None) -> T | None:
    """``build(record)`` (``None`` stays ``None``), noting the field's path if the record is stale."""
    if record is None:
        return None
    info.context.budget.spend(1)
    info.context.stale.note(info.path.as_list(), record)
    return build(record)


def nodes(info: Info, build: Callable[[Record], T], records: list[Record]) -> list[T]:
    """``build`` applied to each record, noting the field's path once if any record is stale.

    Counts the records against the operation's item budget (``OPERATION_BUDGET_EXCEEDED`` past it).
    """
    info.context.budget.spend(len(records))
    info.context.stale.note_any(info.path.as_list(), records)
    return [build(record) for record in records]


class SharedNodes:
    """The nodes of the last few list answers, by the answer's identity, shared between operations.

    The entity cache hands the same list object to every operation that reads a cached answer, and
    a node is a value built from its record alone (``build(record)``: the types' ``from_record``),
    which no operation changes: building it again for each operation only costs time (a page of 100
    posts: ~20% of ``{ posts { title } }``). :class:`bff.Resource` keeps one for its lists
    (:func:`bff.graph.all_nodes`). Types built this way must keep no per-operation state on their
    instances; relationship fields resolve through the operation's loaders, never the node.
    """

    __slots__ = ("_made",)

    def __init__(self) -> None:
        # (id of the answer, build) -> the answer itself (held, so the id is not reused), its nodes.
        self._made: dict[tuple[int, Callable[[Record], Any]], tuple[list[Record], tuple[Any, ...]]] = {}

    def nodes(self, info: Info, build: Callable[[Record], T], records: list[Record]) -> list[T]:
        """:func:`nodes` of ``records``, the same node objects as the last time this very list was
        given with this ``build``. Counts the records against the item budget and notes the field's
        path if any record is stale, for every operation."""
        info.context.budget.spend(len(records))
        info.context.stale.note_any(info.path.as_list(), records)
        key = (id(records), build)
        made = self._made.get(key)
        if made is not None and made[0] is records:
            shared: list[T] = list(made[1])
            return shared
        built = [build(record) for record in records]
        if len(self._made) >= _SHARED_ANSWERS:
            self._made.clear()
        self._made[key] = (records, tuple(built))
        return built
