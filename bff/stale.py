"""Stale-if-error bookkeeping: which parts of a response were served from expired cache entries.

The downstream cache stage lists the records it served stale in each answer
(:attr:`~bff.downstream.JSONResponse.stale`); whoever reads the answer for an operation (the loaders,
a page fetch) marks them in the operation's :class:`StaleLog`. The schema notes the GraphQL path
where it used a record (:meth:`StaleLog.note`), and :class:`StaleExtension` reports the stale ones::

    "extensions": {"stale": [{"path": ["track"], "service": "catalog", "ageMs": 61234}]}

Records are told apart by identity: the log keeps each stale record alive while it lives, so an id
cannot be reused for another object meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.extensions import SchemaExtension

from bff.downstream.response import StaleMark

__all__ = ["StaleExtension", "StaleLog"]


class StaleLog:
    """The stale records one operation used, with their GraphQL paths."""

    __slots__ = ("_marks", "entries")

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._marks: dict[int, StaleMark] = {}

    @property
    def active(self) -> bool:
        """Whether any record was marked stale: without, a caller need not build the path to note."""
        return bool(self._marks)

    def mark(self, marks: Iterable[StaleMark]) -> None:
        """Remember records an answer served stale."""
        for mark in marks:
            self._marks[id(mark.record)] = mark

    def is_stale(self, record: object) -> bool:
        """Whether ``record`` was marked stale in this operation."""
        mark = self._marks.get(id(record)) if self._marks else None
        return mark is not None and mark.record is record

    def note(self, path: list[str | int], record: object) -> None:
        """Remember ``path`` when ``record`` is stale; no-op otherwise."""
        if not self._marks:
            return
        mark = self._marks.get(id(record))
        if mark is not None and mark.record is record:
            self.entries.append({"path": path, "service": mark.service, "ageMs": round(mark.age_s * 1000)})

    def note_any(self, path: list[str | int], records: Iterable[object]) -> None:
        """Remember ``path`` once when any of ``records`` is stale."""
        if not self._marks:
            return
        for record in records:
            if self.is_stale(record):
                self.note(path, record)
                return


class StaleExtension(SchemaExtension):
    """Adds ``extensions.stale`` to responses that used stale data."""

    def get_results(self) -> dict[str, Any]:
        """``{"stale": [...]}`` when the operation served stale data, else nothing."""
        context = self.execution_context.context
        log = getattr(context, "stale", None)
        if isinstance(log, StaleLog) and log.entries:
            return {"stale": log.entries}
        return {}
