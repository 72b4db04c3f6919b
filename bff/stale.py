"""Stale-if-error bookkeeping: which parts of a response were served from expired cache entries.

A loader that serves a stale entity hands out a :class:`StaleRecord` (a record that knows its service
and age). The schema notes the GraphQL path where it used one (:meth:`StaleLog.note`), and
:class:`StaleExtension` reports them in the response::

    "extensions": {"stale": [{"path": ["track"], "service": "catalog", "ageMs": 61234}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.extensions import SchemaExtension


class StaleRecord(dict[str, Any]):
    """A record served from the cache past its lifetime because its service failed."""

    __slots__ = ("age_s", "service")

    def __init__(self, record: dict[str, Any], *, service: str, age_s: float) -> None:
        super().__init__(record)
        self.service = service
        self.age_s = age_s


@dataclass
class StaleLog:
    """The stale records one operation used, with their GraphQL paths."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def note(self, path: list[str | int], record: object) -> None:
        """Remember ``path`` when ``record`` is stale; no-op otherwise."""
        if isinstance(record, StaleRecord):
            self.entries.append(
                {"path": path, "service": record.service, "ageMs": round(record.age_s * 1000)}
            )


class StaleExtension(SchemaExtension):
    """Adds ``extensions.stale`` to responses that used stale data."""

    def get_results(self) -> dict[str, Any]:
        """``{"stale": [...]}`` when the operation served stale data, else nothing."""
        context = self.execution_context.context
        log = getattr(context, "stale", None)
        if isinstance(log, StaleLog) and log.entries:
            return {"stale": log.entries}
        return {}


__all__ = ["StaleExtension", "StaleLog", "StaleRecord"]
