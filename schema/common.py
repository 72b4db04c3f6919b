"""Record field conversions shared by the Chinook types (the kit's ``Info``, ``node`` and ``ref`` too)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from bff import Info, node, nodes, ref

__all__ = ["Info", "money", "node", "nodes", "ref", "timestamp"]


def money(value: Any) -> Decimal:
    """A JSON number or string as an exact ``Decimal`` (``0.99`` stays ``0.99``)."""
    return Decimal(str(value))


def timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp from a record (a trailing ``Z`` means UTC)."""
    return datetime.fromisoformat(value)
