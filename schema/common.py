"""Shared pieces of the domain types: the typed ``Info`` and record field conversions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

import strawberry

from bff.context import Context
from bff.loaders import Record
from bff.stale import StaleRecord

Info: TypeAlias = strawberry.Info[Context, None]

T = TypeVar("T")


def ref(value: Any) -> str | None:
    """A foreign key from a record as an id string, or ``None`` when unset."""
    return None if value is None else str(value)


def money(value: Any) -> Decimal:
    """A JSON number or string as an exact ``Decimal`` (``0.99`` stays ``0.99``)."""
    return Decimal(str(value))


def timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp from a record (a trailing ``Z`` means UTC)."""
    return datetime.fromisoformat(value)


def node(info: Info, build: Callable[[Record], T], record: Record | None) -> T | None:
    """``build(record)`` (``None`` stays ``None``), noting the field's path if the record is stale."""
    if record is None:
        return None
    if isinstance(record, StaleRecord):
        info.context.stale.note(info.path.as_list(), record)
    return build(record)


def nodes(info: Info, build: Callable[[Record], T], records: list[Record]) -> list[T]:
    """``build`` applied to each record, noting the field's path once if any record is stale."""
    stale = next((record for record in records if isinstance(record, StaleRecord)), None)
    if stale is not None:
        info.context.stale.note(info.path.as_list(), stale)
    return [build(record) for record in records]
