"""Shared pieces of the domain types: the typed ``Info`` and record field conversions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import strawberry

from bff.context import Context

Info: TypeAlias = strawberry.Info[Context, None]


def ref(value: Any) -> str | None:
    """A foreign key from a record as an id string, or ``None`` when unset."""
    return None if value is None else str(value)


def money(value: Any) -> Decimal:
    """A JSON number or string as an exact ``Decimal`` (``0.99`` stays ``0.99``)."""
    return Decimal(str(value))


def timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp from a record (a trailing ``Z`` means UTC)."""
    return datetime.fromisoformat(value)
