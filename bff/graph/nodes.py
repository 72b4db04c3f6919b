"""Turning downstream records into GraphQL nodes: the typed ``Info`` and the stale-aware builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import strawberry

from bff.context import Context
from bff.loaders import Record

__all__ = ["Info", "node", "nodes", "ref"]

Info: TypeAlias = strawberry.Info[Context, None]
"""What resolvers take as ``info``: ``info.context`` is the operation's :class:`~bff.context.Context`."""

T = TypeVar("T")


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
